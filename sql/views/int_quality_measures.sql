-- int_quality_measures: one row per on-time delivery, per unique event and per billable event,
-- each with a 1 in the column it counts, so that one SUM per window gives deliveries, unique
-- events, valid events and billable events side by side (the duplicate-rate SLO, docs/slo.md); a
-- delivery's row also has the time the collector accepted it (the final tier's freshness).
-- Grain: one delivery, event or billing key (a billable event is in three rows).
-- Inputs: int_deliveries_enriched, int_events_deduped, int_events_billable.
-- An event counts under the source of its first delivery, a billing key under that of its first
-- valid delivery: the same rows the dedups keep.
{% from "macros/columns.sql" import enrichment_field -%}
CREATE TEMPORARY VIEW int_quality_measures AS
SELECT
  source, ts, received_at_ms,
  CAST(1 AS BIGINT) AS deliveries,
  CAST(0 AS BIGINT) AS unique_events,
  CAST(0 AS BIGINT) AS valid_events,
  CAST(0 AS BIGINT) AS billable_events
FROM int_deliveries_enriched
UNION ALL
SELECT
  source, ts, CAST(NULL AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(1 AS BIGINT),
  CAST(IF({{ enrichment_field('enrichment', 'invalid_reason') }} IS NULL, 1, 0) AS BIGINT),
  CAST(0 AS BIGINT)
FROM int_events_deduped
UNION ALL
SELECT
  source, ts, CAST(NULL AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(0 AS BIGINT),
  CAST(1 AS BIGINT)
FROM int_events_billable;
