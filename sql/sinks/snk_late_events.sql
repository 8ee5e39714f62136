-- snk_late_events: Kafka topic holding every late event delivery with the reason and the
-- watermark it was late against. Grain: one event delivery. Input: stg_events_late.
{% from "macros/kafka.sql" import kafka_with with context %}
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
) {{ kafka_with(env.topics.late, {
  'key.format': 'raw',
  'key.fields': 'event_id',
  'value.format': 'json',
  'value.fields-include': 'ALL',
  'sink.delivery-guarantee': 'exactly-once',
  'sink.transactional-id-prefix': env.flink.transactional_id_prefix ~ '-late',
  'properties.transaction.timeout.ms': env.flink.transaction_timeout_ms,
}) }};
