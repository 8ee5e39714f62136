{#- What the shared views do differently in the backfill (batch over the raw archive, where the
    job sets `batch`) than in the streaming job: the event detail the backfill has no sink for.
    Nothing else differs but the source (src_ad_events_archive orders the dedups by Kafka offset
    where src_ad_events_raw has processing time). -#}

{#- Columns that only the streaming job reads: the event-level detail of its enriched-events sink
    (mart_events_enriched), and the collector's headers (source, received_at_ms) that the quality
    mart and the live tier read, which the backfill does not write (the archive has no headers). The backfill's views leave them out,
    so that its exact dedup does not sort them: the planner cannot prune them itself, because it
    optimizes the shared int_events_enriched once, with every column, for all its readers
    (docs/archive.md). Wrap whole lines: {% call streaming_only() %} ... {% endcall %}. -#}
{%- macro streaming_only() -%}
{%- if not (batch is defined and batch) -%}
{{ caller() }}
{%- endif -%}
{%- endmacro -%}
