-- stg_events_late: raw events whose event time is at or below the current watermark; they
-- are kept out of the windows and written to the late topic, never dropped.
-- Grain: one event delivery. Input: src_ad_events_raw.
CREATE TEMPORARY VIEW stg_events_late AS
SELECT
  event_id,
  event_type,
  event_time,
  ad_id,
  campaign_id,
  advertiser_id,
  user_id,
  'late' AS reason,
  CAST(CAST(CURRENT_WATERMARK(ts) AS TIMESTAMP(3)) AS STRING) AS watermark_at
FROM src_ad_events_raw
WHERE ts <= CURRENT_WATERMARK(ts);
