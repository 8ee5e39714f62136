-- int_events_billable: the events advertisers pay for: valid traffic, first arrival per
-- billing key (a user's repeats on an ad within one bucket bill once).
-- Grain: one billing key. Input: int_deliveries_enriched: deliveries, not unique events.
-- Why deliveries: the first valid delivery of a key is the first delivery of the key's first valid
-- event, so the result is the one over unique events. But a key's deliveries reach this dedup in
-- the order of their Kafka partition (the raw topic is keyed by billing key: one key, one
-- partition, one channel), while unique events come out of the exact dedup, which is keyed by
-- event_id: at parallelism > 1 two events of one key pass different subtasks, and which one bills
-- would depend on which arrived first.
{% from "macros/columns.sql" import enrichment_field -%}
{% from "macros/modes.sql" import streaming_only with context -%}
CREATE TEMPORARY VIEW int_events_billable AS
SELECT *
FROM (
  -- The event and the columns int_event_measures reads, no more: the batch planner does not prune
  -- columns below a ROW_NUMBER, so every column listed here is sorted (a backfill sorts a day).
  SELECT
    event_id, ad_id, campaign_id, advertiser_id,
    {{ enrichment_field('enrichment', 'vertical') }} AS vertical,
    {{ enrichment_field('enrichment', 'country') }} AS country,
    {{ enrichment_field('enrichment', 'device_type') }} AS device_type,
    publisher_id, event_type, event_time, ts, cost_micros,
    COALESCE(conversion_value_micros, CAST(0 AS BIGINT)) AS conversion_value_micros,
    billing_key,
{%- call streaming_only() %}
    source,
{%- endcall %}
    ROW_NUMBER() OVER (PARTITION BY billing_key ORDER BY proc_time ASC) AS billing_rank
  FROM int_deliveries_enriched
  WHERE {{ enrichment_field('enrichment', 'invalid_reason') }} IS NULL
)
WHERE billing_rank = 1;
