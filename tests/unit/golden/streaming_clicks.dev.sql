-- streaming_clicks: the streaming job. Reads the raw topic, splits late events into the late
-- topic, deduplicates on event_id and writes final 1-minute click counts per ad.
-- Outputs: snk_clicks_minute, snk_late_events. Settings come from the environment file.
SET 'pipeline.name' = 'adagg-streaming-clicks-dev';
SET 'parallelism.default' = '4';
SET 'table.local-time-zone' = 'UTC';
SET 'table.exec.state.ttl' = '6 h';
SET 'execution.checkpointing.interval' = '30 s';
SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';

-- src_ad_events_raw: raw ad events as written to the raw topic, one row per Kafka record
-- (duplicates included). Grain: one event delivery. Input: topic `topics.raw`.
-- Event time `ts` carries a bounded-out-of-orderness watermark (flink.watermark_bound_seconds,
-- 1 to 99: a SECOND interval literal holds two digits).

CREATE TABLE src_ad_events_raw (
  schema_version INT,
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  proc_time AS PROCTIME(),
  ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'dev.ad-events.raw',
  'properties.bootstrap.servers' = 'kafka.dev.adagg.internal:9092',
  'properties.security.protocol' = 'PLAINTEXT',
  'properties.group.id' = 'adagg-streaming-dev',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'json',
  'json.fail-on-missing-field' = 'false',
  'json.ignore-parse-errors' = 'false'
);

-- stg_events_on_time: raw events that arrived before the watermark passed them.
-- Grain: one event delivery (duplicates still present). Input: src_ad_events_raw.
-- The predicate is the Flink documentation's own: rows with no watermark yet are on time.
CREATE TEMPORARY VIEW stg_events_on_time AS
SELECT *
FROM src_ad_events_raw
WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);

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

-- int_events_deduped: on-time events with exact duplicates removed (first delivery wins).
-- Grain: one event (event_id). Input: stg_events_on_time.
-- Ordering by processing time keeps the output append-only, so windows can follow; the state
-- is bounded by table.exec.state.ttl (flink.state_ttl).
CREATE TEMPORARY VIEW int_events_deduped AS
SELECT schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, ts
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS delivery_rank
  FROM stg_events_on_time
)
WHERE delivery_rank = 1;

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
  '0.1.0+sql.581c600f57b7' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  TUMBLE(TABLE int_events_deduped, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
WHERE event_type = 'click'
GROUP BY ad_id, window_start, window_end;

-- snk_clicks_minute: Kafka topic read by the Pinot table ad_clicks_minute.
-- Grain: (ad_id, window_start_ms), the Pinot primary key, which is also the record key.
-- Input: mart_clicks_minute. Exactly-once: visible to read_committed consumers at checkpoint.

CREATE TABLE snk_clicks_minute (
  ad_id STRING,
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  clicks BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'dev.ad-agg.clicks-minute',
  'properties.bootstrap.servers' = 'kafka.dev.adagg.internal:9092',
  'properties.security.protocol' = 'PLAINTEXT',
  'key.format' = 'json',
  'key.fields' = 'ad_id;window_start_ms',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-dev-clicks-minute',
  'properties.transaction.timeout.ms' = '600000'
);

-- snk_late_events: Kafka topic holding every late event delivery with the reason and the
-- watermark it was late against. Grain: one event delivery. Input: stg_events_late.

CREATE TABLE snk_late_events (
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  reason STRING,
  watermark_at STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'dev.ad-events.late',
  'properties.bootstrap.servers' = 'kafka.dev.adagg.internal:9092',
  'properties.security.protocol' = 'PLAINTEXT',
  'key.format' = 'raw',
  'key.fields' = 'event_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-dev-late',
  'properties.transaction.timeout.ms' = '600000'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO snk_clicks_minute SELECT * FROM mart_clicks_minute;
INSERT INTO snk_late_events SELECT * FROM stg_events_late;
END;
