-- int_events_deduped: on-time enriched events with exact duplicates removed (first delivery wins).
-- Grain: one event (event_id). Input: int_deliveries_enriched.
-- Ordering by processing time keeps the output append-only, so windows can follow. The state
-- is bounded only by table.exec.state.ttl (flink.state_ttl); the STATE_TTL hint does not apply.
CREATE TEMPORARY VIEW int_events_deduped AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain, enrichment, kafka_offset, ts
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS delivery_rank
  FROM int_deliveries_enriched
)
WHERE delivery_rank = 1;
