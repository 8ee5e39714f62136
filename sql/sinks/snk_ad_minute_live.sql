-- snk_ad_minute_live: topic `<outputs.prefix>ad-minute-live`, read by the Pinot table ad_minute_live.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the GROUP BY of its view: the Pinot primary key, which is also the record key (an ad seen with
-- two campaigns in one window has two rows, and a shorter key would keep only one).
-- Input: mart_ad_minute_live.
-- Upsert changelog, at least once: a key's last record is its current value.
{% from "macros/kafka.sql" import upsert_sink with context %}
CREATE TABLE snk_ad_minute_live (
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
  max_received_at_ms BIGINT,
  tier STRING,
  version BIGINT,
  pipeline_version STRING,
  computed_at_ms BIGINT,
  PRIMARY KEY (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical) NOT ENFORCED
) {{ upsert_sink(output_topic('ad-minute-live')) }};
