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

{#- Epoch milliseconds of a window bound (the job runs in UTC: table.local-time-zone). -#}
{%- macro epoch_ms(column) -%}
UNIX_TIMESTAMP(CAST({{ column }} AS STRING)) * 1000
{%- endmacro -%}

{#- Lineage carried by every aggregate row: consistency tier, row version (live 0, final 1,
    reconciled corrections above), the pipeline/SQL version and when the row was computed. -#}
{%- macro lineage(tier) -%}
  '{{ tier }}' AS tier,
  CAST({{ {'live': 0, 'final': 1}[tier] }} AS BIGINT) AS version,
  '{{ pipeline_version }}' AS pipeline_version,
  UNIX_TIMESTAMP() * 1000 AS computed_at_ms
{%- endmacro -%}
