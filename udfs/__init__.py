"""Python UDFs for enrichment: plain logic (one module per concern) plus thin PyFlink wrappers.

Pure modules, importable and testable without a JVM or PyFlink:
    user_agent       device_type / os / browser / is_bot from a User-Agent (ua-parser + bot list)
    geo              IPv4 -> ISO country from a range table (bisect)
    geoip_import     MaxMind GeoLite2-Country CSV -> our range table
    dimensions       campaign_id -> vertical from the campaign dimension table
    invalid_traffic  'bot_user_agent' | 'blocked_ip' | None

udfs.flink wraps them as PyFlink scalar functions for `CREATE FUNCTION ... LANGUAGE PYTHON`.
See docs/enrichment.md.
"""
