-- mart_ad_minute: final-tier minute aggregates per ad, country and device: impressions, clicks,
-- conversions, invalid traffic, billable counts, spend and conversion value (CTR = clicks /
-- impressions, billable or raw). Emitted once per window after the watermark; exactly-once.
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_minute.
{% from "macros/columns.sql" import measures, epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_ad_minute AS
SELECT
  {{ epoch_ms('minute_start') }} AS window_start_ms,
  {{ epoch_ms('minute_end') }} AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ measures() }},
{{ lineage('final') }}
FROM int_ad_minute;
