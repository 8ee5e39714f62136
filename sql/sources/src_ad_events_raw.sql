-- src_ad_events_raw: raw ad events as written to the raw topic, one row per Kafka record
-- (duplicates included). Grain: one event delivery. Input: topic `topics.raw`.
-- Event time `ts` carries a bounded-out-of-orderness watermark (flink.watermark_bound_seconds,
-- 1 to 99: a SECOND interval literal holds two digits).
{% from "macros/kafka.sql" import kafka_with with context %}
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
  WATERMARK FOR ts AS ts - INTERVAL '{{ env.flink.watermark_bound_seconds }}' SECOND
) {{ kafka_with(env.topics.raw, {
  'properties.group.id': env.flink.consumer_group,
  'properties.isolation.level': 'read_committed',
  'scan.startup.mode': 'group-offsets',
  'properties.auto.offset.reset': 'earliest',
  'format': 'json',
  'json.fail-on-missing-field': 'false',
  'json.ignore-parse-errors': 'false',
}) }};
