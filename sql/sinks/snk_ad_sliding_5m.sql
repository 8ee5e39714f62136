-- snk_ad_sliding_5m: topic `<outputs.prefix>ad-sliding-5m`, read by the Pinot table ad_sliding_5m.
-- Grain: (window_start_ms, ad_id), the record key. Input: mart_ad_sliding_5m. Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
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
) {{ exactly_once_sink(output_topic('ad-sliding-5m'), ['window_start_ms', 'ad_id'], 'ad-sliding-5m') }};
