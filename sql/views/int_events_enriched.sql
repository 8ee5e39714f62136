-- int_events_enriched: unique on-time events with device, country, campaign vertical, the
-- invalid-traffic reason (NULL = valid) and the billing idempotency key.
-- Grain: one event (event_id). Input: int_events_deduped (its enrichment is enrich_event's result
-- split into an array, and its billing key, both computed per delivery in int_deliveries_enriched
-- and read here, after the dedup).
{% from "macros/modes.sql" import streaming_only with context -%}
{% from "macros/columns.sql" import enrichment_field -%}
CREATE TEMPORARY VIEW int_events_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
{%- call streaming_only() %}
  schema_version, ip, user_agent, placement_id, referrer_domain, received_at_ms,
  {{ enrichment_field('enrichment', 'os') }} AS os,
  {{ enrichment_field('enrichment', 'browser') }} AS browser,
{%- endcall %}
  {{ enrichment_field('enrichment', 'device_type') }} AS device_type,
  {{ enrichment_field('enrichment', 'country') }} AS country,
  {{ enrichment_field('enrichment', 'vertical') }} AS vertical,
  {{ enrichment_field('enrichment', 'invalid_reason') }} AS invalid_reason,
  billing_key,
  ts
FROM int_events_deduped;
