-- mart_ad_sliding_5m: final-tier sliding windows, 5 minutes long every minute, per ad.
-- Grain: (window_start_ms, ad_id). Input: int_ad_minute (minutes cascade into the hops).
{% from "macros/columns.sql" import epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_ad_sliding_5m AS
SELECT
  {{ epoch_ms('window_start') }} AS window_start_ms,
  {{ epoch_ms('window_end') }} AS window_end_ms,
  ad_id,
  SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(spend_micros) AS spend_micros,
{{ lineage('final') }}
FROM TABLE(
  HOP(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
)
GROUP BY window_start, window_end, ad_id;
