-- stg_deliveries: every raw delivery with its partition's watermark: the highest event time its
-- Kafka partition has delivered up to and including it (heartbeats included, which are then
-- dropped), minus the same delay as the source's WATERMARK. The late split tests each delivery
-- against it as well as against CURRENT_WATERMARK.
-- Grain: one event delivery (duplicates included). Input: src_ad_events_raw.
-- Each delivery also gets its source (the API key it came in with) and the time the collector
-- accepted it, from the collector's record headers.
-- Why: Flink checkpoints no source watermark. After any restore CURRENT_WATERMARK(ts) is NULL, then
-- low, until fresh watermarks arrive, while every window operator restores its own and drops the
-- rows of windows it has already fired, silently. This running maximum is keyed state, restored
-- with the checkpoint, and it follows the partition's order, which a replay repeats: whatever the
-- timing, a delivery at or below it is late, and no window ever drops an on-time row
-- (docs/pipeline.md#late-events-across-restarts).
-- The running maximum is keyed by partition_key, one distinct INT per partition, chosen in evenly
-- spaced key groups so that every subtask gets its share of partitions at any parallelism
-- (adagg/keygroups.py). Keyed by the partition number itself, the few keys landed where the hash
-- put them (4 partitions at parallelism 2: all on one subtask), and with them this chain's late
-- split and Python UDF.
CREATE TEMPORARY VIEW stg_deliveries AS
SELECT *,
  -- Who sent it: the collector's API key name; 'direct' for a record written to Kafka without the
  -- collector (replays, tests, benchmarks).
  COALESCE(CAST(kafka_headers['adagg-source'] AS STRING), 'direct') AS source,
  -- When the collector accepted it (epoch ms; NULL without the collector): what the freshness
  -- SLOs measure from (docs/slo.md#freshness).
  TRY_CAST(CAST(kafka_headers['adagg-received-at'] AS STRING) AS BIGINT) AS received_at_ms,
  TO_TIMESTAMP_LTZ(partition_high_ms, 3)
    - INTERVAL '{{ env.flink.watermark_bound_seconds }}' SECOND
    - INTERVAL '{{ env.flink.allowed_lateness_seconds }}' SECOND AS partition_watermark
FROM (
  SELECT *,
    MAX(event_time) OVER (
      PARTITION BY partition_key ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS partition_high_ms
  FROM (
    SELECT *,
      CASE kafka_partition
{%- for key in raw_partition_keys() %}
        WHEN {{ loop.index0 }} THEN {{ key }}
{%- endfor %}
        -- A partition added to the topic since rendering: its own key, wherever it lands.
        ELSE -1 - kafka_partition
      END AS partition_key
    FROM src_ad_events_raw
  )
)
WHERE heartbeat IS NULL;
