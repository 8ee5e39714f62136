"""Hands records to Kafka and says when Kafka has them: the collector's only path to the broker.

confluent-kafka (librdkafka) rather than kafka-python: a bare produce loop here moves ~30x more
records per second with it (benchmarks/collector_throughput.py measures both). The producer is
idempotent with acks=all; a record counts as written only when its delivery report says so.
Delivery reports are served on the event loop's own thread (a pump task polls librdkafka), so
no second Python thread competes for the GIL; the last report of a request's batch wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Producer

log = logging.getLogger("adagg.collector")


class Unavailable(Exception):
    """Kafka is down or the in-flight buffer is full: the caller answers 503 with Retry-After."""


@dataclass
class _Batch:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    remaining: int
    errors: dict[int, str] = field(default_factory=dict)
    failed_values: dict[bytes, str] = field(default_factory=dict)

    def delivered(self, err, msg) -> None:  # one call per record, from producer.poll(): keep it lean
        if err is not None:
            # Which record: rare, so found by value afterwards rather than tracked per record.
            self.failed_values[msg.value()] = err.str()
        self.remaining -= 1
        if not self.remaining:
            self._complete()

    def settle(self, count: int) -> None:
        """Count records that will never report (they were not produced)."""
        self.remaining -= count
        if not self.remaining:
            self._complete()

    def _complete(self) -> None:
        if not self.future.done():
            if _on_loop_thread(self.loop):
                self.future.set_result(None)
            else:  # reports served by close()'s flush on another thread
                self.loop.call_soon_threadsafe(_resolve, self.future)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _log_failure(err, msg) -> None:
    if err is not None:
        log.warning("kafka: heartbeat to %s[%s] failed: %s", msg.topic(), msg.partition(), err.str())


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class KafkaWriter:
    def __init__(self, client_config: dict, buffer_events: int, delivery_timeout_ms: int, linger_ms: int,
                 probe_topic: str):
        self.buffer_events = buffer_events
        self.probe_topic = probe_topic
        self.in_flight = 0           # produced, delivery not yet reported (event loop thread only)
        self.kafka_up = False
        self.kafka_state = "starting"   # up | unreachable | raw topic missing
        self.partitions = 0             # of the probe topic (the raw topic), from its metadata
        self._work = asyncio.Event()
        self._pump_task: asyncio.Task | None = None
        self._config = {
            **client_config,
            "enable.idempotence": True,          # implies acks=all and ordered retries
            "acks": "all",
            "linger.ms": linger_ms,
            "message.timeout.ms": delivery_timeout_ms,   # a delivery report always comes by then
            "queue.buffering.max.messages": max(buffer_events * 2, 100_000),
            "partitioner": "murmur2_random",     # what Java clients (and kafka-python) use for keyed records
            "allow.auto.create.topics": False,   # topics are created on purpose (adagg.kafka_io), never by accident
            "error_cb": self._on_error,
        }
        self.producer = Producer(self._config)

    # ---- background ----

    def start(self) -> None:
        """Start serving delivery reports (call on the event loop)."""
        self._pump_task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        """Serve delivery reports and client callbacks: every millisecond while records are in
        flight, every 100 ms otherwise (errors and reconnects still get reported)."""
        poll = self.producer.poll
        while True:
            poll(0)
            if self.in_flight:
                await asyncio.sleep(0.001)
            else:
                self._work.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._work.wait(), 0.1)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.kafka_up, self.kafka_state = False, "unreachable"
        log.warning("kafka: %s", err.str())

    def probe(self, timeout_s: float = 2.0) -> bool:
        """Blocking: can the producer fetch the raw topic's metadata with a leader for every partition?"""
        try:
            meta = self.producer.list_topics(self.probe_topic, timeout=timeout_s)
            topic = meta.topics.get(self.probe_topic)
            ok = bool(topic and not topic.error and topic.partitions
                      and all(p.leader >= 0 for p in topic.partitions.values()))
            if ok:
                self.partitions = len(topic.partitions)
            state = "up" if ok else f"topic {self.probe_topic} missing or leaderless"
        except KafkaException:
            ok, state = False, "unreachable"
        self.kafka_up, self.kafka_state = ok, state
        return ok

    # ---- writing ----

    async def write(self, records: list[tuple[str, bytes | None, bytes, list]]) -> dict[int, str]:
        """Produce (topic, key, value, headers) records and wait for every delivery report.
        Returns the failed ones by index (empty: all durably written). Raises Unavailable
        without producing anything when Kafka is known down or the buffer cannot take them."""
        if not records:
            return {}
        if not self.kafka_up:
            raise Unavailable(f"Kafka is not ready ({self.kafka_state})")
        if self.in_flight + len(records) > self.buffer_events:
            raise Unavailable(f"the in-flight buffer is full ({self.in_flight} of {self.buffer_events} events)")
        loop = asyncio.get_running_loop()
        batch = _Batch(loop, loop.create_future(), len(records))
        self.in_flight += len(records)
        self._work.set()
        produced, produce, delivered = 0, self.producer.produce, batch.delivered
        try:
            for index, (topic, key, value, headers) in enumerate(records):
                try:
                    produce(topic, value, key, headers=headers, on_delivery=delivered)
                except (BufferError, KafkaException) as error:
                    # Nothing after this one is produced; count them as failed now.
                    for rest in range(index, len(records)):
                        batch.errors[rest] = f"not produced: {error}"
                    break
                produced += 1
            if produced < len(records):
                batch.settle(len(records) - produced)  # they will never report
            if produced:
                await batch.future
            if batch.failed_values:
                for index, (_, _, value, _) in enumerate(records):
                    if value in batch.failed_values:
                        batch.errors[index] = batch.failed_values[value]
            return batch.errors
        finally:
            self.in_flight -= len(records)

    def to_every_partition(self, topic: str, value: bytes, headers: list) -> None:
        """Produce one record, without a key, to each partition of the topic (heartbeats). Not
        waited for: the next one follows within seconds, and a failure is only logged."""
        for partition in range(self.partitions):
            try:
                self.producer.produce(topic, value, partition=partition, headers=headers, on_delivery=_log_failure)
            except (BufferError, KafkaException) as error:
                log.warning("kafka: heartbeat to %s[%d] not produced: %s", topic, partition, error)
                return
        self._work.set()

    async def close(self, timeout_s: float = 30.0) -> int:
        """Flush what is in flight (graceful shutdown); returns the number of records still unsent."""
        t0 = time.monotonic()
        if self._pump_task:
            self._pump_task.cancel()
        left = await asyncio.to_thread(self.producer.flush, timeout_s)
        log.info("kafka: flushed in %.1f s, %d records left unsent", time.monotonic() - t0, left)
        return left
