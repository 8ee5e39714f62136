-- snk_events_enriched: topic `topics.enriched`, read for drill-down and audits.
-- Grain: one unique on-time event, keyed by event_id. Input: mart_events_enriched. Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
CREATE TABLE snk_events_enriched (
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
  device_type STRING,
  os STRING,
  browser STRING,
  country STRING,
  vertical STRING,
  invalid_reason STRING,
  billing_key STRING
) {{ exactly_once_sink(env.topics.enriched, ['event_id'], 'events-enriched') }};
