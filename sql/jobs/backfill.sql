-- backfill: the streaming job's own dedup, enrichment and window SQL, run in batch mode over the
-- raw archive for the hours of [from_ms, to_ms): the reconciled tier's numbers. Only the source
-- (src_ad_events_archive + views/batch/stg_events_on_time.sql instead of the Kafka topic and the late split)
-- and the execution mode differ; every view from int_deliveries_enriched to mart_ad_minute is the
-- very file the streaming job includes (tests/unit/test_sql.py checks it), with the few mode
-- switches of macros/modes.sql.
-- Output: snk_backfill_ad_minute, the minute windows in [from_ms, to_ms).
{% set batch = true %}
SET 'execution.runtime-mode' = 'batch';
SET 'pipeline.name' = 'adagg-backfill-{{ env.name }}';
SET 'parallelism.default' = '{{ env.flink.parallelism }}';
SET 'table.local-time-zone' = 'UTC';
SET 'python.execution-mode' = '{{ env.flink.python_execution_mode }}';
SET 'taskmanager.memory.managed.size' = '{{ env.archive.backfill_managed_memory }}';
{% if env.flink.python_execution_mode == 'thread' %}
-- Thread-mode UDFs run inside the JVM and take no managed memory: leave all of it to the sorts, so
-- that a day sorts without spilling to disk.
SET 'python.fn-execution.memory.managed' = 'false';
{% endif %}
-- Every exchange pipelined, so the stages run at once on the machine's cores (the sorts take rows
-- while the Python UDF still produces them) instead of one after the other through blocking
-- shuffle files: 37.7-42.4 s against 45.8-48.8 s for a day of 859,258 rows (docs/benchmarks.md).
-- Pipelined exchanges need the default scheduler: the adaptive batch scheduler starts a stage only
-- once the stages it reads have finished, and the job hangs after the first buffers.
SET 'execution.batch-shuffle-mode' = 'ALL_EXCHANGES_PIPELINED';
SET 'jobmanager.scheduler' = 'default';
-- Optimize shared views once, as the streaming job does: int_events_enriched (read by the raw and
-- the billable branch) is then computed once per event, not once per branch: 21.8 s against
-- 23.2-23.7 s for a day (docs/benchmarks.md).
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';

{% for function in functions %}
{% include "functions/" ~ function ~ ".sql" %}
{% endfor %}

{% include "sources/src_ad_events_archive.sql" %}

{% include "views/batch/stg_events_on_time.sql" %}

{% include "views/int_deliveries_enriched.sql" %}

{% include "views/int_events_deduped.sql" %}

{% include "views/int_events_enriched.sql" %}

{% include "views/int_events_billable.sql" %}

{% include "views/int_event_measures.sql" %}

{% include "views/int_ad_minute.sql" %}

{% include "views/mart_ad_minute.sql" %}

{% include "sinks/snk_backfill_ad_minute.sql" %}

INSERT INTO snk_backfill_ad_minute
SELECT *
FROM mart_ad_minute
WHERE window_start_ms >= {{ from_ms }} AND window_start_ms < {{ to_ms }};
