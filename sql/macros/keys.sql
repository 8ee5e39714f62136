{#- Composite keys built in SQL, written once. adagg/contract.py builds the same strings in Python
    (key_part, billing_key_of), byte for byte: the collector keys the raw topic with them, and the
    oracle bills by them. -#}

{#- One id inside a '|'-joined key: every '\' doubled, then every '|' preceded by a '\'. Each '|'
    left unescaped is a separator, so two different id tuples never share a key, whatever the ids
    hold (a plain join gave ('a|b', 'c') and ('a', 'b|c') one key). Ordinary ids are unchanged.
    Flink SQL literals know no backslash escapes: '\' is one backslash. -#}
{%- macro key_part(column) -%}
REPLACE(REPLACE({{ column }}, '\', '\\'), '|', '\|')
{%- endmacro -%}

{#- The billing idempotency key: ad_id|user_id|event_type|bucket start ms, the ids escaped by
    key_part, buckets per event type from the environment (billing.bucket_seconds). The contract
    limits event_type to three words, and the bucket is digits: neither needs escaping. -#}
{%- macro billing_key(ad_id, user_id, event_type, event_time) -%}
CONCAT_WS('|',
    {{ key_part(ad_id) }},
    {{ key_part(user_id) }},
    {{ event_type }},
    CAST({{ event_time }} - MOD({{ event_time }}, CASE {{ event_type }}
{%- for type, seconds in env.billing.bucket_seconds.items() %}
      WHEN '{{ type }}' THEN {{ seconds * 1000 }}
{%- endfor %}
    END) AS STRING))
{%- endmacro -%}
