-- int_events_billable: the events advertisers pay for: valid traffic, first arrival per
-- billing key (a user's repeats on an ad within one bucket bill once).
-- Grain: one billing key. Input: int_events_enriched.
-- The raw topic is keyed by billing key, so a key's events arrive in order from one partition.
CREATE TEMPORARY VIEW int_events_billable AS
SELECT *
FROM (
  -- The event and the columns int_event_measures reads, no more: the batch planner does not prune
  -- columns below a ROW_NUMBER, so every column listed here is sorted (a backfill sorts a day).
  SELECT
    event_id, ad_id, campaign_id, advertiser_id, vertical, country, device_type, publisher_id, event_type,
    event_time, ts, cost_micros, conversion_value_micros, billing_key,
    ROW_NUMBER() OVER (PARTITION BY billing_key ORDER BY proc_time ASC) AS billing_rank
  FROM int_events_enriched
  WHERE invalid_reason IS NULL
)
WHERE billing_rank = 1;
