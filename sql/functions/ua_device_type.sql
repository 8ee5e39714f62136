-- ua_device_type: device class from the user agent: desktop, mobile, tablet, bot or other.
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION ua_device_type AS 'udfs.flink.ua_device_type' LANGUAGE PYTHON;
