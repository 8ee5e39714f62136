-- streaming_clicks: the streaming job. Reads the raw topic, splits late events into the late
-- topic, deduplicates on event_id and writes final 1-minute click counts per ad.
-- Outputs: snk_clicks_minute, snk_late_events. Settings come from the environment file.
SET 'pipeline.name' = 'adagg-streaming-clicks-{{ env.name }}';
SET 'parallelism.default' = '{{ env.flink.parallelism }}';
SET 'table.local-time-zone' = 'UTC';
SET 'table.exec.state.ttl' = '{{ env.flink.state_ttl }}';
SET 'execution.checkpointing.interval' = '{{ env.flink.checkpoint_interval }}';
SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';

{% include "sources/src_ad_events_raw.sql" %}

{% include "views/stg_events_on_time.sql" %}

{% include "views/stg_events_late.sql" %}

{% include "views/int_events_deduped.sql" %}

{% include "views/mart_clicks_minute.sql" %}

{% include "sinks/snk_clicks_minute.sql" %}

{% include "sinks/snk_late_events.sql" %}

EXECUTE STATEMENT SET
BEGIN
INSERT INTO snk_clicks_minute SELECT * FROM mart_clicks_minute;
INSERT INTO snk_late_events SELECT * FROM stg_events_late;
END;
