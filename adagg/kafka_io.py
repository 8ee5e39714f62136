"""Kafka plumbing for the CLI, demo and tests: topics, sending generated traffic, reading outputs."""

from __future__ import annotations

import json
import time
from typing import Iterator

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from adagg.traffic import Traffic


def connection(env) -> dict:
    """kafka-python's settings for the environment's brokers, security included: the very settings
    the collector gives librdkafka (collector.config.kafka_client_config), under kafka-python's
    names. Prod's SASL_SSL needs the credentials' environment variables and the PEM CA file."""
    from collector.config import kafka_client_config

    conf = kafka_client_config(env)
    out = {"bootstrap_servers": conf["bootstrap.servers"], "security_protocol": conf["security.protocol"]}
    if "sasl.mechanism" in conf:
        out |= {"sasl_mechanism": conf["sasl.mechanism"], "sasl_plain_username": conf["sasl.username"],
                "sasl_plain_password": conf["sasl.password"]}
    if "ssl.ca.location" in conf:
        out["ssl_cafile"] = conf["ssl.ca.location"]
    return out


def ensure_topics(env, say=print, sql_dir=None) -> None:
    """Create every topic the streaming job uses that does not exist yet (its sources and sinks,
    taken from the rendered SQL), the collector's dead-letter topic and the reconciliation history,
    with the environment's partitions and replication factor."""
    from adagg.sql import SQL_DIR, topics

    admin = KafkaAdminClient(**connection(env), request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        wanted = {**topics(env, sql_dir=sql_dir or SQL_DIR), **{t.name: t.partitions for t in (env.topics.dlq, env.topics.reconciliations)}}
        for name, partitions in wanted.items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, env.kafka.replication_factor)])
                say(f"  created topic {name} ({partitions} partitions)")
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def send_traffic(env, traffic: Traffic, pause_s: float = 3.0, say=print, after_phase=None,
                 catch_up_timeout_s: float = 180.0, collector_url: str | None = None) -> int:
    """Send the phases in order, straight to the raw topic or through the collector at
    collector_url. After each phase but the last, wait until the job's consumer group has
    committed the whole raw topic (the job read the phase's fences), then pause so the watermark
    catches up: late events must arrive after it. A slow job only makes this wait longer.

    after_phase(number) runs once a phase is flushed (tests use it to inject failures).
    """
    send_phase, close = phase_sender(env, collector_url)
    sent = 0
    try:
        for number, phase in enumerate(traffic.phases, 1):
            t0 = time.monotonic()
            send_phase(phase)
            sent += len(phase)
            say(f"  phase {number}/{len(traffic.phases)}: {len(phase)} events sent "
                f"{'through the collector ' if collector_url else ''}"
                f"({len(phase) / max(time.monotonic() - t0, 1e-3):,.0f}/s)")
            if after_phase:
                after_phase(number)
            if number < len(traffic.phases):
                if not wait_until_consumed(env, catch_up_timeout_s):
                    say(f"  warning: the job's consumer group {env.flink.consumer_group} has not read the "
                        f"raw topic to its end after {catch_up_timeout_s:.0f} s (is the job running?); "
                        "late events may be taken for on-time ones")
                time.sleep(pause_s)
    finally:
        close()
    return sent


def phase_sender(env, collector_url: str | None = None):
    """(send_phase, close): send_phase(phase) sends one phase of generated traffic and returns once
    every send is written, straight to the raw topic or through the collector at collector_url."""
    return _collector_sender(collector_url) if collector_url else _kafka_sender(env)


def _kafka_sender(env):
    producer = KafkaProducer(**connection(env), acks="all", linger_ms=5,
                             enable_idempotence=True)

    def send_phase(phase) -> None:
        for send in phase:
            producer.send(env.topics.raw.name, key=send.key, value=send.value, partition=send.partition)
        producer.flush()
    return send_phase, producer.close


def _collector_sender(url: str):
    """Through the collector, which keys and partitions each event itself (fences included: the
    generator picks fence users whose billing key hashes to the fence's partition)."""
    from collector import dev_keys
    from collector.client import CollectorClient

    client = CollectorClient(url, dev_keys.SDK)
    return (lambda phase: client.send([send.value for send in phase])), client.close


def consumer_lag(env) -> dict[int, int]:
    """Per raw-topic partition, the records the streaming job has not committed yet (its consumer
    group commits offsets with its checkpoints). Reads the group's offsets, never joins it."""
    from confluent_kafka import Consumer, TopicPartition as TP

    from collector.config import kafka_client_config

    topic = env.topics.raw.name
    ends = end_offsets(env, topic)
    consumer = Consumer({**kafka_client_config(env), "group.id": env.flink.consumer_group,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TP(topic, p) for p in ends], timeout=10)
        return {tp.partition: ends[tp.partition] - max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()


def wait_until_consumed(env, timeout_s: float) -> bool:
    """True once the job's consumer group has committed offsets at the end of every raw partition.

    The Flink source commits its offsets when a checkpoint completes, so this also means the job's
    state includes everything sent so far. The consumer here only reads the group's committed
    offsets; it never joins the group or commits."""
    topic = env.topics.raw.name
    consumer = KafkaConsumer(**connection(env), group_id=env.flink.consumer_group,
                             enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while True:
            if all((consumer.committed(tp) or 0) >= ends[tp] for tp in parts):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
    finally:
        consumer.close()


def read_topic(env, topic: str, idle_timeout_s: float = 2.0) -> Iterator[tuple[bytes, dict | None]]:
    """Every committed record of a topic from the beginning, as (key, decoded JSON value or None
    for a tombstone), each partition in order: one TopicReader.read(), so it stops once every
    partition is read to the end offsets taken at the start, or after idle_timeout_s without
    records (an open transaction keeps the end out of a read_committed consumer's reach). A topic
    that does not exist reads as empty. librdkafka: several times faster than kafka-python, which
    mattered to checks that read every output while traffic flows."""
    reader = TopicReader(env, [topic], idle_timeout_s=idle_timeout_s)
    try:
        for record in reader.read().get(topic, []):
            value = record.value()
            yield record.key(), None if value is None else json.loads(value)
    finally:
        reader.close()


def end_offsets(env, topic: str, partitions: int | None = None, timeout_s: float = 120) -> dict[int, int]:
    """partition -> the offset the next record will get, for every partition. Retried until the
    broker answers for all of them: just after a broker restart, metadata can list a topic with
    some partitions missing or leaderless, and a partition left out would read as silent.
    `partitions`: how many there must be (default: the environment's count for a known topic)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition as TP

    from collector.config import kafka_client_config

    if partitions is None:
        partitions = next((t.partitions for t in env.topics.values() if t.name == topic), None)
    consumer = Consumer({**kafka_client_config(env), "group.id": "adagg-offsets", "enable.auto.commit": False})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                parts = consumer.list_topics(topic, timeout=15).topics[topic].partitions
                if parts and (partitions is None or len(parts) == partitions) and all(
                        p.leader >= 0 for p in parts.values()):
                    return {p: consumer.get_watermark_offsets(TP(topic, p), timeout=15)[1] for p in parts}
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no offsets for every partition of {topic} within {timeout_s:.0f} s")
            time.sleep(1)
    finally:
        consumer.close()


def read_deliveries(env, since: dict[int, int] | None = None):
    """The raw topic's records from `since` (partition -> first offset; default: the beginning) up to
    its end now, as adagg.oracle.Delivery: events and the collector's heartbeats, each partition in
    offset order. An offset that retention has already deleted reads from the oldest kept record.
    librdkafka: a fault test reads hundreds of thousands of records at each check."""
    from confluent_kafka import Consumer, TopicPartition as TP

    from collector.config import kafka_client_config

    topic = env.topics.raw.name
    ends = end_offsets(env, topic)
    consumer = Consumer({**kafka_client_config(env), "group.id": "adagg-oracle", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    out = []
    try:
        oldest = {p: consumer.get_watermark_offsets(TP(topic, p), timeout=15)[0] for p in ends}
        start = {p: max((since or {}).get(p, 0), oldest[p]) for p in ends}
        want = {p: ends[p] - start[p] for p in ends if ends[p] > start[p]}
        left = dict(want)
        consumer.assign([TP(topic, p, start[p]) for p in want])
        deadline = time.monotonic() + 300
        while any(left.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: {sum(left.values())} records not read in 300 s")
            for msg in consumer.consume(10_000, timeout=1.0):
                if msg.error():
                    continue
                p = msg.partition()
                if left.get(p, 0) > 0 and msg.offset() < ends[p]:
                    out.append(delivery(msg))
                    left[p] -= 1
    finally:
        consumer.close()
    return out


class TopicReader:
    """Topics read incrementally by one consumer kept open: each `read()` returns the records
    written since the last one (at least up to the end offsets of that moment), by topic, each
    partition's records in offset order (partitions interleave). `committed`: read_committed, so
    an open transaction holds its partition's reading back; the read then ends after
    idle_timeout_s without records, once for all the topics. A fault test checks outputs that keep
    growing: reading them again from the start took most of each check. `start`: topic ->
    partition -> first offset (default: the beginning). A topic that does not exist has no
    partitions to read."""

    def __init__(self, env, topics: list[str], start: dict[str, dict[int, int]] | None = None,
                 committed: bool = True, idle_timeout_s: float = 2.0):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition as TP

        from collector.config import kafka_client_config

        self.topics, self.idle_timeout_s = topics, idle_timeout_s
        self.consumer = Consumer({**kafka_client_config(env), "group.id": "adagg-reader", "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest",  # a start offset retention has deleted
                                  "isolation.level": "read_committed" if committed else "read_uncommitted"})
        self.parts = [TP(topic, p, (start or {}).get(topic, {}).get(p, OFFSET_BEGINNING))
                      for topic in topics for p in self._partitions(topic)]
        self.consumer.assign(self.parts)

    def _partitions(self, topic: str) -> list[int]:
        meta = self.consumer.list_topics(topic, timeout=15).topics.get(topic)
        return [] if meta is None or meta.error or not meta.partitions else sorted(meta.partitions)

    def read(self) -> dict[str, list]:
        """The records (confluent_kafka Messages) written since the last read, by topic."""
        from confluent_kafka import TopicPartition as TP

        ends = {(tp.topic, tp.partition): self.consumer.get_watermark_offsets(TP(tp.topic, tp.partition), timeout=15)[1]
                for tp in self.parts}
        out: dict[str, list] = {topic: [] for topic in self.topics}
        idle_since = time.monotonic()
        while True:
            behind = [tp for tp in self.consumer.position(self.parts)
                      if ends[(tp.topic, tp.partition)] > 0 and tp.offset < ends[(tp.topic, tp.partition)]]
            if not behind:
                return out
            batch = self.consumer.consume(10_000, timeout=0.5)
            if batch:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_timeout_s:
                return out
            for msg in batch:
                if msg.error() is None:
                    out[msg.topic()].append(msg)

    def close(self) -> None:
        self.consumer.close()


def delivery(msg):
    """A raw-topic record as adagg.oracle.Delivery: an event or a collector heartbeat, where it sits."""
    from adagg.oracle import Delivery

    received = dict(msg.headers() or ()).get("adagg-received-at")
    return Delivery(msg.partition(), msg.offset(), json.loads(msg.value()), int(received) if received is not None else None)


def newest_event_time(env, lookback: int = 20_000) -> int | None:
    """The largest event_time among the last `lookback` records of each raw-topic partition (None
    if empty).

    Not just the last record: the collector's heartbeats keep every partition growing, with event
    times capped at its clock, so traffic written ahead of the clock (a fence past midnight) sits a
    few hundred heartbeats back. And only up to the end offsets taken first (read_deliveries), or
    the reading would never end."""
    since = {p: max(end - lookback, 0) for p, end in end_offsets(env, env.topics.raw.name).items()}
    times = [d.record.get("event_time") for d in read_deliveries(env, since)]
    return max((t for t in times if isinstance(t, int)), default=None)
