-- snk_clicks_minute: Kafka topic read by the Pinot table ad_clicks_minute.
-- Grain: (ad_id, window_start_ms), the Pinot primary key, which is also the record key.
-- Input: mart_clicks_minute. Exactly-once: visible to read_committed consumers at checkpoint.
{% from "macros/kafka.sql" import kafka_with with context %}
CREATE TABLE snk_clicks_minute (
  ad_id STRING,
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  clicks BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) {{ kafka_with(env.topics.clicks_minute, {
  'key.format': 'json',
  'key.fields': 'ad_id;window_start_ms',
  'value.format': 'json',
  'value.fields-include': 'ALL',
  'sink.delivery-guarantee': 'exactly-once',
  'sink.transactional-id-prefix': env.flink.transactional_id_prefix ~ '-clicks-minute',
  'properties.transaction.timeout.ms': env.flink.transaction_timeout_ms,
}) }};
