-- snk_late_events: topic `topics.late`: every late event delivery with the reason, the
-- watermark it was late against, when it was seen and who sent it. Grain: one event delivery, keyed by
-- event_id. Input: stg_events_late. Exactly-once.
{% from "macros/kafka.sql" import exactly_once_sink with context %}
CREATE TABLE snk_late_events (
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
  source STRING,
  reason STRING,
  watermark_at STRING,
  detected_at STRING
) {{ exactly_once_sink(env.topics.late, ['event_id'], 'late') }};
