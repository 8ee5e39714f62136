-- src_ad_events_raw: raw ad events as written to the raw topic, one row per Kafka record
-- (duplicates included), and the collector's heartbeats. Grain: one event delivery or heartbeat.
-- Input: topic `topics.raw`, keyed by billing key. Columns are the union of every contract version
-- (contracts/ad_event/): fields a producer's version lacks read as NULL, unknown fields are ignored.
-- Event time `ts` trails by the watermark bound plus the allowed lateness (see infra/env). There is
-- no idle timeout: the collector's heartbeats keep every partition's watermark moving instead
-- (collector/heartbeat.py says why).
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
  WATERMARK FOR ts AS ts - INTERVAL '{{ env.flink.watermark_bound_seconds }}' SECOND - INTERVAL '{{ env.flink.allowed_lateness_seconds }}' SECOND
) {{ kafka_with(env.topics.raw, dict({
  'properties.group.id': env.flink.consumer_group,
  'properties.isolation.level': 'read_committed',
  'scan.startup.mode': env.flink.raw_startup_mode,
  'properties.auto.offset.reset': 'earliest',
  'scan.watermark.emit.strategy': env.flink.watermark_emit,
  'format': 'json',
  'json.fail-on-missing-field': 'false',
  'json.ignore-parse-errors': 'false',
}, **env.flink.get('raw_source_options', {}))) }};
