-- mart_quality_minute: the data-quality SLO table: per event-time minute and source (API key), the
-- on-time deliveries, the unique events among them and the exact duplicates (deliveries - unique),
-- the valid events, the billable events and the billing repeats (valid - billable: a valid event
-- whose billing key an earlier one took). Late deliveries are not here (they arrive after their
-- window closed): they are rows of the late topic, with their source (docs/slo.md).
-- Grain: (window_start_ms, source). Input: int_quality_measures.
{% from "macros/columns.sql" import epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_quality_minute AS
SELECT
  {{ epoch_ms('window_start') }} AS window_start_ms,
  {{ epoch_ms('window_end') }} AS window_end_ms,
  source,
  SUM(deliveries) AS deliveries,
  SUM(unique_events) AS unique_events,
  SUM(deliveries) - SUM(unique_events) AS duplicate_deliveries,
  SUM(valid_events) AS valid_events,
  SUM(billable_events) AS billable_events,
  SUM(valid_events) - SUM(billable_events) AS billing_repeats,
  -- The newest collector acceptance among the window's deliveries: written when the window
  -- closes, like every final row, so now minus it is the final tier's freshness (docs/slo.md).
  MAX(received_at_ms) AS max_received_at_ms,
{{ lineage('final') }}
FROM TABLE(
  TUMBLE(TABLE int_quality_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, source;
