-- int_ad_hour: int_ad_minute rolled up into 1-hour windows (UTC), emitted once per window.
-- Grain: (hour, ad_id, country, device_type, campaign_id, advertiser_id, vertical).
-- Input: int_ad_minute.
{% from "macros/columns.sql" import sum_measures with context %}
CREATE TEMPORARY VIEW int_ad_hour AS
SELECT
  window_start AS hour_start,
  window_end AS hour_end,
  window_time AS hour_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ sum_measures() }}
FROM TABLE(
  TUMBLE(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' HOUR)
)
GROUP BY window_start, window_end, window_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;
