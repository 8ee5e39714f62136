"""The streaming job on a Flink mini-cluster against a real Kafka: exact against the oracle, and a
deliberately broken variant (no dedup) that the same check catches."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from adagg import flink
from adagg.demo import make_traffic
from adagg.env import load
from adagg.kafka_io import ensure_topics, read_topic, send_traffic
from adagg.paths import REPO, logs
from adagg.setup import connector_jars
from adagg.sql import render

MINI_REST = "http://127.0.0.1:18081"


def start_mini_cluster_job(kafka_stack, script_path=None, name="job"):
    cmd = [sys.executable, "-m", "pyflink_jobs.streaming_job", "--env", "local", "--conf", "rest.port=18081",
           "--conf", "rest.address=127.0.0.1", "--conf", "rest.bind-address=127.0.0.1"]
    if script_path:
        cmd += ["--sql-file", str(script_path)]
    for jar in connector_jars():
        cmd += ["--jar", jar]
    log = open(logs() / f"it-{name}.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **kafka_stack.flink_env()}, start_new_session=True)
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


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait()


def read_clicks(env, topic) -> dict[tuple[str, int], int]:
    return {(v["ad_id"], v["window_start_ms"]): v["clicks"] for _, v in read_topic(env, topic)}


def wait_for(fn, expected, timeout_s=120):
    deadline, got = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        got = fn()
        if got == expected:
            break
        time.sleep(3)
    return got


@pytest.fixture(scope="module")
def traffic(kafka):
    env = load("local")
    ensure_topics(env)
    return make_traffic(env, seed=7, events=6000, ads=12)


def test_job_output_equals_oracle_exactly(kafka, traffic):
    env = load("local")
    proc = start_mini_cluster_job(kafka, name="exact")
    try:
        send_traffic(env, traffic, pause_s=5)
        clicks = wait_for(lambda: read_clicks(env, env.topics.clicks_minute.name), traffic.oracle.clicks)
        late = [v for _, v in read_topic(env, env.topics.late.name)]
    finally:
        stop(proc)
    assert clicks == traffic.oracle.clicks
    assert {v["event_id"] for v in late} == traffic.oracle.late_event_ids
    assert len(late) == traffic.oracle.stats["late_sends"]
    assert all(v["reason"] == "late" and v["watermark_at"] for v in late)


def test_broken_dedup_variant_is_caught(kafka, traffic, tmp_path):
    """Same job with dedup disabled, replaying the same raw topic: the oracle check must fail."""
    env = load("local")
    broken = (render("local")
              .replace("TUMBLE(TABLE int_events_deduped", "TUMBLE(TABLE stg_events_on_time")
              .replace(env.topics.clicks_minute.name, "it.broken.clicks-minute")
              .replace(env.topics.late.name, "it.broken.late")
              .replace(env.flink.consumer_group, "it-broken")
              .replace(env.flink.transactional_id_prefix, "it-broken"))
    assert broken.count("TUMBLE(TABLE stg_events_on_time") == 1
    script = tmp_path / "broken.sql"
    script.write_text(broken)
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=env.kafka.bootstrap_servers)
    admin.create_topics([NewTopic("it.broken.clicks-minute", 1, 1), NewTopic("it.broken.late", 1, 1)])
    admin.close()
    proc = start_mini_cluster_job(kafka, script, name="broken")
    try:
        want = sum(traffic.oracle.clicks.values()) + traffic.oracle.stats["duplicates"] // 2
        deadline, clicks = time.monotonic() + 120, {}
        while time.monotonic() < deadline and sum(clicks.values()) < want:
            clicks = read_clicks(env, "it.broken.clicks-minute")
            time.sleep(3)
    finally:
        stop(proc)
    assert clicks != traffic.oracle.clicks
    assert sum(clicks.values()) > sum(traffic.oracle.clicks.values())
