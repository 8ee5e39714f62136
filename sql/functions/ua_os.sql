-- ua_os: operating system family from the user agent ('Other' when unknown).
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION ua_os AS 'udfs.flink.ua_os' LANGUAGE PYTHON;
