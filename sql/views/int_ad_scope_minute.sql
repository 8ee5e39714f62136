-- int_ad_scope_minute: per-ad click totals per minute, over all countries (country_scope 'ALL') and
-- per country (country_scope = country code): the input of the Top-N ranking.
-- Grain: (minute, country_scope, ad_id). Input: int_ad_minute.
CREATE TEMPORARY VIEW int_ad_scope_minute AS
SELECT
  window_start,
  window_end,
  COALESCE(country, 'ALL') AS country_scope,
  ad_id,
  SUM(billable_clicks) AS billable_clicks,
  SUM(clicks) AS clicks,
  SUM(impressions) AS impressions
FROM TABLE(
  TUMBLE(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE)
)
GROUP BY window_start, window_end, GROUPING SETS ((ad_id), (ad_id, country));
