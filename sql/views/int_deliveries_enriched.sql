-- int_deliveries_enriched: on-time deliveries with their enrichment: device_type, os, browser,
-- country, vertical and invalid_reason from the Python UDF enrich_event (sql/functions/), packed
-- in one STRING and split here into an ARRAY<STRING> that int_events_enriched reads after the
-- dedup. Reading the fields here would not do: the planner copies the call into each of the six
-- expressions that read it. The split is one expression, so the call stays one.
-- Grain: one event delivery (duplicates still present). Input: stg_events_on_time.
-- Enriching before the exact dedup gives every later view one shared UDF call: in batch mode the
-- planner would otherwise call the UDF once for the raw and once for the billable branch of
-- int_event_measures. A duplicate delivery costs one extra call (enrich_event is deterministic).
{% from "macros/columns.sql" import enrichment_input -%}
{% from "macros/modes.sql" import streaming_only with context -%}
CREATE TEMPORARY VIEW int_deliveries_enriched AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, conversion_value_micros, kafka_offset, proc_time, ts,
{%- call streaming_only() %}
  schema_version, ip, user_agent, placement_id, referrer_domain,
{%- endcall %}
{%- if python_udfs %}
  SPLIT(enrich_event({{ enrichment_input('ip', 'campaign_id', 'user_agent') }}), CHR(31)) AS enrichment
{%- else %}
  -- Rendered without Python UDFs (benchmark baseline only): constant enrichment, nothing flagged.
  SPLIT(CONCAT_WS(CHR(31), 'other', 'Other', 'Other', 'ZZ', 'unknown', ''), CHR(31)) AS enrichment
{%- endif %}
FROM stg_events_on_time;
