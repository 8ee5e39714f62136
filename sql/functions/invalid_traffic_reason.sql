-- invalid_traffic_reason: 'bot_user_agent', 'blocked_ip' or NULL for valid traffic.
-- Python UDF (udfs/flink.py, logic in udfs/); see docs/enrichment.md.
CREATE TEMPORARY SYSTEM FUNCTION invalid_traffic_reason AS 'udfs.flink.invalid_traffic_reason' LANGUAGE PYTHON;
