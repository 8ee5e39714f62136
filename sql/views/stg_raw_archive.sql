-- stg_raw_archive: every raw delivery as the archive stores it: the contract's columns (the
-- schema version per row), where it sat in Kafka, and its UTC event date and hour partition.
-- Grain: one event delivery (duplicates and late events included). Input: src_ad_events_raw.
CREATE TEMPORARY VIEW stg_raw_archive AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain,
  kafka_partition,
  kafka_offset,
  DATE_FORMAT(ts, 'yyyy-MM-dd') AS dt,
  DATE_FORMAT(ts, 'HH') AS hr
FROM src_ad_events_raw
WHERE heartbeat IS NULL;
