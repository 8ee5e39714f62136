-- int_deliveries_enriched: on-time deliveries with their enrichment: device_type, os, browser,
-- country, vertical and invalid_reason from the Python UDF enrich_event (sql/functions/), packed
-- in one STRING that int_events_enriched unpacks after the dedup. Unpacking here would not do: the
-- planner copies the call into each of the six expressions that read it.
-- Grain: one event delivery (duplicates still present). Input: stg_events_on_time.
-- Enriching before the exact dedup gives every later view one shared UDF call: in batch mode the
-- planner would otherwise call the UDF once for the raw and once for the billable branch of
-- int_event_measures. A duplicate delivery costs one extra call (enrich_event is deterministic).
{% from "macros/columns.sql" import enrichment_input -%}
CREATE TEMPORARY VIEW int_deliveries_enriched AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain, kafka_offset, proc_time, ts,
{%- if python_udfs %}
  enrich_event({{ enrichment_input('ip', 'campaign_id', 'user_agent') }}) AS enrichment
{%- else %}
  -- Rendered without Python UDFs (benchmark baseline only): constant enrichment, nothing flagged.
  CONCAT_WS(CHR(31), 'other', 'Other', 'Other', 'ZZ', 'unknown', '') AS enrichment
{%- endif %}
FROM stg_events_on_time;
