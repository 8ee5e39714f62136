"""The whole local stack: generator -> Kafka -> Flink session cluster -> Kafka -> Pinot, exact
against the oracle; then `stack down` must leave no process behind. Tests run in file order."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

from adagg import flink
from adagg.demo import make_traffic, next_start_ms, wait_for_oracle
from adagg.env import load
from adagg.kafka_io import ensure_topics, read_topic, send_traffic
from adagg.pinot import apply
from adagg.stack import MARKER, port_open
from adagg.traffic import Traffic


def test_stack_up_is_idempotent(stack):
    before = {s.name: stack.pid(s.name) for s in stack.services}
    assert all(before.values()), before
    stack.up()
    assert {s.name: stack.pid(s.name) for s in stack.services} == before
    assert all(row["healthy"] for row in stack.status())


def test_pinot_apply_is_idempotent(stack):
    env = load("local")
    ensure_topics(env)
    assert apply(env) == ["create schema ad_clicks_minute", "create table ad_clicks_minute"]
    assert apply(env) == []


def test_pinot_counts_equal_the_oracle_exactly(stack):
    env = load("local")
    job_id = flink.submit("local")
    flink.wait_running(env.flink.rest_url, job_id)
    traffic = make_traffic(env, seed=2026, events=20_000, ads=30)
    assert traffic.oracle.stats["duplicates"] > 0 and traffic.oracle.stats["late_sends"] > 0
    assert traffic.oracle.stats["out_of_order"] > 0
    send_traffic(env, traffic, pause_s=4)
    got = wait_for_oracle(env, traffic.oracle, timeout_s=180, whole_table=True)
    assert got == traffic.oracle.clicks
    late = [v for _, v in read_topic(env, env.topics.late.name)]
    assert {v["event_id"] for v in late} == traffic.oracle.late_event_ids
    assert len(late) == traffic.oracle.stats["late_sends"]


def test_taskmanager_crash_recovers_exactly_once(stack):
    """Kill -9 the TaskManager halfway through the first phase; the job restores from its checkpoint
    on a new TaskManager. Pinot still equals the oracle, every window is in the topic once, and every
    late delivery is in the late topic once: exactly-once sinks and restored dedup/window state.

    The crash comes before the phase's fences: watermarks are not checkpointed, so a job restored
    after the fences would see no watermark (CURRENT_WATERMARK is NULL) until new events arrive,
    and would take the next late events for on-time ones (see docs/pipeline.md)."""
    env = load("local")
    [job] = flink.running_jobs(env)
    traffic = make_traffic(env, seed=99, events=20_000, ads=30, start_ms=next_start_ms(env))
    first = traffic.phases[0]
    half = len(first) // 2
    sending = Traffic(phases=[first[:half], first[half:], *traffic.phases[1:]], oracle=traffic.oracle)

    def crash_after_first_phase(number: int) -> None:
        if number != 1:
            return
        time.sleep(2)
        os.killpg(stack.pid("flink-taskmanager"), signal.SIGKILL)
        stack.up(["flink-taskmanager"], say=lambda *_: None)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the restart, then for every task to run again
            detail = flink.job_detail(env.flink.rest_url, job["jid"])
            restarted = detail["timestamps"].get("RESTARTING", 0) > 0
            if restarted and detail["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in detail["vertices"]):
                break
            time.sleep(1)
        else:
            raise AssertionError("the job did not recover after the TaskManager was killed")
        time.sleep(8)  # catch up on phase 1 and emit its watermark before late events arrive

    send_traffic(env, sending, pause_s=4, after_phase=crash_after_first_phase)
    assert wait_for_oracle(env, traffic.oracle, timeout_s=180) == traffic.oracle.clicks
    keys = Counter((v["ad_id"], v["window_start_ms"]) for _, v in read_topic(env, env.topics.clicks_minute.name))
    assert keys and max(keys.values()) == 1, "a window was emitted twice"
    late = [v["event_id"] for _, v in read_topic(env, env.topics.late.name) if v["event_id"] in traffic.oracle.late_event_ids]
    assert set(late) == traffic.oracle.late_event_ids
    assert len(late) == traffic.oracle.stats["late_sends"]


def _our_processes(home: Path) -> list[int]:
    marker = f"{MARKER}={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_stack_down_leaves_no_process(stack):
    assert _our_processes(stack.home)
    stack.down()
    assert _our_processes(stack.home) == []
    s = stack.s
    for port in (s.kafka.port, s.zookeeper.port, s.pinot_controller.port, s.pinot_broker.port,
                 s.pinot_server.admin_port, s.flink_jobmanager.port):
        assert not port_open(port), f"port {port} still open after stack down"
    assert not any(p.exists() for p in (stack.pid_file(svc.name) for svc in stack.services))
    assert os.environ.get(MARKER) is None
