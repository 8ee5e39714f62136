"""Loads deliveries straight into the archive layout, without Kafka or Flink: Parquet files with
the columns and types snk_raw_archive writes, one folder per UTC event hour, then committed
(_SUCCESS) like Flink commits them. For the backfill benchmark (a day of generated events) and
the backfill's integration test; the real archive is written by the streaming job."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from archive.manifest import SUCCESS, Partition

COLUMNS = ("schema_version", "event_id", "event_type", "event_time", "ad_id", "campaign_id", "advertiser_id",
           "user_id", "ip", "user_agent", "placement_id", "publisher_id", "cost_micros", "conversion_value_micros",
           "referrer_domain", "kafka_partition", "kafka_offset")


def _schema():
    import pyarrow as pa

    types = {"schema_version": pa.int32(), "event_time": pa.int64(), "cost_micros": pa.int64(),
             "conversion_value_micros": pa.int64(), "kafka_partition": pa.int32(), "kafka_offset": pa.int64()}
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in COLUMNS])


def load(root: Path, sends: Iterable, partitions: int = 3, file_rows: int = 500_000) -> dict[str, int]:
    """Write sends (key, value JSON, partition or None; in delivery order) as archived deliveries,
    in the Kafka partition a producer would have picked (murmur2 of the key, like the collector
    and Java clients) with offsets in that order. Returns rows per partition folder."""
    from kafka.partitioner.default import murmur2

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffers: dict[Partition, list[dict]] = {}
    counts: dict[str, int] = {}
    files: dict[Partition, int] = {}
    offsets = [0] * partitions

    def flush(partition: Partition) -> None:
        rows = buffers.pop(partition, [])
        if not rows:
            return
        directory = root / partition.name
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=_schema())
        pq.write_table(table, directory / f"part-loaded-{files.get(partition, 0)}", compression="snappy")
        files[partition] = files.get(partition, 0) + 1

    for send in sends:
        event = json.loads(send.value)
        p = send.partition if send.partition is not None else (murmur2(send.key) & 0x7FFFFFFF) % partitions
        row = {c: event.get(c) for c in COLUMNS} | {"kafka_partition": p, "kafka_offset": offsets[p]}
        offsets[p] += 1
        partition = Partition.of(event["event_time"])
        buffers.setdefault(partition, []).append(row)
        counts[partition.name] = counts.get(partition.name, 0) + 1
        if len(buffers[partition]) >= file_rows:
            flush(partition)
    for partition in list(buffers):
        flush(partition)
    for name in counts:
        (root / name / SUCCESS).touch()
    return counts
