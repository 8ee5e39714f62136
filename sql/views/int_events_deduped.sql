-- int_events_deduped: on-time enriched events with exact duplicates removed (first delivery wins).
-- Grain: one event (event_id). Input: int_deliveries_enriched.
-- Ordering by processing time keeps the output append-only, so windows can follow. The state
-- is bounded only by table.exec.state.ttl (flink.state_ttl); the STATE_TTL hint does not apply.
{% from "macros/modes.sql" import streaming_only with context -%}
CREATE TEMPORARY VIEW int_events_deduped AS
SELECT
  event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id, publisher_id,
  cost_micros, conversion_value_micros, kafka_offset, ts, billing_key,
{%- call streaming_only() %}
  schema_version, ip, user_agent, placement_id, referrer_domain, source, received_at_ms,
{%- endcall %}
  enrichment
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS delivery_rank
  FROM int_deliveries_enriched
)
WHERE delivery_rank = 1;
