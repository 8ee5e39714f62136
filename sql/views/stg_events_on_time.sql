-- stg_events_on_time: raw events that arrived before the watermark passed them.
-- Grain: one event delivery (duplicates still present). Input: src_ad_events_raw.
-- The predicate is the Flink documentation's own: rows with no watermark yet are on time.
CREATE TEMPORARY VIEW stg_events_on_time AS
SELECT *
FROM src_ad_events_raw
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);
