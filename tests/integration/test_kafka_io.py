"""Reading the raw topic on the real broker while something keeps writing to it, as the stack's
collector always does (heartbeats to every partition, twice a second)."""

from __future__ import annotations

import json
import threading
import time
import uuid

from kafka import KafkaProducer

from adagg.demo import next_start_ms
from adagg.kafka_io import connection, ensure_topics, newest_event_time
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
    halt = threading.Event()

    def heartbeats() -> None:
        while not halt.wait(0.05):
            now = int(time.time() * 1000)
            for p in range(partitions):
                producer.send(topic, value=json.dumps({"heartbeat": "test", "event_time": now}).encode(), partition=p)
            producer.flush()

    beating = threading.Thread(target=heartbeats, daemon=True)
    beating.start()
    try:
        time.sleep(3)  # some hundred heartbeats behind the fence in every partition
        assert newest_event_time(env, timeout_s=30) == ahead
        assert next_start_ms(env) >= ahead + 15 * 60_000
    finally:
        halt.set()
        beating.join()
        producer.close()
