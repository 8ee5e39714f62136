-- enrich_event: device_type, os, browser, country, vertical and invalid_reason of one event from
-- its user agent, IP and campaign: device/OS/browser class, ISO country from the IP-range table
-- ('ZZ' unknown), the campaign's vertical from the dimension table, and the invalid-traffic reason
-- ('bot_user_agent', 'blocked_ip', '' = valid). One Python call per event, one STRING each way
-- (a STRING crosses cheaper than three arguments in, or a ROW out):
-- - argument: macros/columns.sql enrichment_input(ip, campaign_id, user_agent), the three joined;
-- - result: the six values with CHR(31) between, which int_deliveries_enriched splits into an
--   array; macros/columns.sql enrichment_field() reads one by name.
-- Python UDF (udfs/flink.py, logic in udfs/enrichment.py); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION enrich_event AS 'udfs.flink.enrich_event' LANGUAGE PYTHON;
