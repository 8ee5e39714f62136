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
  'path' = '{{ archive_uri() }}',
  'format' = 'parquet',
  'sink.partition-commit.trigger' = 'partition-time',
  'partition.time-extractor.timestamp-pattern' = '$dt $hr:00:00',
  -- The partition time is the hour's start: commit once the watermark is an hour past it.
  'sink.partition-commit.delay' = '1 h',
  'sink.partition-commit.watermark-time-zone' = 'UTC',
  'sink.partition-commit.policy.kind' = 'success-file'
);
