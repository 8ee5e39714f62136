-- stg_events_on_time: the batch counterpart of views/stg_events_on_time.sql (views/batch/ holds
-- the backfill's own views), under the same name so that the shared views (int_events_deduped
-- onwards) read it unchanged. In a batch there is no watermark, so no event is late: every
-- archived delivery of the chosen hours is kept.
-- Grain: one event delivery (duplicates still present). Input: src_ad_events_archive, the
-- partitions (hours) of the backfill's range only.
CREATE TEMPORARY VIEW stg_events_on_time AS
SELECT *
FROM src_ad_events_archive
WHERE
{%- for partition in partitions %}
  (dt = '{{ partition.dt }}' AND hr = '{{ partition.hr }}'){{ " OR" if not loop.last }}
{%- endfor %};
