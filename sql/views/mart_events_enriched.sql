-- mart_events_enriched: every unique on-time event with its enrichment and billing key, for
-- drill-down and audits (not an aggregate: no lineage columns).
-- Grain: one event (event_id). Input: int_events_enriched.
CREATE TEMPORARY VIEW mart_events_enriched AS
SELECT
  schema_version, event_id, event_type, event_time, ad_id, campaign_id, advertiser_id, user_id,
  ip, user_agent, placement_id, publisher_id, cost_micros, conversion_value_micros,
  referrer_domain, device_type, os, browser, country, vertical, invalid_reason, billing_key
FROM int_events_enriched;
