{#- What the shared views do differently in the backfill (batch over the raw archive, where the
    job sets `batch`) than in the streaming job. Nothing else differs but the source. -#}

{#- The order in which a key's deliveries arrived, for the dedups (first arrival wins).
    Streaming: processing time. Batch: the Kafka offset, which orders arrivals the same way,
    because all deliveries of a billing key (and so of an event) share one raw-topic partition. -#}
{%- macro arrival_time() -%}
{%- if batch is defined and batch -%}
TO_TIMESTAMP_LTZ(kafka_offset, 3)
{%- else -%}
PROCTIME()
{%- endif -%}
{%- endmacro -%}
