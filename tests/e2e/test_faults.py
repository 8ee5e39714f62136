"""Exact under continuous traffic while the stack is hit by faults (issue 20).

Traffic flows through the collector the whole time, as an SDK sends it (adagg/live_traffic.py),
while faults come at random moments: a TaskManager killed (kill -9) eleven times, one more than
the ten restarts a lifetime that fixed-delay allowed; the Kafka broker killed and restarted; the
Pinot server restarted; the collector killed while the sender resends what it did not answer.
Each fault that fails the job comes at least the reset-backoff-threshold after the last recovery.
Until windows have been seen closed, the traffic leaves raw partitions 2 and 3 without events:
only the collector's heartbeats reach them, and windows must close all the same. When events come
back to those partitions, late ones among them must still be told late, after restores too.

What must hold is checked against the oracle of what the raw topic holds (oracle.
derive_from_deliveries), so it does not depend on when faults struck: after every second fault,
each final row written so far has its exact value and every exactly-once topic holds each key once;
at the end every output equals the oracle and every event the collector accepted is counted, in
its window or in the late stream. Recovery times are recorded for every fault.

It is also the suite's short soak: the running job keeps its state in RocksDB, checkpoints
incrementally and keeps its checkpoints short while the state holds every event of the run.
benchmarks/soak.py is the long one, millions of events, and shows the heap staying flat (at a few
hundred thousand events, a live-heap comparison cannot tell on-heap state from buffer pools).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

import pytest
import requests

from adagg import flink
from adagg.chaos import Chaos
from adagg.demo import next_start_ms, wait_for_pinot
from adagg.env import bucket_ms, late_delay_ms, load
from adagg.kafka_io import TopicReader, delivery, end_offsets, phase_sender, read_deliveries
from adagg.live_traffic import Sender, timeline
from adagg.oracle import TABLE_KEYS, derive_from_deliveries
from adagg.sql import output_topic
from adagg.traffic import key_partition
from adagg.verify import OUTPUTS, record_key_columns, summed, wait_for_outputs
from collector import dev_keys
from collector.client import collector_url

RATE = 250  # new events a second
SECONDS = 1800  # of traffic at most (the test's time limit): the sender is stopped TAIL_S after the last fault
TAIL_S = 30
CLOSED_BY_S = 115  # by then windows have closed (the first after 75 s of event time, plus a commit)
CLOSED_TIMEOUT_S = 180  # how long windows may take to close after that, faults and recoveries included
EMPTY_PARTITIONS = {2, 3}
# Faults that fail the job, one after the other: eleven TaskManager losses (one more than the ten
# restarts a lifetime fixed-delay allowed) and the broker. The collector and the Pinot server leave
# the job running, so they strike in the quiet spells after two of them.
JOB_FAULTS = ["taskmanager"] * 11 + ["kafka"]
QUIET_S = 11  # from a recovery to the next job fault: above the 10 s reset-backoff-threshold
CHECKPOINT_MS_MAX = 10_000  # the heap-state job's checkpoints had reached 42 s


class Checks:
    """Every final row written so far equals the oracle of what the raw topic holds, and no
    exactly-once topic holds a key twice. Rows not written yet are not asked for: a window the
    job has closed can no longer change (a later event of it is late by its partition's
    watermark), so the oracle's value of it is final. The outputs are read first: every record the
    job had read before writing them is in the raw topic when it is read after. Each check reads
    only what was written since the last one (the oracle is derived again from every delivery)."""

    def __init__(self, env, since: dict[int, int]):
        self.env = env
        self.outputs = [out for out in OUTPUTS if not out.changelog]
        self.topic = {out: output_topic(env, out.topic_suffix).name for out in self.outputs}
        self.output_reader = TopicReader(env, list(self.topic.values()))
        self.raw_reader = TopicReader(env, [env.topics.raw.name], start={env.topics.raw.name: since}, committed=False)
        self.records: dict = {out: [] for out in self.outputs}
        self.deliveries: list = []

    def __call__(self) -> dict:
        written = self.output_reader.read()
        for out in self.outputs:
            self.records[out] += [json.loads(msg.value()) for msg in written[self.topic[out]] if msg.value() is not None]
        self.deliveries += [delivery(msg) for msg in self.raw_reader.read()[self.env.topics.raw.name]]
        env = self.env
        oracle = derive_from_deliveries(self.deliveries, env.topics.raw.partitions, late_delay_ms(env), bucket_ms(env),
                                        mix_stats=False)
        problems, rows = [], 0
        for out, records in self.records.items():
            expected = getattr(oracle, out.oracle_table)
            record_keys, keys = record_key_columns(out), TABLE_KEYS[out.oracle_table]
            seen: dict = {}
            for record in records:
                key = tuple(record[c] for c in record_keys)
                if key in seen:
                    problems.append(f"{out.name}: key {key} written twice")
                seen[key] = record
            for record in summed(out, list(seen.values())):
                key = tuple(record[c] for c in keys)
                want = expected.get(key if len(keys) > 1 else key[0])
                if want is None or {c: record[c] for c in want} != want:
                    problems.append(f"{out.name}: {key} is {record}, the oracle says {want}")
            rows += len(seen)
        per_partition = Counter(d.partition for d in self.deliveries)
        return {"problems": problems, "final_rows": rows,
                "oracle": f"final watermark {oracle.final_watermark_ms}, deliveries per partition {dict(per_partition)}"}

    def close(self) -> None:
        self.output_reader.close()
        self.raw_reader.close()


def wait_for_closed_windows(check: Checks, timeout_s: float) -> int:
    """The number of final rows once there is one (each equal to the oracle), polled."""
    deadline = time.time() + timeout_s
    while True:
        state = check()
        assert state["problems"] == [], (state["oracle"], state["problems"][:3])
        if state["final_rows"] > 0:
            return state["final_rows"]
        assert time.time() < deadline, f"no window closed in {timeout_s} s while partitions 2 and 3 were empty"
        time.sleep(5)


@pytest.mark.timeout(1800)  # about 13 minutes of traffic and faults by design
def test_exact_under_continuous_traffic_through_faults(stack, job):
    env = load("local")
    partitions = env.topics.raw.partitions
    since = end_offsets(env, env.topics.raw.name)
    tl = timeline(seed=2020, seconds=SECONDS, rate=RATE, ads=30, partitions=partitions,
                  start_ms=next_start_ms(env), bound_ms=late_delay_ms(env), bucket_ms=bucket_ms(env))
    partition_of = {eid: key_partition(s.key, partitions) for _, eid, s in tl.sends}
    # Until windows have been seen closed, drop the sends bound for the empty partitions (a
    # duplicate goes with its event): an event, not the clock, ends the empty spell.
    seen_closed = threading.Event()
    url = collector_url(env)
    sender = Sender(url, dev_keys.SDK, tl.sends,
                    skip=lambda send: not seen_closed.is_set() and key_partition(send.key, partitions) in EMPTY_PARTITIONS)
    chaos = Chaos(stack, env, job, visible_timeout_s=60)
    rng = random.Random(20)
    job_faults = list(JOB_FAULTS)
    rng.shuffle(job_faults)
    in_quiet = dict(zip(rng.sample(range(len(job_faults)), 2), (chaos.kill_collector, chaos.restart_pinot_server)))
    apply_fault = {"taskmanager": chaos.kill_taskmanager, "kafka": chaos.kill_kafka}
    log: list[dict] = []
    check = Checks(env, since)

    def checked(recovery) -> None:
        t0 = time.time()
        state = check()
        log.append({**recovery.as_dict(), "final_rows": state["final_rows"], "check_s": round(time.time() - t0, 1),
                    "traffic_s": round(time.time() - sender.started_at)})
        print(json.dumps(log[-1]), flush=True)
        assert state["problems"] == [], (recovery, state["oracle"], state["problems"][:3])

    closed_while_empty = None
    quiet_until = time.time()  # the quiet spell after each recovery holds its checks
    sender.start()
    try:
        for n, fault in enumerate(job_faults):
            if closed_while_empty is None and time.time() - sender.started_at > CLOSED_BY_S - 60:
                # Windows close while two partitions have had no event: their heartbeats carry the time.
                time.sleep(max(0.0, sender.started_at + CLOSED_BY_S - time.time()))
                closed_while_empty = wait_for_closed_windows(check, CLOSED_TIMEOUT_S)
                seen_closed.set()
            if n in in_quiet:
                time.sleep(rng.uniform(0, 4))
                checked(in_quiet[n]())
            time.sleep(max(0.0, quiet_until - time.time()))
            assert sender.is_alive(), f"the traffic stopped before the faults did ({sender.error})"
            recovery = apply_fault[fault]()
            quiet_until = time.time() + QUIET_S + rng.uniform(0, 4)
            # Final rows never change once written, so a check after every second fault still
            # holds every row written after each fault to its value (half the checks' time).
            if n % 2 or n == len(job_faults) - 1:
                checked(recovery)
            else:
                log.append(recovery.as_dict())
        assert closed_while_empty, "no check while partitions 2 and 3 were empty"
        time.sleep(TAIL_S)
        assert sender.is_alive() and sender.error is None
    finally:
        sender.stop()
        sender.join()
        check.close()
    assert sender.stats.rejected == []
    chaos.wait_taskmanagers()
    send, close = phase_sender(env, url)
    send(tl.close)
    close()
    print(json.dumps(log, indent=1))

    oracle = derive_from_deliveries(read_deliveries(env, since), partitions, late_delay_ms(env), bucket_ms(env))
    results = wait_for_outputs(env, oracle, timeout_s=300, say=lambda *_: None)
    assert all(r.exact for r in results), "\n".join(r.summary() for r in results if not r.exact)
    assert wait_for_pinot(env, oracle, timeout_s=120) == oracle.minute
    # Conservation: every event the collector accepted reached the raw topic and is counted once,
    # in its window (the enriched events are the windows' input) or in the late stream.
    in_topic = set(oracle.enriched) | oracle.late_event_ids
    assert set(sender.stats.accepted) <= in_topic
    # The rule the job applies is the one the traffic was built for (clearly late, clearly on
    # time), and late events reached the partitions that had been without events, told late there.
    assert oracle.late_event_ids == tl.late_ids() & in_topic
    assert {partition_of[e] for e in oracle.late_event_ids} >= EMPTY_PARTITIONS
    # Eleven TaskManager losses, each a restart (wait_recovered saw the job run again after it), and
    # the job runs on: fixed-delay's ten attempts a lifetime would have ended it at the eleventh.
    taskmanager_recoveries = [r.job_running_s for r in chaos.recoveries if r.fault.startswith("kill -9 flink")]
    assert len(taskmanager_recoveries) == 11 and all(s is not None for s in taskmanager_recoveries)
    assert flink.job_detail(env.flink.rest_url, job)["state"] == "RUNNING"
    # Soak: the state is off the heap in the job as it runs, each checkpoint uploads less than the
    # whole state (incremental), and the newest, with every event of the run in the state, are short.
    rest = f"{env.flink.rest_url}/jobs/{job}/checkpoints"
    assert requests.get(f"{rest}/config", timeout=10).json()["state_backend"] == "EmbeddedRocksDBStateBackend"
    completed = [cp for cp in requests.get(rest, timeout=10).json()["history"] if cp["status"] == "COMPLETED"]
    assert completed and max(cp["end_to_end_duration"] for cp in completed) < CHECKPOINT_MS_MAX, completed
    assert min(cp["checkpointed_size"] / cp["state_size"] for cp in completed) < 0.5, completed
