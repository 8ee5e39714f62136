-- snk_ad_hour: topic `<outputs.prefix>ad-hour`, read by the Pinot table ad_hour.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_hour.
-- Exactly-once: visible to read_committed consumers at checkpoint.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
CREATE TABLE snk_ad_hour (
  window_start_ms BIGINT,
  window_end_ms BIGINT,
  ad_id STRING,
  campaign_id STRING,
  advertiser_id STRING,
  vertical STRING,
  country STRING,
  device_type STRING,
  impressions BIGINT,
  clicks BIGINT,
  conversions BIGINT,
  invalid_events BIGINT,
  billable_impressions BIGINT,
  billable_clicks BIGINT,
  billable_conversions BIGINT,
  spend_micros BIGINT,
  conversion_value_micros BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT
) {{ exactly_once_sink(output_topic('ad-hour'), ['window_start_ms', 'ad_id', 'country', 'device_type', 'campaign_id', 'advertiser_id', 'vertical'], 'ad-hour') }};
