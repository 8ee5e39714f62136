-- mart_ad_day: final-tier daily roll-up (UTC days), emitted once the watermark passes the day.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_hour.
{% from "macros/columns.sql" import sum_measures, epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_ad_day AS
SELECT
  {{ epoch_ms('window_start') }} AS window_start_ms,
  {{ epoch_ms('window_end') }} AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ sum_measures() }},
{{ lineage('final') }}
FROM TABLE(
  TUMBLE(TABLE int_ad_hour, DESCRIPTOR(hour_time), INTERVAL '1' DAY)
)
GROUP BY window_start, window_end,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;
