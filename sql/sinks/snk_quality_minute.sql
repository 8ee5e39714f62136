-- snk_quality_minute: topic `<outputs.prefix>quality-minute`.
-- Grain: (window_start_ms, source), the record key. Input: mart_quality_minute.
-- Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
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
) {{ exactly_once_sink(output_topic('quality-minute'), ['window_start_ms', 'source'], 'quality-minute') }};
