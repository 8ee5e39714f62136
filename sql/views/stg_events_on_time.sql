-- stg_events_on_time: raw events that arrived before either watermark passed them: the job's
-- (CURRENT_WATERMARK, the minimum over all partitions) and their own partition's.
-- Grain: one event delivery (duplicates still present). Input: stg_deliveries.
-- The first test is the Flink documentation's own (rows with no watermark yet are on time); the
-- second holds across restores, when CURRENT_WATERMARK starts again from NULL (stg_deliveries).
CREATE TEMPORARY VIEW stg_events_on_time AS
SELECT *
FROM stg_deliveries
WHERE (CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts))
  AND ts > partition_watermark;
