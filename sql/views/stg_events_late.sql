-- stg_events_late: raw deliveries whose event time is at or below the current watermark. They
-- are kept out of every window, written to the late topic and folded back in by reconciliation.
-- Grain: one event delivery (a late event's duplicates each appear). Input: src_ad_events_raw.
CREATE TEMPORARY VIEW stg_events_late AS
SELECT
  schema_version,
  event_id,
  event_type,
  event_time,
  ad_id,
  campaign_id,
  advertiser_id,
  user_id,
  ip,
  user_agent,
  placement_id,
  publisher_id,
  cost_micros,
  conversion_value_micros,
  referrer_domain,
  'event_time_at_or_below_watermark' AS reason,
  CAST(CAST(CURRENT_WATERMARK(ts) AS TIMESTAMP(3)) AS STRING) AS watermark_at,
  CAST(CAST(PROCTIME() AS TIMESTAMP(3)) AS STRING) AS detected_at
FROM src_ad_events_raw
WHERE ts <= CURRENT_WATERMARK(ts);
