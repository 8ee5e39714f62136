{#- Connector options shared by every Kafka table; per-table options are passed in and merged
    after these, so a table can override an environment-wide default. -#}
{%- macro kafka_with(topic, extra={}) -%}
{%- set opts = {
      'connector': 'kafka',
      'topic': topic.name,
      'properties.bootstrap.servers': env.kafka.bootstrap_servers,
      'properties.security.protocol': env.kafka.security_protocol,
    } -%}
{%- set _ = opts.update(extra) -%}
WITH (
{%- for k, v in opts.items() %}
  '{{ k }}' = '{{ v }}'{{ "," if not loop.last }}
{%- endfor %}
)
{%- endmacro -%}
