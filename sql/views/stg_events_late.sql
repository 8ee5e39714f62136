-- stg_events_late: raw deliveries whose event time is at or below the job's watermark
-- (CURRENT_WATERMARK) or their partition's (stg_deliveries): exactly the complement of
-- stg_events_on_time. They are kept out of every window, written to the late topic with the
-- watermark they were late against, and folded back in by reconciliation.
-- Grain: one event delivery (a late event's duplicates each appear). Input: stg_deliveries.
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
  source,
  'event_time_at_or_below_watermark' AS reason,
  -- The higher of the two watermarks (the job's is NULL for a while after a restore).
  CAST(CAST(
    CASE WHEN CURRENT_WATERMARK(ts) > partition_watermark THEN CURRENT_WATERMARK(ts) ELSE partition_watermark END
  AS TIMESTAMP(3)) AS STRING) AS watermark_at,
  CAST(CAST(PROCTIME() AS TIMESTAMP(3)) AS STRING) AS detected_at
FROM stg_deliveries
WHERE ts <= CURRENT_WATERMARK(ts) OR ts <= partition_watermark;
