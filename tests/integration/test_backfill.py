"""The backfill on a Flink mini-cluster (batch mode) over a raw archive of generated traffic: it
must equal the reconciled oracle (every unique event, late ones included) exactly, recompute the
same billing report byte for byte, refuse a corrupted archive before running anything, and stop
its Flink job when the command is terminated.

The archive is loaded with archive/loader.py (Parquet in the sink's layout, as Flink commits it,
in many small files like one per checkpoint, which sealing merges into one per hour): this tier
tests the batch SQL over compacted hours; tests/e2e checks the archive the streaming job itself
writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adagg import paths
from adagg.demo import make_traffic
from adagg.env import load, override
from adagg.stack import group_alive
from archive import loader
from archive.manifest import ArchiveError, data_files, seal_all
from reconcile import backfill, billing
from serving.queries import MEASURES

pytestmark = pytest.mark.integration
HOUR = 3_600_000
START = 1_795_860_000_000  # 2026-11-28T10:00Z


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    env = override(load("local"), {"archive.path": str(root), "archive.reports": str(root.parent / "reports")})
    traffic = make_traffic(env, seed=11, events=4_000, ads=12, start_ms=START)
    sends = [s for phase in traffic.phases for s in phase]
    loader.load(root, sends, partitions=env.topics.raw.partitions, file_rows=300)
    assert max(len(data_files(hour)) for hour in root.glob("dt=*/hr=*")) > 10
    sealed = seal_all(root, say=lambda _: None)
    assert [len(m["files"]) for m in sealed] == [1, 1] and all(data_files(h) == [h / m["files"][0]["name"]]
                                                               for h, m in zip(sorted(root.glob("dt=*/hr=*")), sealed))
    times = [json.loads(s.value)["event_time"] for s in sends]
    lo, hi = min(times) - min(times) % HOUR, max(times) - max(times) % HOUR + HOUR
    return env, traffic, lo, hi


def test_backfill_equals_the_reconciled_oracle_and_bills_identically_twice(archived, tmp_path):
    env, traffic, lo, hi = archived
    assert traffic.oracle.late_event_ids, "the traffic must have late events"
    first = backfill.run(env, lo, hi, tmp_path / "one", say=lambda _: None)
    rows = first.windows
    got = {k: {c: r[c] for c in ("window_end_ms", "campaign_id", "advertiser_id", "vertical", *MEASURES)}
           for k, r in rows.items()}
    assert got == traffic.oracle.reconciled
    assert first.rows_read == sum(len(p) for p in traffic.phases) and len(first.manifests) == 2
    assert 0 < first.job_seconds < first.seconds  # the job's own runtime, read from its log line
    second = backfill.run(env, lo, hi, tmp_path / "two", say=lambda _: None)
    day = "2026-11-28"
    a = billing.write(day, list(rows.values()), first.manifests, tmp_path / "bill-a", "archive")
    b = billing.write(day, list(second.windows.values()), second.manifests, tmp_path / "bill-b", "archive")
    assert a == b
    for name in a["files"]:
        assert (tmp_path / "bill-a" / name).read_bytes() == (tmp_path / "bill-b" / name).read_bytes()
    assert a["totals"]["billable_clicks"] == sum(r["billable_clicks"] for r in traffic.oracle.reconciled.values())


def test_a_corrupted_or_missing_archive_file_stops_the_backfill_before_it_runs(archived, tmp_path):
    env, _, lo, hi = archived
    root = tmp_path / "copy"
    shutil.copytree(backfill.archive_dir(env), root)
    copy = override(env, {"archive.path": str(root)})
    victim = data_files(next(iter(sorted(root.glob("dt=*/hr=*")))))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=f"{victim.name} does not match its checksum"):
        backfill.run(copy, lo, hi, tmp_path / "out", say=lambda _: None)
    victim.unlink()
    with pytest.raises(ArchiveError, match=f"{victim.name} is listed in _MANIFEST.json but missing"):
        backfill.run(copy, lo, hi, tmp_path / "out", say=lambda _: None)
    assert not (tmp_path / "out").exists()  # nothing was recomputed


def _group_of(marker: str) -> int | None:
    """The process group of the running process whose command line holds `marker`."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                return os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
    return None


def test_sigterm_during_a_backfill_stops_its_flink_job(archived, tmp_path):
    """A backfill (`adagg backfill`, or a reconcile that runs one) killed with SIGTERM, as a
    scheduler or `timeout` does, must not leave its job and mini-cluster JVM running."""
    env, _, lo, hi = archived
    out = tmp_path / "out"
    script = f"""
from adagg.env import load, override
from reconcile import backfill
env = override(load("local"), {{"archive.path": {str(backfill.archive_dir(env))!r}}})
backfill.run(env, {lo}, {hi}, __import__("pathlib").Path({str(out)!r}), say=lambda l: print(l, flush=True),
             progress_every_s=0.5)
"""
    cmd = subprocess.Popen([sys.executable, "-c", script], cwd=paths.REPO, stdout=subprocess.PIPE, text=True)
    try:
        for line in cmd.stdout:
            if "archived rows" in line and "stages done" in line:  # a progress line: the job is running
                break
        else:
            pytest.fail("the backfill ended before it reported progress")
        job = _group_of(str(out) + ".sql")
        assert job is not None and job != os.getpgid(cmd.pid), "the job runs in a process group of its own"
        cmd.send_signal(signal.SIGTERM)
        assert cmd.wait(timeout=60) == 128 + signal.SIGTERM
        assert "stopping the backfill job" in cmd.stdout.read()
        assert not group_alive(job), "the job or its mini-cluster JVM outlived the command"
    finally:
        if cmd.poll() is None:
            cmd.kill()
