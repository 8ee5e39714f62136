"""The streaming job on a Flink mini-cluster against a real Kafka, with traffic sent while it runs.

The correct job must equal the oracle exactly. Deliberately broken variants must be caught by the
same comparison: one without dedup, and one whose watermark bound is tighter than the traffic's
out-of-orderness. Each run gets its own topics, consumer group and transactional ids.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from adagg import flink
from adagg.demo import make_traffic
from adagg.env import load, override
from adagg.kafka_io import ensure_topics, read_topic, send_traffic
from adagg.paths import REPO, logs
from adagg.setup import connector_jars
from adagg.sql import render

MINI_REST = "http://127.0.0.1:18081"


def isolated_env(run: str):
    env = load("local")
    changes = {f"topics.{key}.name": f"{topic.name}.{run}" for key, topic in env.topics.items()}
    changes["flink.consumer_group"] = f"{env.flink.consumer_group}-{run}"
    changes["flink.transactional_id_prefix"] = f"{env.flink.transactional_id_prefix}-{run}"
    return override(env, changes)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait()


def start_mini_cluster_job(stack, script_path, name):
    """Run the PyFlink entry point on a local mini-cluster (REST on :18081) and wait for RUNNING."""
    cmd = [sys.executable, "-m", "pyflink_jobs.streaming_job", "--sql-file", str(script_path),
           "--conf", "rest.port=18081", "--conf", "rest.address=127.0.0.1", "--conf", "rest.bind-address=127.0.0.1"]
    for jar in connector_jars():
        cmd += ["--jar", jar]
    log = open(logs() / f"it-{name}.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **stack.flink_env()}, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"mini-cluster job exited; see {log.name}"
            try:
                jobs = requests.get(f"{MINI_REST}/jobs/overview", timeout=2).json()["jobs"]
            except requests.RequestException:
                jobs = []
            if jobs:
                flink.wait_running(MINI_REST, jobs[0]["jid"])
                time.sleep(3)  # let the Kafka source take its splits before traffic starts
                return proc
            time.sleep(1)
        pytest.fail(f"mini-cluster job did not start; see {log.name}")
    except BaseException:
        stop(proc)
        raise


def read_clicks(env) -> dict[tuple[str, int], int]:
    return {(v["ad_id"], v["window_start_ms"]): v["clicks"] for _, v in read_topic(env, env.topics.clicks_minute.name)}


def run_live(stack, traffic, tmp_path, run: str, mutate=None):
    """Start the (possibly mutated) job, send the traffic while it runs, return (clicks, late records).

    The correct job is waited for until it equals the oracle (or 150 s pass); a mutated one until
    its output stops changing across two reads a checkpoint apart.
    """
    env = isolated_env(run)
    ensure_topics(env, say=lambda *_: None)
    script = tmp_path / f"{run}.sql"
    script.write_text(mutate(render(env)) if mutate else render(env))
    proc = start_mini_cluster_job(stack, script, run)
    try:
        send_traffic(env, traffic, pause_s=5, say=lambda *_: None)
        deadline, previous, clicks = time.monotonic() + 150, None, {}
        time.sleep(10)
        while time.monotonic() < deadline:
            clicks = read_clicks(env)
            if clicks == traffic.oracle.clicks or (mutate and clicks and clicks == previous):
                break
            previous = clicks
            time.sleep(8)
        late = [v for _, v in read_topic(env, env.topics.late.name)]
    finally:
        stop(proc)
    return clicks, late


@pytest.fixture(scope="module")
def traffic(kafka):
    return make_traffic(load("local"), seed=7, events=6000, ads=12)


def test_job_output_equals_oracle_exactly(kafka, traffic, tmp_path):
    clicks, late = run_live(kafka, traffic, tmp_path, "exact")
    assert clicks == traffic.oracle.clicks
    assert {v["event_id"] for v in late} == traffic.oracle.late_event_ids
    assert len(late) == traffic.oracle.stats["late_sends"]
    assert all(v["reason"] == "late" and v["watermark_at"] for v in late)


def test_broken_dedup_is_caught(kafka, traffic, tmp_path):
    """Windows fed from the on-time stream before dedup: duplicates get counted."""
    def no_dedup(sql):
        assert sql.count("TUMBLE(TABLE int_events_deduped") == 1
        return sql.replace("TUMBLE(TABLE int_events_deduped", "TUMBLE(TABLE stg_events_on_time")

    clicks, _ = run_live(kafka, traffic, tmp_path, "nodedup", no_dedup)
    assert clicks != traffic.oracle.clicks
    assert sum(clicks.values()) > sum(traffic.oracle.clicks.values())


def test_broken_watermark_is_caught(kafka, traffic, tmp_path):
    """A 300 s bound where 10 s was meant: some late events are counted as on time, the last
    windows never close, and the late topic misses events. Deterministic: the watermark can only
    be further behind than the bound says, never ahead."""
    def loose(sql):
        assert sql.count("INTERVAL '10' SECOND") == 1
        return sql.replace("INTERVAL '10' SECOND", "INTERVAL '5' MINUTE")

    clicks, late = run_live(kafka, traffic, tmp_path, "loosewm", loose)
    assert clicks != traffic.oracle.clicks
    assert {v["event_id"] for v in late} < traffic.oracle.late_event_ids
