"""The whole local stack: generator -> Kafka -> Flink session cluster -> Kafka -> Pinot, every
output exact against the oracle, through a TaskManager crash, and with the job submitted by
Flink's own SQL client; then `stack down` must leave no process behind. Tests run in file order."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from adagg import flink
from adagg.demo import make_traffic, next_start_ms, run_since_ms, wait_for_pinot
from adagg.env import load
from adagg.kafka_io import ensure_topics, send_traffic
from adagg.paths import REPO
from adagg.pinot import apply
from adagg.stack import MARKER, port_open
from adagg.traffic import Traffic
from adagg.verify import wait_for_outputs
from collector.client import collector_url, wait_ready


def test_stack_up_is_idempotent(stack):
    before = {s.name: stack.pid(s.name) for s in stack.services}
    assert all(before.values()), before
    stack.up()
    assert {s.name: stack.pid(s.name) for s in stack.services} == before
    assert all(row["healthy"] for row in stack.status())


def test_pinot_apply_is_idempotent(stack):
    env = load("local")
    ensure_topics(env)
    assert apply(env) == ["create schema ad_minute", "create table ad_minute"]
    assert apply(env) == []


def assert_exact(results) -> None:
    assert [r.summary() for r in results if not r.exact] == []


def test_every_output_equals_the_oracle_exactly(stack):
    """Duplicates, billing repeats, bots, blocked IPs, out-of-order and late events, a hot ad and
    v1 + v2 events; the last fence passes midnight, so hour and day windows close too."""
    env = load("local")
    job_id = flink.submit("local")
    flink.wait_running(env.flink.rest_url, job_id)
    traffic = make_traffic(env, seed=2026, events=20_000, ads=30, close_day=True)
    st = traffic.oracle.stats
    for feature in ("duplicates", "retries", "bots", "blocked_ips", "out_of_order", "late_sends", "v2_events",
                    "billing_repeats", "conversion_events"):
        assert st[feature] > 0, feature
    assert st["hot_ad_events"] > 0.25 * st["unique_events"]
    send_traffic(env, traffic, pause_s=4)
    assert_exact(wait_for_outputs(env, traffic.oracle, timeout_s=240))
    oracle = traffic.oracle
    assert oracle.hour and oracle.day and oracle.sliding and oracle.top and oracle.minute_live
    assert sum(r["billable_clicks"] for r in oracle.minute.values()) < sum(r["clicks"] for r in oracle.minute.values())
    assert wait_for_pinot(env, oracle, timeout_s=120) == oracle.minute


def test_through_the_collector_every_output_is_exact(stack):
    """generator -> collector (HTTP) -> Kafka -> Flink -> Pinot, still exact: the stack's collector
    validates, keys and partitions every event itself, the phase fences included."""
    env = load("local")
    url = collector_url(env)
    wait_ready(url)
    traffic = make_traffic(env, seed=31, events=10_000, ads=30, start_ms=next_start_ms(env))
    send_traffic(env, traffic, pause_s=4, collector_url=url)
    since = run_since_ms(traffic.oracle)
    assert_exact(wait_for_outputs(env, traffic.oracle, timeout_s=240, since_ms=since))
    assert wait_for_pinot(env, traffic.oracle, since_ms=since, timeout_s=120) == {
        k: v for k, v in traffic.oracle.minute.items() if k[0] >= since}
    metrics = httpx.get(f"{url}/metrics").text
    accepted = re.search(r'^adagg_collector_events_accepted_total\{endpoint="events"\} (\S+)$', metrics, re.M)
    assert accepted and float(accepted[1]) >= traffic.oracle.stats["sends"]


def test_taskmanager_crash_recovers_exactly_once(stack):
    """Kill -9 the TaskManager halfway through the first phase; the job restores from its checkpoint
    on a new TaskManager. Every output still equals the oracle, and every exactly-once output holds
    each key once: exactly-once sinks and restored dedup/window state.

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
    since = run_since_ms(traffic.oracle)
    assert_exact(wait_for_outputs(env, traffic.oracle, timeout_s=240, since_ms=since))
    assert wait_for_pinot(env, traffic.oracle, since_ms=since, timeout_s=120) == {
        k: v for k, v in traffic.oracle.minute.items() if k[0] >= since}


def test_sql_client_runs_the_rendered_sql_as_is(stack, tmp_path):
    """`adagg sql render` output, submitted unchanged with Flink's bin/sql-client.sh -f, runs and
    gives the same exact results."""
    env = load("local")
    flink.cancel_all(env, say=lambda *_: None)
    script = tmp_path / "streaming.local.sql"
    rendered = subprocess.run([sys.executable, "-m", "adagg.cli", "sql", "render", "--env", "local"],
                              capture_output=True, text=True, check=True, cwd=REPO).stdout
    script.write_text(rendered)
    job_id = flink.submit_sql_client("local", script, say=lambda *_: None)
    flink.wait_running(env.flink.rest_url, job_id)
    traffic = make_traffic(env, seed=7, events=5_000, ads=20, start_ms=next_start_ms(env))
    send_traffic(env, traffic, pause_s=4)
    assert_exact(wait_for_outputs(env, traffic.oracle, timeout_s=180, since_ms=run_since_ms(traffic.oracle)))


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
                 s.pinot_server.admin_port, s.flink_jobmanager.port, stack.env.collector.port):
        assert not port_open(port), f"port {port} still open after stack down"
    assert not any(p.exists() for p in (stack.pid_file(svc.name) for svc in stack.services))
    assert os.environ.get(MARKER) is None
