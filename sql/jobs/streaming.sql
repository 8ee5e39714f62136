-- streaming: the streaming job. Reads the raw topic, archives every delivery, splits late events
-- into the late topic, deduplicates, enriches, applies billing idempotency and writes every mart
-- to its topic. Outputs: snk_raw_archive, snk_late_events and, for every sql/views/mart_<name>.sql, sink sql/sinks/snk_<name>.sql
-- (found by file name: an analyst adds an aggregate by adding those two files).
-- Settings come from the environment file.
SET 'pipeline.name' = 'adagg-streaming-{{ env.name }}';
SET 'parallelism.default' = '{{ env.flink.parallelism }}';
SET 'pipeline.max-parallelism' = '{{ env.flink.max_parallelism }}';
SET 'table.local-time-zone' = 'UTC';
SET 'table.exec.state.ttl' = '{{ env.flink.state_ttl }}';
SET 'execution.checkpointing.interval' = '{{ env.flink.checkpoint_interval }}';
SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';
{%- if 'scan.bounded.mode' not in env.flink.get('raw_source_options', {}) %}
-- No task of this unbounded job ever finishes. Under back-pressure the source's subtasks take a
-- stop-with-savepoint at different points, and with checkpoints after finished tasks allowed
-- Flink refuses that savepoint for the source's vertex, whose raw-archive writer keeps union
-- list state (docs/deploy.md#a-stop-under-back-pressure). A bounded run (benchmarks, view tests)
-- keeps them: its exactly-once sinks commit their last records in the final checkpoint.
SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'false';
{%- endif %}
-- Keyed state off the heap, checkpointed incrementally (docs/pipeline.md#state-and-memory).
SET 'state.backend.type' = '{{ env.flink.state_backend }}';
SET 'execution.checkpointing.incremental' = '{{ env.flink.incremental_checkpoints | lower }}';
-- Bloom filters in RocksDB's files: most lookups of both dedups are for keys never seen (a new
-- event), which a filter answers without reading a data block. Measured: +25% read rate
-- (docs/benchmarks.md#where-the-streaming-jobs-time-goes). Ignored by the heap backend.
SET 'state.backend.rocksdb.use-bloom-filter' = 'true';
-- Survive occasional failures forever, stop a crash loop (infra/env: flink.restart).
SET 'restart-strategy.type' = 'exponential-delay';
{%- for option, value in env.flink.restart.items() %}
SET 'restart-strategy.exponential-delay.{{ option }}' = '{{ value }}';
{%- endfor %}
SET 'pipeline.auto-watermark-interval' = '{{ env.flink.auto_watermark_interval }}';
-- Skew: every window aggregate runs in two phases (a local pre-aggregate per slice before the
-- shuffle), so a hot ad is summed locally first. Mini-batch stays off on purpose: in this job
-- Flink 2.2 would insert a processing-time mini-batch assigner after the source, which drops
-- event-time watermarks, and it turns the append-only dedup into an updating one (docs/pipeline.md).
SET 'table.exec.mini-batch.enabled' = 'false';
SET 'table.optimizer.agg-phase-strategy' = 'TWO_PHASE';
-- Optimize shared views once, so the dedup and enrichment run once for all sinks.
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';
SET 'python.execution-mode' = '{{ env.flink.python_execution_mode }}';

{% for function in functions %}
{% include "functions/" ~ function ~ ".sql" %}
{% endfor %}

{% include "sources/src_ad_events_raw.sql" %}

{% include "views/stg_deliveries.sql" %}

{% include "views/stg_events_on_time.sql" %}

{% include "views/stg_events_late.sql" %}

{% include "views/stg_raw_archive.sql" %}

{% include "views/int_deliveries_enriched.sql" %}

{% include "views/int_events_deduped.sql" %}

{% include "views/int_events_enriched.sql" %}

{% include "views/int_events_billable.sql" %}

{% include "views/int_event_measures.sql" %}

{% include "views/int_ad_minute.sql" %}

{% include "views/int_ad_hour.sql" %}

{% include "views/int_ad_scope_minute.sql" %}

{% include "views/int_quality_measures.sql" %}

{% for mart in marts %}
{% include "views/mart_" ~ mart ~ ".sql" %}

{% include "sinks/snk_" ~ mart ~ ".sql" %}
{% endfor %}

{% include "sinks/snk_late_events.sql" %}

{% include "sinks/snk_raw_archive.sql" %}

EXECUTE STATEMENT SET
BEGIN
{%- for mart in marts %}
INSERT INTO snk_{{ mart }} SELECT * FROM mart_{{ mart }};
{%- endfor %}
INSERT INTO snk_late_events SELECT * FROM stg_events_late;
INSERT INTO snk_raw_archive SELECT * FROM stg_raw_archive;
END;
