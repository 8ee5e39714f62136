"""Late events across restarts and upgrades, on the whole stack at parallelism 4 over two TaskManagers.

Windows fire and are committed; then the job is interrupted (a TaskManager kill -9, or a stop with
a savepoint), and late events for those very windows are sent while it is down, so the restored
job reads them before its first new watermark. Flink restores each window operator's watermark
(it drops rows of windows it has fired) but not the source's, so a late split that trusts
CURRENT_WATERMARK alone lets them through as on time: the window drops them silently, the live tier
counts them, and the late stream never sees them. Every output must still equal the oracle: the
late events in the late topic, the committed final rows unchanged and written once, the live tier
equal to the final one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from adagg import flink, paths, procstat
from adagg.demo import make_traffic, next_start_ms, run_since_ms, wait_for_pinot
from adagg.env import late_delay_ms, load
from adagg.kafka_io import consumer_lag, phase_sender, read_topic, wait_until_consumed
from adagg.oracle import TABLE_KEYS
from adagg.sql import output_topic
from adagg.paths import REPO
from adagg.verify import wait_for_outputs


def wait_committed(env, oracle, fence_ts: int, timeout_s: float = 240) -> dict:
    """Wait until every final minute row that the fence closed is visible to read_committed
    readers (so the checkpoint holding the window's firing has completed); returns them."""
    closed = {k: v for k, v in oracle.minute.items() if v["window_end_ms"] <= fence_ts - late_delay_ms(env)}
    assert closed, "the first phase closed no window"
    keys = TABLE_KEYS["minute"]
    deadline = time.monotonic() + timeout_s
    while True:
        seen = {tuple(r[c] for c in keys): r for _, r in read_topic(env, output_topic(env, "ad-minute").name)
                if r is not None and tuple(r[c] for c in keys) in closed}
        if seen.keys() == closed.keys():
            return seen
        assert time.monotonic() < deadline, f"{len(closed) - len(seen)} closed windows not committed"
        time.sleep(2)


def run_with_interruption(stack, job_id: str, seed: int, interrupt, resume) -> int:
    """Phase 1 (fenced) -> its windows committed -> interrupt -> phase 2, whose late events belong
    to those windows, sent while the job is down -> resume -> phase 3 (the close) -> all exact.
    Returns the oracle and the newest event time sent."""
    env = load("local")
    traffic = make_traffic(env, seed=seed, events=6_000, ads=20, start_ms=next_start_ms(env))
    oracle = traffic.oracle
    main, late, close = traffic.phases
    late_ids = set(oracle.late_event_ids)
    assert late_ids and oracle.stats["late_sends"] > 0
    send, stop_sending = phase_sender(env)
    try:
        send(main)
        assert wait_until_consumed(env, 180)
        fence1 = max(json.loads(s.value)["event_time"] for s in main)
        committed = wait_committed(env, oracle, fence1)

        down_since_ms = int(time.time() * 1000)
        job_id = interrupt(job_id)
        send(late)  # every late event of this phase belongs to a window committed above
        sent_at_ms = int(time.time() * 1000)
        job_id, running_at_ms = resume(job_id, down_since_ms)
        assert sent_at_ms < running_at_ms, "the late events arrived after the job was back: not the restore gap"

        assert wait_until_consumed(env, 180)
        time.sleep(4)
        send(close)
    finally:
        stop_sending()
    since = run_since_ms(oracle)
    results = wait_for_outputs(env, oracle, timeout_s=300, since_ms=since, say=lambda *_: None)
    assert all(r.exact for r in results), "\n".join(r.summary() for r in results if not r.exact)
    # Spelled out, what the comparison above covers: the committed rows kept their values.
    assert all(oracle.minute[k] == {c: row[c] for c in oracle.minute[k]} for k, row in committed.items())
    late_seen = {r["event_id"] for _, r in read_topic(env, env.topics.late.name) if r["event_id"] in late_ids}
    assert late_seen == late_ids
    assert wait_for_pinot(env, oracle, since_ms=since, timeout_s=120) == {
        k: v for k, v in oracle.minute.items() if k[0] >= since}
    return oracle, max(json.loads(s.value)["event_time"] for phase in traffic.phases for s in phase)


def test_late_events_sent_while_a_crashed_taskmanager_is_replaced_go_to_the_late_stream(stack, job):
    env = load("local")
    victim = "flink-taskmanager-1"

    def interrupt(job_id: str) -> str:
        os.killpg(stack.pid(victim), signal.SIGKILL)
        return job_id

    def resume(job_id: str, since_ms: int) -> tuple[str, int]:
        running_at = flink.wait_recovered(env.flink.rest_url, job_id, since_ms)
        stack.up([victim], say=lambda *_: None)  # back to two TaskManagers for what follows
        return job_id, running_at

    run_with_interruption(stack, job, seed=404, interrupt=interrupt, resume=resume)


def _jvm_of(stack, service: str) -> int:
    """The JVM a supervised service runs: the java child of the shell its pid file names."""
    shell = stack.pid(service)
    [jvm] = [st.pid for st in procstat.every() if st.ppid == shell
             and b"java" in Path(f"/proc/{st.pid}/cmdline").read_bytes().split(b"\0")[0]]
    return jvm


def test_a_jobmanager_killed_under_traffic_comes_back_and_recovers_the_job_exactly(stack, job):
    """kill -9 of the JobManager's JVM, right after windows were committed: its supervisor starts
    it again (as Kubernetes restarts a pod); it wins the leadership in ZooKeeper, finds the job
    there and restores it from its newest checkpoint, under the same job id, by itself. Late
    events for the committed windows are sent while it is down. Every output is exact."""
    env = load("local")
    [running] = flink.running_jobs(env)
    killed: dict = {}

    def interrupt(job_id: str) -> str:
        killed["pid"] = _jvm_of(stack, "flink-jobmanager")
        os.kill(killed["pid"], signal.SIGKILL)
        return job_id

    def resume(job_id: str, since_ms: int) -> tuple[str, int]:
        running_at = flink.wait_recovered(env.flink.rest_url, job_id, since_ms, timeout_s=300)
        assert _jvm_of(stack, "flink-jobmanager") != killed["pid"]
        return job_id, running_at

    run_with_interruption(stack, running["jid"], seed=407, interrupt=interrupt, resume=resume)
    assert [j["jid"] for j in flink.running_jobs(env)] == [running["jid"]]  # the same job, not a new one
    [status] = json.loads(_cli("status", "--json"))
    assert status["state"] == "RUNNING" and status["checkpoints"]["restored"] >= 1


def _cli_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adagg.cli", "job", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def _cli(*args: str) -> str:
    done = _cli_run(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_late_events_sent_while_the_job_is_stopped_with_a_savepoint_go_to_the_late_stream(stack, job):
    """The job's lifecycle as an operator runs it, under traffic: `adagg job savepoint` (the job
    runs on), `adagg job stop` (a savepoint, no drain), late events sent while it is down,
    `adagg job resume --from`; every output exact, and `adagg job status` with live figures."""
    env = load("local")
    [running] = flink.running_jobs(env)
    savepoint: dict = {}

    def interrupt(job_id: str) -> str:
        taken = re.search(r"keeps running: (\S+)", _cli("savepoint"))[1]
        assert (Path(taken.removeprefix("file:")) / "_metadata").exists()
        assert Path(taken.removeprefix("file:")).parent == paths.env_dir(env.flink.savepoint_dir)
        assert flink.job_detail(env.flink.rest_url, job_id)["state"] == "RUNNING"
        savepoint["path"] = re.search(r"savepoint: (\S+)", _cli("stop"))[1]
        assert not flink.running_jobs(env)
        return job_id

    def resume(job_id: str, since_ms: int) -> tuple[str, int]:
        _cli("resume", "--from", savepoint["path"])
        [resumed] = flink.running_jobs(env)
        return resumed["jid"], flink.job_detail(env.flink.rest_url, resumed["jid"])["timestamps"]["RUNNING"]

    _, newest = run_with_interruption(stack, running["jid"], seed=405, interrupt=interrupt, resume=resume)
    # Nothing writes to the raw topic now (no collector events, so no heartbeats): once the group
    # has committed its end, the lag the status reads is 0 and stays 0, whatever the timing.
    assert wait_until_consumed(env, 60)
    [status] = json.loads(_cli("status", "--json"))
    assert status["state"] == "RUNNING" and status["checkpoints"]["restored"] >= 1
    assert status["consumer_lag"]["records"] == 0  # everything sent is read and committed
    assert status["last_checkpoint"] and status["last_checkpoint"]["path"]
    [(source, watermark)] = status["source_watermarks"].items()
    assert "src_ad_events_raw" in source and watermark is not None and watermark <= newest


BACKLOG_EVENTS = 150_000  # minutes of reading for the job as deployed, past the resume's warm-up
BEHIND_MIN = 10_000  # records the job must still have to read when it is stopped
BACK_PRESSURED = 200  # ms a second a source subtask waits on its output (1,000: all the time)


def _source_times(env, job_id: str) -> dict[str, dict]:
    """The raw source's busy and back-pressured milliseconds a second over its subtasks."""
    vertices = flink.job_detail(env.flink.rest_url, job_id)["vertices"]
    [source] = [v for v in vertices if "src_ad_events_raw" in v["name"]]
    url = f"{env.flink.rest_url}/jobs/{job_id}/vertices/{source['id']}/subtasks/metrics"
    metrics = requests.get(url, params={"get": "backPressuredTimeMsPerSecond,busyTimeMsPerSecond"}, timeout=10)
    return {m["id"]: m for m in metrics.json()}


def test_a_stop_while_the_job_reads_a_backlog_under_back_pressure_is_taken_and_resumes_exactly(stack, job):
    """`adagg job stop` while the job reads a backlog as fast as it can, then `adagg job
    resume`; then every output exact. Under back-pressure the source subtasks see
    the stop at different points of their mailbox, and Flink 2.2 refused such a savepoint for a
    vertex with union list state (the raw archive's writer, chained to the source), failing the
    job over instead: the job disables checkpoints after finished tasks, which no task of an
    unbounded job reaches (docs/deploy.md#a-stop-under-back-pressure)."""
    env = load("local")
    traffic = make_traffic(env, seed=408, events=BACKLOG_EVENTS, ads=20, start_ms=next_start_ms(env))
    *backlog, close = traffic.phases
    send, stop_sending = phase_sender(env)
    try:
        # The backlog piles up while the job is stopped (sent while it ran, the job would keep up
        # with the sending); each resume then reads it as fast as it can.
        stopped = _cli("stop")
        for phase in backlog:
            send(phase)
        _cli("resume", "--from", re.search(r"savepoint: (\S+)", stopped)[1])
        [running] = flink.running_jobs(env)
        flink.wait_running(env.flink.rest_url, running["jid"])
        deadline = time.monotonic() + 300
        # A resumed job first compiles its code (the source busy, not back-pressured); then the
        # operators after the source cannot keep up and back-pressure it. How much depends on the
        # machine: on faster cores the source itself stays the busier part (a 2-s poll for 500
        # ms/s once saw the job catch up first), so a fifth of each second blocked is enough.
        while (times := _source_times(env, running["jid"]))["backPressuredTimeMsPerSecond"]["max"] < BACK_PRESSURED:
            assert time.monotonic() < deadline, f"the source was never back-pressured: {times}"
            time.sleep(0.5)
        behind = sum(consumer_lag(env).values())
        assert behind > BEHIND_MIN, f"the job had caught up ({behind} records behind): a larger backlog"
        stopped = _cli("stop")
        print(f"stopped {behind} records behind, the source back-pressured {times}", flush=True)
        assert not flink.running_jobs(env), stopped
        _cli("resume", "--from", re.search(r"savepoint: (\S+)", stopped)[1])
        assert wait_until_consumed(env, 600)
        time.sleep(4)
        send(close)
    finally:
        stop_sending()
    oracle = traffic.oracle
    since = run_since_ms(oracle)
    results = wait_for_outputs(env, oracle, timeout_s=300, since_ms=since, say=lambda *_: None)
    assert all(r.exact for r in results), "\n".join(r.summary() for r in results if not r.exact)
    assert oracle.late_event_ids
    [status] = json.loads(_cli("status", "--json"))
    assert status["checkpoints"]["restored"] >= 1


FIXTURES = Path(__file__).parent / "fixtures" / "upgrade"


def _sql_copy(tmp_path: Path) -> Path:
    sql_dir = tmp_path / "sql"
    shutil.copytree(paths.SQL_DIR, sql_dir)
    return sql_dir


def test_an_incompatible_upgrade_is_refused_before_anything_stops(stack, job, tmp_path):
    """The dedup's key changed: its state (the event ids seen) means something else now. Both
    `upgrade --check` and `upgrade` say so, naming the operator and the change, and exit 2; the
    running job is not touched and no savepoint is taken."""
    env = load("local")
    sql_dir = _sql_copy(tmp_path)
    dedup = sql_dir / "views" / "int_events_deduped.sql"
    text = dedup.read_text()
    assert "PARTITION BY event_id ORDER BY" in text
    dedup.write_text(text.replace("PARTITION BY event_id ORDER BY", "PARTITION BY event_id, event_type ORDER BY"))
    [running] = flink.running_jobs(env)
    savepoints = paths.env_dir(env.flink.savepoint_dir)
    before = sorted(savepoints.iterdir()) if savepoints.exists() else []
    for args in (["--check"], []):
        done = _cli_run("upgrade", *args, "--sql-dir", str(sql_dir))
        assert done.returncode == 2, done.stdout + done.stderr
        assert "incompatible:" in done.stdout
        assert "Deduplicate(keep=[FirstRow], key=[event_id]," in done.stdout  # the operator whose state is lost
        assert "Exchange(distribution=[hash[event_id, event_type]])" in done.stdout  # where the plans first differ
        assert "docs/deploy.md#an-incompatible-change" in done.stdout
        assert f"job {running['jid']} keeps running unchanged" in done.stdout
    assert [j["jid"] for j in flink.running_jobs(env)] == [running["jid"]]
    assert flink.job_detail(env.flink.rest_url, running["jid"])["state"] == "RUNNING"
    assert (sorted(savepoints.iterdir()) if savepoints.exists() else []) == before


def test_a_compatible_upgrade_under_traffic_loses_and_doubles_nothing(stack, job, tmp_path):
    """A new mart and sink added to the SQL: `upgrade --check` says every state carries over;
    `upgrade` runs while the late phase is sent (so events reach the old job, the stop and the
    new job), and every output is exact across it: committed final rows once and unchanged, late
    events in the late stream, live = final. The new mart's rows are exact too: each minute it
    writes is a minute whose windows fired in the new job, so it saw all of that minute."""
    env = load("local")
    sql_dir = _sql_copy(tmp_path)
    shutil.copy(FIXTURES / "mart_campaign_minute.sql", sql_dir / "views")
    shutil.copy(FIXTURES / "snk_campaign_minute.sql", sql_dir / "sinks")
    [running] = flink.running_jobs(env)
    check = _cli("upgrade", "--check", "--sql-dir", str(sql_dir))
    assert "compatible: the state of all" in check and "new sinks: snk_campaign_minute" in check
    assert [j["jid"] for j in flink.running_jobs(env)] == [running["jid"]]  # --check stopped nothing
    upgrading: dict = {}

    def interrupt(job_id: str) -> str:
        upgrading["proc"] = subprocess.Popen([sys.executable, "-m", "adagg.cli", "job", "upgrade", "--sql-dir",
                                              str(sql_dir)], cwd=REPO, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
        return job_id

    def resume(job_id: str, since_ms: int) -> tuple[str, int]:
        out, _ = upgrading["proc"].communicate(timeout=600)
        assert upgrading["proc"].returncode == 0, out
        new_id = re.search(r"upgraded: job ([0-9a-f]{32})", out)[1]
        assert new_id != job_id and [j["jid"] for j in flink.running_jobs(env)] == [new_id]
        return new_id, flink.job_detail(env.flink.rest_url, new_id)["timestamps"]["RUNNING"]

    oracle, _ = run_with_interruption(stack, running["jid"], seed=406, interrupt=interrupt, resume=resume)
    [status] = json.loads(_cli("status", "--json"))
    assert status["checkpoints"]["restored"] >= 1
    expected: dict = {}
    for (window_start_ms, *_), row in oracle.minute.items():
        sums = expected.setdefault((window_start_ms, row["campaign_id"]), dict.fromkeys(
            ("clicks", "billable_clicks", "spend_micros"), 0))
        for measure in sums:
            sums[measure] += row[measure]
    topic = output_topic(env, "campaign-minute").name
    written = [r for _, r in read_topic(env, topic) if r is not None]
    keys = [(r["window_start_ms"], r["campaign_id"]) for r in written]
    assert written and len(keys) == len(set(keys))  # rows, each written once
    for row, key in zip(written, keys):
        assert {m: row[m] for m in expected[key]} == expected[key], key
