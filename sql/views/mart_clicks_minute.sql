-- mart_clicks_minute: final-tier click counts per ad and 1-minute event-time window.
-- Grain: (ad_id, window_start). Input: int_events_deduped.
-- A window is emitted once, when the watermark passes its end; lineage columns say which
-- pipeline/SQL version computed it and when. Window bounds are epoch ms; the job runs in UTC
-- (table.local-time-zone), which UNIX_TIMESTAMP relies on.
CREATE TEMPORARY VIEW mart_clicks_minute AS
SELECT
  ad_id,
  UNIX_TIMESTAMP(CAST(window_start AS STRING)) * 1000 AS window_start_ms,
  UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000 AS window_end_ms,
  COUNT(*) AS clicks,
  'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '{{ pipeline_version }}' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  TUMBLE(TABLE int_events_deduped, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
WHERE event_type = 'click'
GROUP BY ad_id, window_start, window_end;
