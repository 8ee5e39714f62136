-- campaign_vertical: the campaign's vertical from the campaign dimension table ('unknown' when absent).
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION campaign_vertical AS 'udfs.flink.campaign_vertical' LANGUAGE PYTHON;
