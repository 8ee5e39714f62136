-- mart_top_ads_minute: the top 100 ads by billable clicks in each minute, overall (country_scope 'ALL')
-- and per country (country_scope = country code); ties are broken by ad_id so ranks are deterministic.
-- Grain: (window_start_ms, country_scope, ad_rank). Input: int_ad_scope_minute (window Top-N).
{% from "macros/columns.sql" import epoch_ms, lineage with context %}
CREATE TEMPORARY VIEW mart_top_ads_minute AS
SELECT
  {{ epoch_ms('window_start') }} AS window_start_ms,
  {{ epoch_ms('window_end') }} AS window_end_ms,
  country_scope,
  ad_rank,
  ad_id,
  billable_clicks,
  clicks,
  impressions,
{{ lineage('final') }}
FROM (
  SELECT *,
    ROW_NUMBER() OVER (
      PARTITION BY window_start, window_end, country_scope
      ORDER BY billable_clicks DESC, ad_id ASC
    ) AS ad_rank
  FROM int_ad_scope_minute
)
WHERE ad_rank <= 100;
