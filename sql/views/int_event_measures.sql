-- int_event_measures: one row of additive measures per unique event (raw counts) and one per
-- billable event (billable counts, spend), so a single SUM gives raw and billable side by side.
-- In the streaming job, a unique event's row also has the time the collector accepted it
-- (received_at_ms, for the live tier's freshness; NULL on the billable rows).
-- Grain: one event (twice for a billable one). Inputs: int_events_enriched, int_events_billable.
{% from "macros/modes.sql" import streaming_only with context -%}
CREATE TEMPORARY VIEW int_event_measures AS
SELECT
  ad_id, campaign_id, advertiser_id, vertical, country, device_type, publisher_id, event_time, ts,
{%- call streaming_only() %}
  received_at_ms,
{%- endcall %}
  CAST(IF(event_type = 'impression', 1, 0) AS BIGINT) AS impressions,
  CAST(IF(event_type = 'click', 1, 0) AS BIGINT) AS clicks,
  CAST(IF(event_type = 'conversion', 1, 0) AS BIGINT) AS conversions,
  CAST(IF(invalid_reason IS NULL, 0, 1) AS BIGINT) AS invalid_events,
  CAST(0 AS BIGINT) AS billable_impressions,
  CAST(0 AS BIGINT) AS billable_clicks,
  CAST(0 AS BIGINT) AS billable_conversions,
  CAST(0 AS BIGINT) AS spend_micros,
  CAST(0 AS BIGINT) AS conversion_value_micros
FROM int_events_enriched
UNION ALL
SELECT
  ad_id, campaign_id, advertiser_id, vertical, country, device_type, publisher_id, event_time, ts,
{%- call streaming_only() %}
  CAST(NULL AS BIGINT) AS received_at_ms,
{%- endcall %}
  CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT),
  CAST(IF(event_type = 'impression', 1, 0) AS BIGINT),
  CAST(IF(event_type = 'click', 1, 0) AS BIGINT),
  CAST(IF(event_type = 'conversion', 1, 0) AS BIGINT),
  cost_micros,
  conversion_value_micros
FROM int_events_billable;
