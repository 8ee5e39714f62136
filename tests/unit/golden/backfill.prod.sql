-- backfill: the streaming job's own dedup, enrichment and window SQL, run in batch mode over the
-- raw archive for the hours of [from_ms, to_ms): the reconciled tier's numbers. Only the source
-- (src_ad_events_archive + views/batch/stg_events_on_time.sql instead of the Kafka topic and the late split)
-- and the execution mode differ; every view from int_deliveries_enriched to mart_ad_minute is the
-- very file the streaming job includes (tests/unit/test_sql.py checks it), with the few mode
-- switches of macros/modes.sql.
-- Output: snk_backfill_ad_minute, the minute windows in [from_ms, to_ms).

SET 'execution.runtime-mode' = 'batch';
SET 'pipeline.name' = 'adagg-backfill-prod';
SET 'parallelism.default' = '12';
SET 'table.local-time-zone' = 'UTC';
SET 'python.execution-mode' = 'thread';
SET 'taskmanager.memory.managed.size' = '1536m';

-- Thread-mode UDFs run inside the JVM and take no managed memory: leave all of it to the sorts, so
-- that a day sorts without spilling to disk.
SET 'python.fn-execution.memory.managed' = 'false';

-- Every exchange pipelined, so the stages run at once on the machine's cores (the sorts take rows
-- while the Python UDF still produces them) instead of one after the other through blocking
-- shuffle files: 37.7-42.4 s against 45.8-48.8 s for a day of 859,258 rows (docs/benchmarks.md).
-- Pipelined exchanges need the default scheduler: the adaptive batch scheduler starts a stage only
-- once the stages it reads have finished, and the job hangs after the first buffers.
SET 'execution.batch-shuffle-mode' = 'ALL_EXCHANGES_PIPELINED';
SET 'jobmanager.scheduler' = 'default';
-- Optimize shared views once, as the streaming job does: int_events_enriched (read by the raw and
-- the billable branch) is then computed once per event, not once per branch: 21.8 s against
-- 23.2-23.7 s for a day (docs/benchmarks.md).
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';

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

-- src_ad_events_archive: the raw archive (snk_raw_archive's files) as a batch source: every
-- delivery the raw topic held, duplicates and late events included. Grain: one event delivery.
-- Input: Parquet under `archive.path`, partitioned by dt/hr (UTC event date and hour).
-- Columns match src_ad_events_raw, so the shared views read either; in batch mode `ts` is a plain
-- timestamp (no watermark: nothing is late) and proc_time orders deliveries by arrival, for the
-- dedups: the Kafka offset orders them as processing time did, because all deliveries of a
-- billing key (and so of an event) share one raw-topic partition.
CREATE TABLE src_ad_events_archive (
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
  hr STRING,
  proc_time AS TO_TIMESTAMP_LTZ(kafka_offset, 3),
  ts AS TO_TIMESTAMP_LTZ(event_time, 3)
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = 's3://adagg-prod-raw-archive/ad-events',
  'format' = 'parquet'
);

-- stg_events_on_time: the batch counterpart of views/stg_events_on_time.sql (views/batch/ holds
-- the backfill's own views), under the same name so that the shared views (int_events_deduped
-- onwards) read it unchanged. In a batch there is no watermark, so no event is late: every
-- archived delivery of the chosen hours is kept.
-- Grain: one event delivery (duplicates still present). Input: src_ad_events_archive, the
-- partitions (hours) of the backfill's range only.
CREATE TEMPORARY VIEW stg_events_on_time AS
SELECT *
FROM src_ad_events_archive
WHERE
  (dt = '2026-11-28' AND hr = '10');

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

-- snk_backfill_ad_minute: the batch recomputation of mart_ad_minute, as Parquet files in the
-- backfill's output folder, read by `adagg reconcile`. Grain: (window_start_ms, ad_id, country,
-- device_type, campaign_id, advertiser_id, vertical), the same columns as snk_ad_minute.
-- Input: mart_ad_minute (the shared SQL).
CREATE TABLE snk_backfill_ad_minute (
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
  'connector' = 'filesystem',
  'path' = 'file:///tmp/adagg-backfill-example',
  'format' = 'parquet'
);

INSERT INTO snk_backfill_ad_minute
SELECT *
FROM mart_ad_minute
WHERE window_start_ms >= 1795860000000 AND window_start_ms < 1795863600000;
