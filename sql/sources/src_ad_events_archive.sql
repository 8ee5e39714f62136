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
  'path' = '{{ archive_uri() }}',
  'format' = 'parquet'
);
