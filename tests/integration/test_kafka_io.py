"""Reading the raw topic on the real broker while something keeps writing to it, as the stack's
collector always does (heartbeats to every partition, twice a second)."""

from __future__ import annotations

import json
import threading
import time
import uuid

from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from adagg.demo import next_start_ms
from adagg.kafka_io import TopicReader, connection, ensure_topics, newest_event_time, read_deliveries
from collector.heartbeat import Heartbeat
from tests.integration.conftest import isolated_env


def test_the_newest_event_time_is_found_behind_heartbeats_that_keep_coming(kafka):
    """A fence written ahead of the clock, then heartbeats capped at the clock that never stop: the
    newest event time is the fence's, the read ends, and the next run starts past it."""
    env = isolated_env(f"newest-{uuid.uuid4().hex[:8]}")
    ensure_topics(env, say=lambda *_: None)
    topic, partitions = env.topics.raw.name, env.topics.raw.partitions
    ahead = int(time.time() * 1000) + 6 * 3_600_000
    producer = KafkaProducer(**connection(env), acks="all")
    for p in range(partitions):
        producer.send(topic, value=json.dumps({"event_id": f"fence-{p}", "event_time": ahead - p}).encode(), partition=p)
    producer.flush()
    heartbeat = Heartbeat("test", 0.05)  # the collector's, having written the fence
    heartbeat.saw(ahead)
    halt = threading.Event()

    def heartbeats() -> None:
        while not halt.wait(heartbeat.interval_s):
            value = heartbeat.value(int(time.time() * 1000))
            for p in range(partitions):
                producer.send(topic, value=value, partition=p)
            producer.flush()

    beating = threading.Thread(target=heartbeats, daemon=True)
    beating.start()
    try:
        time.sleep(3)  # some hundred heartbeats behind the fence in every partition
        assert newest_event_time(env) == ahead
        assert next_start_ms(env) >= ahead + 15 * 60_000
    finally:
        halt.set()
        beating.join()
        producer.close()


def test_reading_from_an_offset_retention_deleted_starts_at_the_oldest_kept_record(kafka):
    """The raw topic keeps events for a retention period: a reader asked for offsets already gone
    reads what is kept instead of waiting for records that never come."""
    env = isolated_env(f"retention-{uuid.uuid4().hex[:8]}")
    ensure_topics(env, say=lambda *_: None)
    topic = env.topics.raw.name
    producer = KafkaProducer(**connection(env), acks="all")
    for n in range(10):
        producer.send(topic, value=json.dumps({"event_id": f"e{n}", "event_time": n}).encode(), partition=0)
    producer.close()
    admin = KafkaAdminClient(**connection(env))
    admin.delete_records({TopicPartition(topic, 0): 4}, timeout_ms=30_000)
    admin.close()
    assert [(d.offset, d.record["event_id"]) for d in read_deliveries(env)] == [(n, f"e{n}") for n in range(4, 10)]


def test_a_topic_reader_returns_what_was_committed_since_its_last_read(kafka):
    """Two topics, one read incrementally: each read returns only the records written since the
    last, a transaction still open is not waited for (it comes with the read after its commit),
    and a start offset skips what came before it."""
    from confluent_kafka import Producer

    from collector.config import kafka_client_config

    env = isolated_env(f"reader-{uuid.uuid4().hex[:8]}")
    ensure_topics(env, say=lambda *_: None)
    first, second = env.topics.raw.name, env.topics.late.name
    plain = KafkaProducer(**connection(env), acks="all")
    for n in range(3):
        plain.send(first, value=json.dumps({"n": n}).encode(), partition=0)
    plain.flush()
    reader = TopicReader(env, [first, second], start={first: {0: 1}})
    txn = Producer({**kafka_client_config(env), "transactional.id": f"reader-test-{uuid.uuid4().hex[:8]}"})
    try:
        assert _values(reader.read()) == {first: [1, 2], second: []}
        txn.init_transactions()
        txn.begin_transaction()
        txn.produce(second, json.dumps({"n": 10}).encode(), partition=0)
        txn.flush()
        plain.send(first, value=json.dumps({"n": 3}).encode(), partition=2)
        plain.flush()
        assert _values(reader.read()) == {first: [3], second: []}
        txn.commit_transaction()
        assert _values(reader.read()) == {first: [], second: [10]}
    finally:
        reader.close()
        plain.close()


def _values(records: dict[str, list]) -> dict[str, list]:
    return {topic: [json.loads(msg.value())["n"] for msg in msgs] for topic, msgs in records.items()}
