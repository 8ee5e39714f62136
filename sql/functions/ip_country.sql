-- ip_country: ISO country code of an IPv4 address from the IP-range table ('ZZ' when unknown).
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION ip_country AS 'udfs.flink.ip_country' LANGUAGE PYTHON;
