-- mart_publisher_minute: final-tier minute totals per publisher (supply side): impressions,
-- clicks, invalid traffic, billable counts and spend. Added as the analyst example of
-- docs/adding-an-aggregate.md: this file and its sink are the whole change.
-- Grain: (window_start_ms, publisher_id). Input: int_event_measures.
{% from "macros/columns.sql" import epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_publisher_minute AS
SELECT
  {{ epoch_ms('window_start') }} AS window_start_ms,
  {{ epoch_ms('window_end') }} AS window_end_ms,
  publisher_id,
  SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(spend_micros) AS spend_micros,
{{ lineage('final') }}
FROM TABLE(
  TUMBLE(TABLE int_event_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, publisher_id;
