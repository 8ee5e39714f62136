-- int_events_enriched: unique on-time events with device, country, campaign vertical, the
-- invalid-traffic reason (NULL = valid) and the billing idempotency key.
-- Grain: one event (event_id). Input: int_events_deduped (its enrichment is enrich_event's result
-- split into an array, computed per delivery in int_deliveries_enriched and read here, after the
-- dedup).
-- billing_key = ad_id|user_id|event_type|bucket start ms with '\' and '|' in the ids escaped
-- (macros/keys.sql), buckets per event type from the environment (billing.bucket_seconds);
-- adagg/contract.py computes the same key for producers.
{% from "macros/modes.sql" import arrival_time, streaming_only with context -%}
{% from "macros/columns.sql" import enrichment_field -%}
{% from "macros/keys.sql" import billing_key with context -%}
CREATE TEMPORARY VIEW int_events_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
{%- call streaming_only() %}
  schema_version, ip, user_agent, placement_id, referrer_domain,
  {{ enrichment_field('enrichment', 'os') }} AS os,
  {{ enrichment_field('enrichment', 'browser') }} AS browser,
{%- endcall %}
  {{ enrichment_field('enrichment', 'device_type') }} AS device_type,
  {{ enrichment_field('enrichment', 'country') }} AS country,
  {{ enrichment_field('enrichment', 'vertical') }} AS vertical,
  {{ enrichment_field('enrichment', 'invalid_reason') }} AS invalid_reason,
  {{ billing_key('ad_id', 'user_id', 'event_type', 'event_time') }} AS billing_key,
  -- A fresh arrival-time attribute for the billing dedup (the first one is consumed by the
  -- exact dedup, which must not pass it on to stay a deduplication); macros/modes.sql.
  {{ arrival_time() }} AS proc_time,
  ts
FROM int_events_deduped;
