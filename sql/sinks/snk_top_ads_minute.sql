-- snk_top_ads_minute: topic `<outputs.prefix>top-ads-minute`, read by the Pinot table
-- top_ads_minute. Grain: (window_start_ms, country_scope, ad_rank), the record key.
-- Input: mart_top_ads_minute. Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
CREATE TABLE snk_top_ads_minute (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  country_scope STRING,
  ad_rank BIGINT,
  ad_id STRING,
  billable_clicks BIGINT,
  clicks BIGINT,
  impressions BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) {{ exactly_once_sink(output_topic('top-ads-minute'), ['window_start_ms', 'country_scope', 'ad_rank'], 'top-ads-minute') }};
