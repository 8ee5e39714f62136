{#- The job's enrichment without its Python UDF, for the UDF-overhead benchmark's baseline only
    (sql.render(..., python_udfs=False)): enrich_event's six values as plain SQL, packed and split
    as the UDF's result is, so the views after it read the same array.

    `lookup` is adagg.sql.enrichment_lookup(): the UDF's own values (computed by its Python code
    when the job is rendered) for every user agent, IP network and campaign the traffic generator
    draws from. On generated traffic the baseline therefore derives what the UDF does, invalid
    reasons included, and writes the same rows as the job (tests/unit/test_sql.py holds the
    lookup to the UDF). A network is matched by the LIKE prefix of its whole octets. Anything
    outside the catalog gets the UDF's values for a missing agent, IP and campaign and no invalid
    reason, where the UDF would parse the agent (and call a missing one a bot). -#}
{%- macro enrichment_without_udfs(lookup, ip, campaign_id, user_agent) -%}
{%- set fallback = lookup.fallback -%}
SPLIT(CONCAT_WS(CHR(31),
    -- device_type, os, browser
    CASE {{ user_agent }}
{%- for agent in lookup.agents %}
      WHEN {{ agent.user_agent | sql_string }}
        THEN CONCAT_WS(CHR(31), {{ agent.device_type | sql_string }}, {{ agent.os | sql_string }}, {{ agent.browser | sql_string }})
{%- endfor %}
      ELSE CONCAT_WS(CHR(31), {{ fallback.device_type | sql_string }}, {{ fallback.os | sql_string }}, {{ fallback.browser | sql_string }})
    END,
    -- country
    CASE
{%- for network in lookup.countries %}
      WHEN {{ ip }} LIKE {{ (network.prefix ~ '%') | sql_string }} THEN {{ network.country | sql_string }}
{%- endfor %}
      ELSE {{ fallback.country | sql_string }}
    END,
    -- vertical
    CASE
{%- for group in lookup.verticals %}
      WHEN {{ campaign_id }} IN (
{%- for ids in group.campaigns | batch(8) %}
        {{ ids | map('sql_string') | join(', ') }}{{ ',' if not loop.last else ')' }}
{%- endfor %}
        THEN {{ group.vertical | sql_string }}
{%- endfor %}
      ELSE {{ fallback.vertical | sql_string }}
    END,
    -- invalid_reason ('' = valid): a bot agent first, then a blocked network
    CASE
      WHEN {{ user_agent }} IN (
{%- for agent in lookup.agents | selectattr('bot') %}
        {{ agent.user_agent | sql_string }}{{ ',' if not loop.last else ')' }}
{%- endfor %}
        THEN {{ lookup.reasons.bot | sql_string }}
{%- if lookup.blocked %}
      WHEN {% for prefix in lookup.blocked %}{{ ip }} LIKE {{ (prefix ~ '%') | sql_string }}{{ ' OR ' if not loop.last }}{% endfor %}
        THEN {{ lookup.reasons.blocked | sql_string }}
{%- endif %}
      ELSE ''
    END), CHR(31))
{%- endmacro -%}
