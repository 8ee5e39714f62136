{#- Connector options shared by every Kafka table. Per-table options are passed in and merged
    after these, so a table can override an environment-wide default. kafka_security() (in
    adagg/sql.py) gives the security options: with SASL the credentials are `${env:NAME}`
    references that the Kafka client resolves on the TaskManager, so no secret is rendered. -#}
{%- macro with_options(opts) -%}
WITH (
{%- for k, v in opts.items() %}
  '{{ k }}' = '{{ v }}'{{ "," if not loop.last }}
{%- endfor %}
)
{%- endmacro -%}

{#- A Kafka table (source or append sink) on `topic` (an env topic: name + partitions). -#}
{%- macro kafka_with(topic, extra={}) -%}
{%- set opts = {
      'connector': 'kafka',
      'topic': topic.name,
      'properties.bootstrap.servers': env.kafka.bootstrap_servers,
    } -%}
{%- set _ = opts.update(kafka_security()) -%}
{%- set _ = opts.update(extra) -%}
{{ with_options(opts) }}
{%- endmacro -%}

{#- An exactly-once append sink: JSON records keyed by `key_fields` (the Pinot primary key),
    visible to read_committed consumers when a checkpoint commits. An aggregate output (a topic
    under outputs.prefix) runs with outputs.sink_parallelism writers when the environment sets it:
    aggregates are few rows, and every writer is a transactional producer that a restart must set up
    again (docs/stack.md#recovery). -#}
{%- macro exactly_once_sink(topic, key_fields, name) -%}
{%- set parallelism = env.outputs.get('sink_parallelism') if topic.name.startswith(env.outputs.prefix) else none -%}
{{ kafka_with(topic, dict({
  'key.format': 'json',
  'key.fields': key_fields | join(';'),
  'value.format': 'json',
  'value.fields-include': 'ALL',
  'sink.delivery-guarantee': 'exactly-once',
  'sink.transactional-id-prefix': env.flink.transactional_id_prefix ~ '-' ~ name,
  'sink.transaction-naming-strategy': env.flink.transaction_naming,
  'properties.transaction.timeout.ms': env.flink.transaction_timeout_ms,
}, **({'sink.parallelism': parallelism} if parallelism else {}))) }}
{%- endmacro -%}

{#- An upsert sink for a changelog (live tier): each key's latest row wins downstream. At least
    once and not transactional, so rows are visible within seconds; replays after a restore
    rewrite the same keys. The buffer keeps only each key's last row and flushes every
    flink.live_flush_interval, so a busy key costs one record per flush, not one per event. -#}
{%- macro upsert_sink(topic) -%}
{%- set opts = {
      'connector': 'upsert-kafka',
      'topic': topic.name,
      'properties.bootstrap.servers': env.kafka.bootstrap_servers,
      'key.format': 'json',
      'value.format': 'json',
      'value.fields-include': 'ALL',
      'sink.buffer-flush.interval': env.flink.live_flush_interval,
      'sink.buffer-flush.max-rows': 10000,
    } -%}
{%- set _ = opts.update(kafka_security()) -%}
{{ with_options(opts) }}
{%- endmacro -%}
