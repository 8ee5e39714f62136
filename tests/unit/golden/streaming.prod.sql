-- streaming: the streaming job. Reads the raw topic, archives every delivery, splits late events
-- into the late topic, deduplicates, enriches, applies billing idempotency and writes every mart
-- to its topic. Outputs: snk_raw_archive, snk_late_events and, for every sql/views/mart_<name>.sql, sink sql/sinks/snk_<name>.sql
-- (found by file name: an analyst adds an aggregate by adding those two files).
-- Settings come from the environment file.
SET 'pipeline.name' = 'adagg-streaming-prod';
SET 'parallelism.default' = '12';
SET 'pipeline.max-parallelism' = '128';
SET 'table.local-time-zone' = 'UTC';
SET 'table.exec.state.ttl' = '26 h';
SET 'execution.checkpointing.interval' = '60 s';
SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';
-- No task of this unbounded job ever finishes. Under back-pressure the source's subtasks take a
-- stop-with-savepoint at different points, and with checkpoints after finished tasks allowed
-- Flink refuses that savepoint for the source's vertex, whose raw-archive writer keeps union
-- list state (docs/deploy.md#a-stop-under-back-pressure). A bounded run (benchmarks, view tests)
-- keeps them: its exactly-once sinks commit their last records in the final checkpoint.
SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'false';
-- Keyed state off the heap, checkpointed incrementally (docs/pipeline.md#state-and-memory).
SET 'state.backend.type' = 'rocksdb';
SET 'execution.checkpointing.incremental' = 'true';
-- Bloom filters in RocksDB's files: most lookups of both dedups are for keys never seen (a new
-- event), which a filter answers without reading a data block. Measured: +25% read rate
-- (docs/benchmarks.md#where-the-streaming-jobs-time-goes). Ignored by the heap backend.
SET 'state.backend.rocksdb.use-bloom-filter' = 'true';
-- Survive occasional failures forever, stop a crash loop (infra/env: flink.restart).
SET 'restart-strategy.type' = 'exponential-delay';
SET 'restart-strategy.exponential-delay.initial-backoff' = '1 s';
SET 'restart-strategy.exponential-delay.max-backoff' = '2 min';
SET 'restart-strategy.exponential-delay.backoff-multiplier' = '2.0';
SET 'restart-strategy.exponential-delay.reset-backoff-threshold' = '10 min';
SET 'restart-strategy.exponential-delay.attempts-before-reset-backoff' = '20';
SET 'restart-strategy.exponential-delay.jitter-factor' = '0.1';
SET 'pipeline.auto-watermark-interval' = '200 ms';
-- Skew: every window aggregate runs in two phases (a local pre-aggregate per slice before the
-- shuffle), so a hot ad is summed locally first. Mini-batch stays off on purpose: in this job
-- Flink 2.2 would insert a processing-time mini-batch assigner after the source, which drops
-- event-time watermarks, and it turns the append-only dedup into an updating one (docs/pipeline.md).
SET 'table.exec.mini-batch.enabled' = 'false';
SET 'table.optimizer.agg-phase-strategy' = 'TWO_PHASE';
-- Optimize shared views once, so the dedup and enrichment run once for all sinks.
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';
SET 'python.execution-mode' = 'thread';

-- enrich_event: device_type, os, browser, country, vertical and invalid_reason of one event from
-- its user agent, IP and campaign: device/OS/browser class, ISO country from the IP-range table
-- ('ZZ' unknown), the campaign's vertical from the dimension table, and the invalid-traffic reason
-- ('bot_user_agent', 'blocked_ip', '' = valid). One Python call per event, one STRING each way
-- (a STRING crosses cheaper than three arguments in, or a ROW out):
-- - argument: macros/columns.sql enrichment_input(ip, campaign_id, user_agent), the three joined;
-- - result: the six values with CHR(31) between, which int_deliveries_enriched splits into an
--   array; macros/columns.sql enrichment_field() reads one by name.
-- Python UDF (udfs/flink.py, logic in udfs/enrichment.py); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION enrich_event AS 'udfs.flink.enrich_event' LANGUAGE PYTHON;

-- src_ad_events_raw: raw ad events as written to the raw topic, one row per Kafka record
-- (duplicates included), and the collector's heartbeats. Grain: one event delivery or heartbeat.
-- Input: topic `topics.raw`, keyed by billing key. Columns are the union of every contract version
-- (contracts/ad_event/): fields a producer's version lacks read as NULL, unknown fields are ignored.
-- Event time `ts` trails by the watermark bound plus the allowed lateness (see infra/env). There is
-- no idle timeout: the collector's heartbeats keep every partition's watermark moving instead
-- (collector/heartbeat.py says why).

CREATE TABLE src_ad_events_raw (
  schema_version INT,
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  ip STRING,
  user_agent STRING,
  placement_id STRING,
  publisher_id STRING,
  cost_micros BIGINT,
  conversion_value_micros BIGINT,
  referrer_domain STRING,
  -- Set (to the collector's id) on a heartbeat: a record with an event time and nothing else, which
  -- counts for the watermarks and is dropped after (stg_deliveries, stg_raw_archive).
  heartbeat STRING,
  -- Where the delivery sits in Kafka: the raw archive's manifests record offset ranges from these.
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  -- The collector's record headers: adagg-source (the API key's name) names who sent the event.
  kafka_headers MAP<STRING, BYTES> METADATA FROM 'headers' VIRTUAL,
  proc_time AS PROCTIME(),
  ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR ts AS ts - INTERVAL '30' SECOND - INTERVAL '90' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-events.raw',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'properties.group.id' = 'adagg-streaming-prod',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.emit.strategy' = 'on-periodic',
  'format' = 'json',
  'json.fail-on-missing-field' = 'false',
  'json.ignore-parse-errors' = 'false'
);

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
    - INTERVAL '30' SECOND
    - INTERVAL '90' SECOND AS partition_watermark
FROM (
  SELECT *,
    MAX(event_time) OVER (
      PARTITION BY partition_key ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS partition_high_ms
  FROM (
    SELECT *,
      CASE kafka_partition
        WHEN 0 THEN 41
        WHEN 1 THEN 7
        WHEN 2 THEN 97
        WHEN 3 THEN 28
        WHEN 4 THEN 96
        WHEN 5 THEN 104
        WHEN 6 THEN 424
        WHEN 7 THEN 36
        WHEN 8 THEN 4
        WHEN 9 THEN 23
        WHEN 10 THEN 333
        WHEN 11 THEN 102
        WHEN 12 THEN 207
        WHEN 13 THEN 116
        WHEN 14 THEN 13
        WHEN 15 THEN 281
        WHEN 16 THEN 88
        WHEN 17 THEN 60
        WHEN 18 THEN 386
        WHEN 19 THEN 130
        WHEN 20 THEN 190
        WHEN 21 THEN 29
        WHEN 22 THEN 273
        WHEN 23 THEN 24
        WHEN 24 THEN 34
        WHEN 25 THEN 154
        WHEN 26 THEN 107
        WHEN 27 THEN 164
        WHEN 28 THEN 109
        WHEN 29 THEN 27
        WHEN 30 THEN 94
        WHEN 31 THEN 63
        WHEN 32 THEN 328
        WHEN 33 THEN 174
        WHEN 34 THEN 19
        WHEN 35 THEN 1
        WHEN 36 THEN 228
        WHEN 37 THEN 235
        WHEN 38 THEN 0
        WHEN 39 THEN 140
        WHEN 40 THEN 31
        WHEN 41 THEN 9
        WHEN 42 THEN 186
        WHEN 43 THEN 62
        WHEN 44 THEN 155
        WHEN 45 THEN 568
        WHEN 46 THEN 98
        WHEN 47 THEN 52
        -- A partition added to the topic since rendering: its own key, wherever it lands.
        ELSE -1 - kafka_partition
      END AS partition_key
    FROM src_ad_events_raw
  )
)
WHERE heartbeat IS NULL;

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

-- stg_raw_archive: every raw delivery as the archive stores it: the contract's columns (the
-- schema version per row), where it sat in Kafka, and its UTC event date and hour partition.
-- Grain: one event delivery (duplicates and late events included). Input: src_ad_events_raw.
CREATE TEMPORARY VIEW stg_raw_archive AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain,
  kafka_partition,
  kafka_offset,
  DATE_FORMAT(ts, 'yyyy-MM-dd') AS dt,
  DATE_FORMAT(ts, 'HH') AS hr
FROM src_ad_events_raw
WHERE heartbeat IS NULL;

-- int_deliveries_enriched: on-time deliveries with their billing idempotency key and their
-- enrichment: device_type, os, browser, country, vertical and invalid_reason from the Python UDF
-- enrich_event (sql/functions/), packed in one STRING and split here into an ARRAY<STRING> that
-- the dedups' views read. Reading the fields here would not do: the planner copies the call into
-- each of the six expressions that read it. The split is one expression, so the call stays one.
-- Grain: one event delivery (duplicates still present). Input: stg_events_on_time.
-- Both dedups read this view: the exact one (int_events_deduped) and the billing one
-- (int_events_billable), so the UDF runs once per delivery for both (enrich_event is
-- deterministic; a duplicate delivery costs one extra call).
-- billing_key = ad_id|user_id|event_type|bucket start ms with '\' and '|' in the ids escaped
-- (macros/keys.sql), buckets per event type from the environment (billing.bucket_seconds);
-- adagg/contract.py computes the same key, which the raw topic is keyed by.
CREATE TEMPORARY VIEW int_deliveries_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, conversion_value_micros, kafka_offset, proc_time, ts,
  CONCAT_WS('|',
    REPLACE(REPLACE(ad_id, '\', '\\'), '|', '\|'),
    REPLACE(REPLACE(user_id, '\', '\\'), '|', '\|'),
    event_type,
    CAST(event_time - MOD(event_time, CASE event_type
      WHEN 'impression' THEN 60000
      WHEN 'click' THEN 60000
      WHEN 'conversion' THEN 86400000
    END) AS STRING)) AS billing_key,
  schema_version, ip, user_agent, placement_id, referrer_domain, source, received_at_ms,
  SPLIT(enrich_event(CONCAT_WS(CHR(31),
    IF(POSITION(CHR(31) IN ip) > 0, '', COALESCE(ip, '')),
    IF(POSITION(CHR(31) IN campaign_id) > 0, '', COALESCE(campaign_id, '')),
    COALESCE(user_agent, ''))), CHR(31)) AS enrichment
FROM stg_events_on_time;

-- int_events_deduped: on-time enriched events with exact duplicates removed (first delivery wins).
-- Grain: one event (event_id). Input: int_deliveries_enriched.
-- Ordering by processing time keeps the output append-only, so windows can follow. The state
-- is bounded only by table.exec.state.ttl (flink.state_ttl); the STATE_TTL hint does not apply.
CREATE TEMPORARY VIEW int_events_deduped AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, conversion_value_micros, kafka_offset, ts, billing_key,
  schema_version, ip, user_agent, placement_id, referrer_domain, source, received_at_ms,
  enrichment
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS delivery_rank
  FROM int_deliveries_enriched
)
WHERE delivery_rank = 1;

-- int_events_enriched: unique on-time events with device, country, campaign vertical, the
-- invalid-traffic reason (NULL = valid) and the billing idempotency key.
-- Grain: one event (event_id). Input: int_events_deduped (its enrichment is enrich_event's result
-- split into an array, and its billing key, both computed per delivery in int_deliveries_enriched
-- and read here, after the dedup).
CREATE TEMPORARY VIEW int_events_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
  schema_version, ip, user_agent, placement_id, referrer_domain, received_at_ms,
  enrichment[2] AS os,
  enrichment[3] AS browser,
  enrichment[1] AS device_type,
  enrichment[4] AS country,
  enrichment[5] AS vertical,
  NULLIF(enrichment[6], '') AS invalid_reason,
  billing_key,
  ts
FROM int_events_deduped;

-- int_events_billable: the events advertisers pay for: valid traffic, first arrival per
-- billing key (a user's repeats on an ad within one bucket bill once).
-- Grain: one billing key. Input: int_deliveries_enriched: deliveries, not unique events.
-- Why deliveries: the first valid delivery of a key is the first delivery of the key's first valid
-- event, so the result is the one over unique events. But a key's deliveries reach this dedup in
-- the order of their Kafka partition (the raw topic is keyed by billing key: one key, one
-- partition, one channel), while unique events come out of the exact dedup, which is keyed by
-- event_id: at parallelism > 1 two events of one key pass different subtasks, and which one bills
-- would depend on which arrived first.
CREATE TEMPORARY VIEW int_events_billable AS
SELECT *
FROM (
  -- The event and the columns int_event_measures reads, no more: the batch planner does not prune
  -- columns below a ROW_NUMBER, so every column listed here is sorted (a backfill sorts a day).
  SELECT
    event_id, ad_id, campaign_id, advertiser_id,
    enrichment[5] AS vertical,
    enrichment[4] AS country,
    enrichment[1] AS device_type,
    publisher_id, event_type, event_time, ts, cost_micros,
    COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
    billing_key,
    source,
    ROW_NUMBER() OVER (PARTITION BY billing_key ORDER BY proc_time ASC) AS billing_rank
  FROM int_deliveries_enriched
  WHERE NULLIF(enrichment[6], '') IS NULL
)
WHERE billing_rank = 1;

-- int_event_measures: one row of additive measures per unique event (raw counts) and one per
-- billable event (billable counts, spend), so a single SUM gives raw and billable side by side.
-- In the streaming job, a unique event's row also has the time the collector accepted it
-- (received_at_ms, for the live tier's freshness; NULL on the billable rows).
-- Grain: one event (twice for a billable one). Inputs: int_events_enriched, int_events_billable.
CREATE TEMPORARY VIEW int_event_measures AS
SELECT
  ad_id, campaign_id, advertiser_id, vertical, country, device_type, publisher_id, event_time, ts,
  received_at_ms,
  CAST(IF(event_type = 'impression', 1, 0) AS BIGINT) AS impressions,
  CAST(IF(event_type = 'click', 1, 0) AS BIGINT) AS clicks,
  CAST(IF(event_type = 'conversion', 1, 0) AS BIGINT) AS conversions,
  CAST(IF(invalid_reason IS NULL, 0, 1) AS BIGINT) AS invalid_events,
  CAST(0 AS BIGINT) AS billable_impressions,
  CAST(0 AS BIGINT) AS billable_clicks,
  CAST(0 AS BIGINT) AS billable_conversions,
  CAST(0 AS BIGINT) AS spend_micros,
  CAST(0 AS BIGINT) AS conversion_value_micros
FROM int_events_enriched
UNION ALL
SELECT
  ad_id, campaign_id, advertiser_id, vertical, country, device_type, publisher_id, event_time, ts,
  CAST(NULL AS BIGINT) AS received_at_ms,
  CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT),
  CAST(IF(event_type = 'impression', 1, 0) AS BIGINT),
  CAST(IF(event_type = 'click', 1, 0) AS BIGINT),
  CAST(IF(event_type = 'conversion', 1, 0) AS BIGINT),
  cost_micros,
  conversion_value_micros
FROM int_events_billable;

-- int_ad_minute: raw and billable measures per ad, country and device in 1-minute event-time
-- windows, emitted once when the watermark passes the window end.
-- Grain: (minute, ad_id, country, device_type, campaign_id, advertiser_id, vertical).
-- Input: int_event_measures.
-- minute_time (the window's rowtime) lets hour windows, sliding windows and Top-N cascade from it.

CREATE TEMPORARY VIEW int_ad_minute AS
SELECT
  window_start AS minute_start,
  window_end AS minute_end,
  window_time AS minute_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(conversions) AS conversions,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(billable_conversions) AS billable_conversions,
  SUM(spend_micros) AS spend_micros,
  SUM(conversion_value_micros) AS conversion_value_micros
FROM TABLE(
  TUMBLE(TABLE int_event_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, window_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;

-- int_ad_hour: int_ad_minute rolled up into 1-hour windows (UTC), emitted once per window.
-- Grain: (hour, ad_id, country, device_type, campaign_id, advertiser_id, vertical).
-- Input: int_ad_minute.

CREATE TEMPORARY VIEW int_ad_hour AS
SELECT
  window_start AS hour_start,
  window_end AS hour_end,
  window_time AS hour_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(conversions) AS conversions,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(billable_conversions) AS billable_conversions,
  SUM(spend_micros) AS spend_micros,
  SUM(conversion_value_micros) AS conversion_value_micros
FROM TABLE(
  TUMBLE(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' HOUR)
)
GROUP BY window_start, window_end, window_time,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;

-- int_ad_scope_minute: per-ad click totals per minute, over all countries (country_scope 'ALL') and
-- per country (country_scope = country code): the input of the Top-N ranking.
-- Grain: (minute, country_scope, ad_id). Input: int_ad_minute.
CREATE TEMPORARY VIEW int_ad_scope_minute AS
SELECT
  window_start,
  window_end,
  COALESCE(country, 'ALL') AS country_scope,
  ad_id,
  SUM(billable_clicks) AS billable_clicks,
  SUM(clicks) AS clicks,
  SUM(impressions) AS impressions
FROM TABLE(
  TUMBLE(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, GROUPING SETS ((ad_id), (ad_id, country));

-- int_quality_measures: one row per on-time delivery, per unique event and per billable event,
-- each with a 1 in the column it counts, so that one SUM per window gives deliveries, unique
-- events, valid events and billable events side by side (the duplicate-rate SLO, docs/slo.md); a
-- delivery's row also has the time the collector accepted it (the final tier's freshness).
-- Grain: one delivery, event or billing key (a billable event is in three rows).
-- Inputs: int_deliveries_enriched, int_events_deduped, int_events_billable.
-- An event counts under the source of its first delivery, a billing key under that of its first
-- valid delivery: the same rows the dedups keep.
CREATE TEMPORARY VIEW int_quality_measures AS
SELECT
  source, ts, received_at_ms,
  CAST(1 AS BIGINT) AS deliveries,
  CAST(0 AS BIGINT) AS unique_events,
  CAST(0 AS BIGINT) AS valid_events,
  CAST(0 AS BIGINT) AS billable_events
FROM int_deliveries_enriched
UNION ALL
SELECT
  source, ts, CAST(NULL AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(1 AS BIGINT),
  CAST(IF(NULLIF(enrichment[6], '') IS NULL, 1, 0) AS BIGINT),
  CAST(0 AS BIGINT)
FROM int_events_deduped
UNION ALL
SELECT
  source, ts, CAST(NULL AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(1 AS BIGINT)
FROM int_events_billable;

-- mart_ad_day: final-tier daily roll-up (UTC days), emitted once the watermark passes the day.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_hour.

CREATE TEMPORARY VIEW mart_ad_day AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 60000 AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(conversions) AS conversions,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(billable_conversions) AS billable_conversions,
  SUM(spend_micros) AS spend_micros,
  SUM(conversion_value_micros) AS conversion_value_micros,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  TUMBLE(TABLE int_ad_hour, DESCRIPTOR(hour_time), INTERVAL '1' DAY)
)
GROUP BY window_start, window_end,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;

-- snk_ad_day: topic `<outputs.prefix>ad-day`, read by the Pinot table ad_day.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_day.
-- Exactly-once: visible to read_committed consumers at checkpoint.

CREATE TABLE snk_ad_day (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  vertical STRING,
  country STRING,
  device_type STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  billable_conversions BIGINT,
  spend_micros BIGINT,
  conversion_value_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.ad-day',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;ad_id;country;device_type;campaign_id;advertiser_id;vertical',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-ad-day',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_ad_hour: final-tier hourly roll-up of mart_ad_minute's measures (UTC hours).
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_hour.

CREATE TEMPORARY VIEW mart_ad_hour AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', hour_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', hour_end) AS BIGINT) * 60000 AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
impressions, clicks, conversions, invalid_events,
  billable_impressions, billable_clicks, billable_conversions, spend_micros, conversion_value_micros,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM int_ad_hour;

-- snk_ad_hour: topic `<outputs.prefix>ad-hour`, read by the Pinot table ad_hour.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_hour.
-- Exactly-once: visible to read_committed consumers at checkpoint.

CREATE TABLE snk_ad_hour (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  vertical STRING,
  country STRING,
  device_type STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  billable_conversions BIGINT,
  spend_micros BIGINT,
  conversion_value_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.ad-hour',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;ad_id;country;device_type;campaign_id;advertiser_id;vertical',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-ad-hour',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_ad_minute: final-tier minute aggregates per ad, country and device: impressions, clicks,
-- conversions, invalid traffic, billable counts, spend and conversion value (CTR = clicks /
-- impressions, billable or raw). Emitted once per window after the watermark; exactly-once.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_minute.

CREATE TEMPORARY VIEW mart_ad_minute AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', minute_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', minute_end) AS BIGINT) * 60000 AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
impressions, clicks, conversions, invalid_events,
  billable_impressions, billable_clicks, billable_conversions, spend_micros, conversion_value_micros,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM int_ad_minute;

-- snk_ad_minute: topic `<outputs.prefix>ad-minute`, read by the Pinot table ad_minute.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_minute.
-- Exactly-once: visible to read_committed consumers at checkpoint.

CREATE TABLE snk_ad_minute (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  vertical STRING,
  country STRING,
  device_type STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  billable_conversions BIGINT,
  spend_micros BIGINT,
  conversion_value_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.ad-minute',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;ad_id;country;device_type;campaign_id;advertiser_id;vertical',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-ad-minute',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_ad_minute_live: live-tier minute aggregates: the same measures as mart_ad_minute,
-- updated within seconds as events arrive (a changelog that upserts by key), for open windows
-- too. Provisional: a minute's live row converges to its final row once the window closes.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_event_measures.

CREATE TEMPORARY VIEW mart_ad_minute_live AS
SELECT
  event_time - MOD(event_time, 60000) AS window_start_ms,
  event_time - MOD(event_time, 60000) + 60000 AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(conversions) AS conversions,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(billable_conversions) AS billable_conversions,
  SUM(spend_micros) AS spend_micros,
  SUM(conversion_value_micros) AS conversion_value_micros,
  -- The newest collector acceptance among the row's events: the live tier's freshness (docs/slo.md).
  MAX(received_at_ms) AS max_received_at_ms,
'live' AS tier,
  CAST(0 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM int_event_measures
GROUP BY event_time - MOD(event_time, 60000),
  ad_id, campaign_id, advertiser_id, vertical, country, device_type;

-- snk_ad_minute_live: topic `<outputs.prefix>ad-minute-live`, read by the Pinot table ad_minute_live.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_minute_live.
-- Upsert changelog, at least once: a key's last record is its current value.

CREATE TABLE snk_ad_minute_live (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  vertical STRING,
  country STRING,
  device_type STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  billable_conversions BIGINT,
  spend_micros BIGINT,
  conversion_value_micros BIGINT,
  max_received_at_ms BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT,
  PRIMARY KEY (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'ad-agg.ad-minute-live',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'key.format' = 'json',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.buffer-flush.interval' = '1 s',
  'sink.buffer-flush.max-rows' = '10000',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}'
);

-- mart_ad_sliding_5m: final-tier sliding windows, 5 minutes long every minute, per ad.
-- Grain: (window_start_ms, ad_id). Input: int_ad_minute (minutes cascade into the hops).

CREATE TEMPORARY VIEW mart_ad_sliding_5m AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 60000 AS window_end_ms,
  ad_id,
  SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(spend_micros) AS spend_micros,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  HOP(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
)
GROUP BY window_start, window_end, ad_id;

-- snk_ad_sliding_5m: topic `<outputs.prefix>ad-sliding-5m`, read by the Pinot table ad_sliding_5m.
-- Grain: (window_start_ms, ad_id), the record key. Input: mart_ad_sliding_5m. Exactly-once.

CREATE TABLE snk_ad_sliding_5m (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  impressions BIGINT,
  clicks BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  spend_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.ad-sliding-5m',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;ad_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-ad-sliding-5m',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_events_enriched: every unique on-time event with its enrichment and billing key, for
-- drill-down and audits (not an aggregate: no lineage columns).
-- Grain: one event (event_id). Input: int_events_enriched.
CREATE TEMPORARY VIEW mart_events_enriched AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain, device_type, os, browser, country, vertical, invalid_reason, billing_key
FROM int_events_enriched;

-- snk_events_enriched: topic `topics.enriched`, read for drill-down and audits.
-- Grain: one unique on-time event, keyed by event_id. Input: mart_events_enriched. Exactly-once.

CREATE TABLE snk_events_enriched (
  schema_version INT,
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  ip STRING,
  user_agent STRING,
  placement_id STRING,
  publisher_id STRING,
  cost_micros BIGINT,
  conversion_value_micros BIGINT,
  referrer_domain STRING,
  device_type STRING,
  os STRING,
  browser STRING,
  country STRING,
  vertical STRING,
  invalid_reason STRING,
  billing_key STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-events.enriched',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'event_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-events-enriched',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_publisher_minute: final-tier minute totals per publisher (supply side): impressions,
-- clicks, invalid traffic, billable counts and spend. Added as the analyst example of
-- docs/adding-an-aggregate.md: this file and its sink are the whole change.
-- Grain: (window_start_ms, publisher_id). Input: int_event_measures.

CREATE TEMPORARY VIEW mart_publisher_minute AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 60000 AS window_end_ms,
  publisher_id,
  SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(spend_micros) AS spend_micros,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  TUMBLE(TABLE int_event_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, publisher_id;

-- snk_publisher_minute: topic `<outputs.prefix>publisher-minute`.
-- Grain: (window_start_ms, publisher_id), the record key. Input: mart_publisher_minute.
-- Exactly-once.

CREATE TABLE snk_publisher_minute (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  publisher_id STRING,
  impressions BIGINT,
  clicks BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  spend_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.publisher-minute',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;publisher_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-publisher-minute',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_quality_minute: the data-quality SLO table: per event-time minute and source (API key), the
-- on-time deliveries, the unique events among them and the exact duplicates (deliveries - unique),
-- the valid events, the billable events and the billing repeats (valid - billable: a valid event
-- whose billing key an earlier one took). Late deliveries are not here (they arrive after their
-- window closed): they are rows of the late topic, with their source (docs/slo.md).
-- Grain: (window_start_ms, source). Input: int_quality_measures.

CREATE TEMPORARY VIEW mart_quality_minute AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 60000 AS window_end_ms,
  source,
  SUM(deliveries) AS deliveries,
  SUM(unique_events) AS unique_events,
  SUM(deliveries) - SUM(unique_events) AS duplicate_deliveries,
  SUM(valid_events) AS valid_events,
  SUM(billable_events) AS billable_events,
  SUM(valid_events) - SUM(billable_events) AS billing_repeats,
  -- The newest collector acceptance among the window's deliveries: written when the window
  -- closes, like every final row, so now minus it is the final tier's freshness (docs/slo.md).
  MAX(received_at_ms) AS max_received_at_ms,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM TABLE(
  TUMBLE(TABLE int_quality_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, source;

-- snk_quality_minute: topic `<outputs.prefix>quality-minute`.
-- Grain: (window_start_ms, source), the record key. Input: mart_quality_minute.
-- Exactly-once.

CREATE TABLE snk_quality_minute (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  source STRING,
  deliveries BIGINT,
  unique_events BIGINT,
  duplicate_deliveries BIGINT,
  valid_events BIGINT,
  billable_events BIGINT,
  billing_repeats BIGINT,
  max_received_at_ms BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.quality-minute',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;source',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-quality-minute',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- mart_top_ads_minute: the top 100 ads by billable clicks in each minute, overall (country_scope 'ALL')
-- and per country (country_scope = country code); ties are broken by ad_id so ranks are deterministic.
-- Grain: (window_start_ms, country_scope, ad_rank). Input: int_ad_scope_minute (window Top-N).

CREATE TEMPORARY VIEW mart_top_ads_minute AS
SELECT
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT) * 60000 AS window_start_ms,
  CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 60000 AS window_end_ms,
  country_scope,
  ad_rank,
  ad_id,
  billable_clicks,
  clicks,
  impressions,
'final' AS tier,
  CAST(1 AS BIGINT) AS version,
  '0.1.0+sql.af9605f902c4' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
FROM (
  SELECT *,
    ROW_NUMBER() OVER (
      PARTITION BY window_start, window_end, country_scope
      ORDER BY billable_clicks DESC, ad_id ASC
    ) AS ad_rank
  FROM int_ad_scope_minute
)
WHERE ad_rank <= 100;

-- snk_top_ads_minute: topic `<outputs.prefix>top-ads-minute`, read by the Pinot table
-- top_ads_minute. Grain: (window_start_ms, country_scope, ad_rank), the record key.
-- Input: mart_top_ads_minute. Exactly-once.

CREATE TABLE snk_top_ads_minute (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  country_scope STRING,
  ad_rank BIGINT,
  ad_id STRING,
  billable_clicks BIGINT,
  clicks BIGINT,
  impressions BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-agg.top-ads-minute',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'window_start_ms;country_scope;ad_rank',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-top-ads-minute',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- snk_late_events: topic `topics.late`: every late event delivery with the reason, the
-- watermark it was late against, when it was seen and who sent it. Grain: one event delivery, keyed by
-- event_id. Input: stg_events_late. Exactly-once.

CREATE TABLE snk_late_events (
  schema_version INT,
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  ip STRING,
  user_agent STRING,
  placement_id STRING,
  publisher_id STRING,
  cost_micros BIGINT,
  conversion_value_micros BIGINT,
  referrer_domain STRING,
  source STRING,
  reason STRING,
  watermark_at STRING,
  detected_at STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'ad-events.late',
  'properties.bootstrap.servers' = 'b-1.kafka.prod.adagg.internal:9096,b-2.kafka.prod.adagg.internal:9096,b-3.kafka.prod.adagg.internal:9096',
  'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.mechanism' = 'SCRAM-SHA-512',
  'properties.sasl.jaas.config' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required username="${env:ADAGG_KAFKA_USERNAME}" password="${env:ADAGG_KAFKA_PASSWORD}";',
  'properties.config.providers' = 'env',
  'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka.common.config.provider.EnvVarConfigProvider',
  'properties.ssl.truststore.location' = '/etc/adagg/kafka.truststore.jks',
  'properties.ssl.truststore.password' = '${env:ADAGG_KAFKA_TRUSTSTORE_PASSWORD}',
  'key.format' = 'json',
  'key.fields' = 'event_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'adagg-prod-late',
  'sink.transaction-naming-strategy' = 'POOLING',
  'properties.transaction.timeout.ms' = '900000'
);

-- snk_raw_archive: the immutable raw archive at `archive.path`: Parquet files partitioned by UTC
-- event date and hour (dt=YYYY-MM-DD/hr=HH). Exactly once: files are committed with checkpoints.
-- A partition is committed (_SUCCESS) once the watermark passes its end; `adagg archive seal`
-- then writes its manifest (archive/manifest.py). Late events still land in their event hour.
-- Grain: one raw delivery. Input: stg_raw_archive.
CREATE TABLE snk_raw_archive (
  schema_version INT,
  event_id STRING,
  event_type STRING,
  event_time BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  user_id STRING,
  ip STRING,
  user_agent STRING,
  placement_id STRING,
  publisher_id STRING,
  cost_micros BIGINT,
  conversion_value_micros BIGINT,
  referrer_domain STRING,
  kafka_partition INT,
  kafka_offset BIGINT,
  dt STRING,
  hr STRING
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = 's3://adagg-prod-raw-archive/ad-events',
  'format' = 'parquet',
  'sink.partition-commit.trigger' = 'partition-time',
  'partition.time-extractor.timestamp-pattern' = '$dt $hr:00:00',
  -- The partition time is the hour's start: commit once the watermark is an hour past it.
  'sink.partition-commit.delay' = '1 h',
  'sink.partition-commit.watermark-time-zone' = 'UTC',
  'sink.partition-commit.policy.kind' = 'success-file'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO snk_ad_day SELECT * FROM mart_ad_day;
INSERT INTO snk_ad_hour SELECT * FROM mart_ad_hour;
INSERT INTO snk_ad_minute SELECT * FROM mart_ad_minute;
INSERT INTO snk_ad_minute_live SELECT * FROM mart_ad_minute_live;
INSERT INTO snk_ad_sliding_5m SELECT * FROM mart_ad_sliding_5m;
INSERT INTO snk_events_enriched SELECT * FROM mart_events_enriched;
INSERT INTO snk_publisher_minute SELECT * FROM mart_publisher_minute;
INSERT INTO snk_quality_minute SELECT * FROM mart_quality_minute;
INSERT INTO snk_top_ads_minute SELECT * FROM mart_top_ads_minute;
INSERT INTO snk_late_events SELECT * FROM stg_events_late;
INSERT INTO snk_raw_archive SELECT * FROM stg_raw_archive;
END;
