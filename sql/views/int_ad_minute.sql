-- int_ad_minute: raw and billable measures per ad, country and device in 1-minute event-time
-- windows, emitted once when the watermark passes the window end.
-- Grain: (minute, ad_id, country, device_type, campaign_id, advertiser_id, vertical).
-- Input: int_event_measures.
-- minute_time (the window's rowtime) lets hour windows, sliding windows and Top-N cascade from it.
{% from "macros/columns.sql" import sum_measures with context %}
CREATE TEMPORARY VIEW int_ad_minute AS
SELECT
  window_start AS minute_start,
  window_end AS minute_end,
  window_time AS minute_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ sum_measures() }}
FROM TABLE(
  TUMBLE(TABLE int_event_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, window_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;
