"""Heartbeats: one small record to every raw-topic partition each interval, carrying only an event
time, so that no partition of the raw topic ever falls silent.

Why: the job's watermark is the minimum over the raw topic's partitions, and its late split tests
each delivery against its own partition's watermark as well (sql/views/stg_deliveries.sql). A
partition that gets no events would hold every window open; a source idle timeout would free
them, but only by ignoring the silent partition, and then which events count as late depends on
which partition Flink happens to read first when traffic resumes. A heartbeat keeps every
partition's watermark moving and fresh, and since it is a record, lateness stays a function of the
topic's content: a replay or an oracle reading the topic decides exactly as the job did.

A heartbeat's event time is the highest event time this collector has written, but never later
than its clock: a client whose clock runs fast must not carry every partition's watermark ahead.
Before its first event a collector sends none. The job reads a heartbeat into the watermarks and
drops it (the `heartbeat` column, docs/collector.md#heartbeats).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

log = logging.getLogger("adagg.collector")


class Heartbeat:
    def __init__(self, collector_id: str, interval_s: float):
        self.collector_id = collector_id
        self.interval_s = interval_s
        self.high_ms: int | None = None  # highest event time written to the raw topic

    def saw(self, event_time_ms: int) -> None:
        if self.high_ms is None or event_time_ms > self.high_ms:
            self.high_ms = event_time_ms

    def value(self, now_ms: int) -> bytes | None:
        """The heartbeat record's value, or None before the first event."""
        if self.high_ms is None:
            return None
        return json.dumps({"heartbeat": self.collector_id, "event_time": min(self.high_ms, now_ms)},
                          separators=(",", ":")).encode()

    async def run(self, writer, topic: str, headers: list) -> None:
        """Every interval, one heartbeat to each partition of the topic (while Kafka is up)."""
        while True:
            await asyncio.sleep(self.interval_s)
            value = self.value(int(time.time() * 1000))
            if value is not None and writer.kafka_up:
                writer.to_every_partition(topic, value, headers)
