-- mart_ad_hour: final-tier hourly roll-up of mart_ad_minute's measures (UTC hours).
-- Grain: (window_start_ms, ad_id, country, device_type, campaign_id, advertiser_id, vertical),
-- the sink's record key and Pinot's primary key. Input: int_ad_hour.
{% from "macros/columns.sql" import measures, epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_ad_hour AS
SELECT
  {{ epoch_ms('hour_start') }} AS window_start_ms,
  {{ epoch_ms('hour_end') }} AS window_end_ms,
  ad_id, campaign_id, advertiser_id, vertical, country, device_type,
{{ measures() }},
{{ lineage('final') }}
FROM int_ad_hour;
