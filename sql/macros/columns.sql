{#- Column lists repeated by the aggregate views, written once. -#}

{#- The additive measures of int_event_measures, summed. -#}
{%- macro sum_measures() -%}
  SUM(impressions) AS impressions,
  SUM(clicks) AS clicks,
  SUM(conversions) AS conversions,
  SUM(invalid_events) AS invalid_events,
  SUM(billable_impressions) AS billable_impressions,
  SUM(billable_clicks) AS billable_clicks,
  SUM(billable_conversions) AS billable_conversions,
  SUM(spend_micros) AS spend_micros,
  SUM(conversion_value_micros) AS conversion_value_micros
{%- endmacro -%}

{%- macro measures() -%}
  impressions, clicks, conversions, invalid_events,
  billable_impressions, billable_clicks, billable_conversions, spend_micros, conversion_value_micros
{%- endmacro -%}

{#- enrich_event's one argument: ip, campaign_id and user_agent, CHR(31) between, NULL as ''
    (udfs.enrichment.pack_input does the same in Python; unpack_input reads it). One STRING
    crosses into Python about 1.3 µs per row cheaper than three (docs/enrichment.md). An ip or
    campaign_id holding CHR(31) goes as '', which means the same to the UDF: no IP holds it and no
    campaign table id may; the agent goes last, so it may hold anything. -#}
{%- macro enrichment_input(ip, campaign_id, user_agent) -%}
CONCAT_WS(CHR(31),
    IF(POSITION(CHR(31) IN {{ ip }}) > 0, '', COALESCE({{ ip }}, '')),
    IF(POSITION(CHR(31) IN {{ campaign_id }}) > 0, '', COALESCE({{ campaign_id }}, '')),
    COALESCE({{ user_agent }}, ''))
{%- endmacro -%}

{#- One value of enrich_event's result, by name, from the column int_deliveries_enriched keeps
    it in: SPLIT(result, CHR(31)), the six values in the order of udfs/enrichment.py FIELDS
    (udfs.enrichment.pack). SQL arrays count from 1. A valid event's reason is '' there and NULL
    here. tests/unit/test_sql.py holds the two orders equal. -#}
{%- macro enrichment_field(column, name) -%}
{%- set index = ['device_type', 'os', 'browser', 'country', 'vertical', 'invalid_reason'].index(name) + 1 -%}
{%- if name == 'invalid_reason' -%}
NULLIF({{ column }}[{{ index }}], '')
{%- else -%}
{{ column }}[{{ index }}]
{%- endif -%}
{%- endmacro -%}

{#- Epoch milliseconds of a window bound (the job runs in UTC: table.local-time-zone). Every
    window is sized and slid in whole minutes, so minutes since the epoch times 60,000 is exact.
    It is arithmetic: UNIX_TIMESTAMP(CAST(bound AS STRING)) formatted and parsed a string per row,
    about 2 s of a 25 s backfill of a day (docs/benchmarks.md). -#}
{%- macro epoch_ms(column) -%}
CAST(TIMESTAMPDIFF(MINUTE, TIMESTAMP '1970-01-01 00:00:00', {{ column }}) AS BIGINT) * 60000
{%- endmacro -%}

{#- Lineage carried by every aggregate row: consistency tier, row version (live 0, final 1,
    reconciled corrections above), the pipeline/SQL version and when the row was computed. -#}
{%- macro lineage(tier) -%}
  '{{ tier }}' AS tier,
  CAST({{ {'live': 0, 'final': 1}[tier] }} AS BIGINT) AS version,
  '{{ pipeline_version }}' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
{%- endmacro -%}
