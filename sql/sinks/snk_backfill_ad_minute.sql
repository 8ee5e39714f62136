-- snk_backfill_ad_minute: the batch recomputation of mart_ad_minute, as Parquet files in the
-- backfill's output folder, read by `adagg reconcile`. Grain: (window_start_ms, ad_id, country,
-- device_type, campaign_id, advertiser_id, vertical), the same columns as snk_ad_minute.
-- Input: mart_ad_minute (the shared SQL).
CREATE TABLE snk_backfill_ad_minute (
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
) WITH (
  'connector' = 'filesystem',
  'path' = '{{ output_uri }}',
  'format' = 'parquet'
);
