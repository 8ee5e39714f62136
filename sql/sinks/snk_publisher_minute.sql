-- snk_publisher_minute: topic `<outputs.prefix>publisher-minute`.
-- Grain: (window_start_ms, publisher_id), the record key. Input: mart_publisher_minute.
-- Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
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
) {{ exactly_once_sink(output_topic('publisher-minute'), ['window_start_ms', 'publisher_id'], 'publisher-minute') }};
