"""The whole streaming job on a Flink mini-cluster against a real Kafka, with traffic sent while
it runs.

The correct job must equal the oracle exactly on every output. Deliberately broken variants must
be caught by the same comparison: one without the exact dedup, and one whose watermark trails by
5 minutes where 15 s was meant. Each run gets its own topics, consumer group and transactional ids.
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
from adagg.env import load
from adagg.kafka_io import ensure_topics, send_traffic
from adagg.paths import REPO, logs
from adagg.setup import connector_jars
from adagg.sql import render
from adagg.verify import Comparison, compare_outputs, wait_for_outputs
from tests.integration.conftest import isolated_env

MINI_REST = "http://127.0.0.1:18081"


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait()


def start_mini_cluster_job(stack, script_path, name):
    """Run the PyFlink entry point on a local mini-cluster (REST on :18081) and wait for RUNNING."""
    cmd = [sys.executable, "-m", "pyflink_jobs.streaming_job", "--sql-file", str(script_path),
           "--conf", "rest.port=18081", "--conf", "rest.address=127.0.0.1", "--conf", "rest.bind-address=127.0.0.1"]
    for conf in flink.mini_cluster_conf(load("local")):
        cmd += ["--conf", conf]
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
                # While the mini-cluster starts, REST may answer {"errors": [...]} instead.
                jobs = requests.get(f"{MINI_REST}/jobs/overview", timeout=2).json().get("jobs", [])
            except (requests.RequestException, ValueError):
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


def run_live(stack, traffic, tmp_path, run: str, mutate=None) -> dict[str, Comparison]:
    """Start the (possibly mutated) job, send the traffic while it runs, compare every output.

    The correct job is waited for until it equals the oracle (or 150 s pass); a mutated one until
    its outputs stop changing across two reads a checkpoint apart.
    """
    env = isolated_env(run)
    ensure_topics(env, say=lambda *_: None)
    script = tmp_path / f"{run}.sql"
    script.write_text(mutate(render(env)) if mutate else render(env))
    proc = start_mini_cluster_job(stack, script, run)
    try:
        send_traffic(env, traffic, pause_s=5, say=lambda *_: None)
        time.sleep(10)
        if mutate is None:
            results = wait_for_outputs(env, traffic.oracle, timeout_s=150, say=lambda *_: None)
        else:
            previous, deadline = None, time.monotonic() + 150
            while time.monotonic() < deadline:
                results = compare_outputs(env, traffic.oracle)
                shape = [(r.actual_rows, len(r.different)) for r in results]
                if shape == previous:
                    break
                previous = shape
                time.sleep(8)
    finally:
        stop(proc)
    return {r.output: r for r in results}


@pytest.fixture(scope="module")
def traffic(kafka):
    return make_traffic(load("local"), seed=7, events=6000, ads=12, close_day=True)


def test_job_output_equals_oracle_exactly(kafka, traffic, tmp_path):
    results = run_live(kafka, traffic, tmp_path, "exact")
    assert [r.summary() for r in results.values() if not r.exact] == []
    assert traffic.oracle.day and traffic.oracle.hour and traffic.oracle.top  # every output had rows


def test_broken_dedup_is_caught(kafka, traffic, tmp_path):
    """Billing keys and measures fed from the enriched deliveries, past the dedup: duplicates get counted."""
    def no_dedup(sql):
        assert sql.count("FROM int_events_deduped;") == 1
        return sql.replace("FROM int_events_deduped;", "FROM int_deliveries_enriched;")

    results = run_live(kafka, traffic, tmp_path, "nodedup", no_dedup)
    assert not results["ad_minute"].exact and not results["events_enriched"].exact
    assert results["events_enriched"].actual_rows == len(traffic.oracle.enriched)  # keyed: dups collapse
    assert results["events_enriched"].repeated  # ... but each duplicate was written again


def test_broken_watermark_is_caught(kafka, traffic, tmp_path):
    """A 5-minute bound where 10 s was meant: late events are counted as on time (in windows of
    their own, or on top of the right counts) and the late topic misses them. Deterministic: the
    watermark can only be further behind than the bound says, never ahead."""
    def loose(sql):  # the source's WATERMARK and the partition watermark (stg_deliveries) alike
        assert sql.count("INTERVAL '10' SECOND") == 2
        return sql.replace("INTERVAL '10' SECOND", "INTERVAL '5' MINUTE")

    results = run_live(kafka, traffic, tmp_path, "loosewm", loose)
    minute = results["ad_minute"]
    assert minute.unexpected or minute.different
    assert results["late_events"].missing and not results["late_events"].unexpected
