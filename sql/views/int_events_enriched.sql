-- int_events_enriched: unique on-time events with device, country, campaign vertical, the
-- invalid-traffic reason (NULL = valid) and the billing idempotency key.
-- Grain: one event (event_id). Input: int_events_deduped; Python UDFs in sql/functions/.
-- billing_key = ad_id|user_id|event_type|bucket start ms, buckets per event type from the
-- environment (billing.bucket_seconds); adagg/contract.py computes the same key for producers.
CREATE TEMPORARY VIEW int_events_enriched AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros,
  COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
  referrer_domain,
{%- if python_udfs %}
  ua_device_type(user_agent) AS device_type,
  ua_os(user_agent) AS os,
  ua_browser(user_agent) AS browser,
  ip_country(ip) AS country,
  campaign_vertical(campaign_id) AS vertical,
  invalid_traffic_reason(user_agent, ip) AS invalid_reason,
{%- else %}
  -- Rendered without Python UDFs (benchmark baseline only): constant enrichment, nothing flagged.
  'other' AS device_type,
  'Other' AS os,
  'Other' AS browser,
  'ZZ' AS country,
  'unknown' AS vertical,
  CAST(NULL AS STRING) AS invalid_reason,
{%- endif %}
  CONCAT_WS('|', ad_id, user_id, event_type, CAST(event_time - MOD(event_time, CASE event_type
{%- for event_type, seconds in env.billing.bucket_seconds.items() %}
    WHEN '{{ event_type }}' THEN {{ seconds * 1000 }}
{%- endfor %}
  END) AS STRING)) AS billing_key,
  -- A fresh processing-time attribute for the billing dedup (the first one is consumed by
  -- the exact dedup, which must not pass it on to stay a deduplication).
  PROCTIME() AS proc_time,
  ts
FROM int_events_deduped;
