-- ua_browser: browser family from the user agent ('Other' when unknown).
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION ua_browser AS 'udfs.flink.ua_browser' LANGUAGE PYTHON;
