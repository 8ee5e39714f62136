-- mart_ad_minute_live: live-tier minute aggregates: the same measures as mart_ad_minute,
-- updated within seconds as events arrive (a changelog that upserts by key), for open windows
-- too. Provisional: a minute's live row converges to its final row once the window closes.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_event_measures.
{% from "macros/columns.sql" import sum_measures, lineage with context %}
CREATE TEMPORARY VIEW mart_ad_minute_live AS
SELECT
  event_time - MOD(event_time, 60000) AS window_start_ms,
  event_time - MOD(event_time, 60000) + 60000 AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ sum_measures() }},
  -- The newest collector acceptance among the row's events: the live tier's freshness (docs/slo.md).
  MAX(received_at_ms) AS max_received_at_ms,
{{ lineage('live') }}
FROM int_event_measures
GROUP BY event_time - MOD(event_time, 60000),
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;
