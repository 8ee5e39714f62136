-- int_deliveries_enriched: on-time deliveries with their billing idempotency key and their
-- enrichment: device_type, os, browser, country, vertical and invalid_reason from the Python UDF
-- enrich_event (sql/functions/), packed in one STRING and split here into an ARRAY<STRING> that
-- the dedups' views read. Reading the fields here would not do: the planner copies the call into
-- each of the six expressions that read it. The split is one expression, so the call stays one.
-- Grain: one event delivery (duplicates still present). Input: stg_events_on_time.
-- Both dedups read this view: the exact one (int_events_deduped) and the billing one
-- (int_events_billable), so the UDF runs once per delivery for both (enrich_event is
-- deterministic; a duplicate delivery costs one extra call).
-- billing_key = ad_id|user_id|event_type|bucket start ms with '\' and '|' in the ids escaped
-- (macros/keys.sql), buckets per event type from the environment (billing.bucket_seconds);
-- adagg/contract.py computes the same key, which the raw topic is keyed by.
{% from "macros/columns.sql" import enrichment_input -%}
{% from "macros/enrichment.sql" import enrichment_without_udfs -%}
{% from "macros/modes.sql" import streaming_only with context -%}
{% from "macros/keys.sql" import billing_key with context -%}
CREATE TEMPORARY VIEW int_deliveries_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, conversion_value_micros, kafka_offset, proc_time, ts,
  {{ billing_key('ad_id', 'user_id', 'event_type', 'event_time') }} AS billing_key,
{%- call streaming_only() %}
  schema_version, ip, user_agent, placement_id, referrer_domain, source, received_at_ms,
{%- endcall %}
{%- if python_udfs %}
  SPLIT(enrich_event({{ enrichment_input('ip', 'campaign_id', 'user_agent') }}), CHR(31)) AS enrichment
{%- else %}
  -- Rendered without Python UDFs (the UDF-overhead benchmark's baseline only): enrich_event's
  -- values for the generated traffic's agents, networks and campaigns, looked up in plain SQL.
  {{ enrichment_without_udfs(enrichment_lookup, 'ip', 'campaign_id', 'user_agent') }} AS enrichment
{%- endif %}
FROM stg_events_on_time;
