-- int_events_enriched: unique on-time events with device, country, campaign vertical, the
-- invalid-traffic reason (NULL = valid) and the billing idempotency key.
-- Grain: one event (event_id). Input: int_events_deduped; Python UDF enrich_event (sql/functions/).
-- billing_key = ad_id|user_id|event_type|bucket start ms, buckets per event type from the
-- environment (billing.bucket_seconds); adagg/contract.py computes the same key for producers.
{% from "macros/modes.sql" import arrival_time with context -%}
CREATE TEMPORARY VIEW int_events_enriched AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros,
  COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
  referrer_domain,
  enriched.e.device_type AS device_type,
  enriched.e.os AS os,
  enriched.e.browser AS browser,
  enriched.e.country AS country,
  enriched.e.vertical AS vertical,
  enriched.e.invalid_reason AS invalid_reason,
  CONCAT_WS('|', ad_id, user_id, event_type, CAST(event_time - MOD(event_time, CASE event_type
{%- for event_type, seconds in env.billing.bucket_seconds.items() %}
    WHEN '{{ event_type }}' THEN {{ seconds * 1000 }}
{%- endfor %}
  END) AS STRING)) AS billing_key,
  -- A fresh arrival-time attribute for the billing dedup (the first one is consumed by the
  -- exact dedup, which must not pass it on to stay a deduplication); macros/modes.sql.
  {{ arrival_time() }} AS proc_time,
  ts
FROM (
  SELECT *,
{%- if python_udfs %}
    enrich_event(user_agent, ip, campaign_id) AS e
{%- else %}
    -- Rendered without Python UDFs (benchmark baseline only): constant enrichment, nothing flagged.
    CAST(ROW('other', 'Other', 'Other', 'ZZ', 'unknown', CAST(NULL AS STRING))
      AS ROW<device_type STRING, os STRING, browser STRING, country STRING, vertical STRING, invalid_reason STRING>) AS e
{%- endif %}
  FROM int_events_deduped
) AS enriched;
