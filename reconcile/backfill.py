"""`adagg backfill`: recompute the minute windows of [from, to) from the raw archive with the
streaming job's own SQL in Flink batch mode (pyflink_jobs/streaming_job.py, on a local
mini-cluster), after checking the archive's manifests.

Progress comes from the mini-cluster's REST API: rows read by the source against the rows the
manifests promise, so the rate and the time left are real, not guessed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from adagg import paths, procstat
from adagg.sql import render
from adagg.stack import kill_groups
from archive.manifest import ArchiveError, partitions_between, verify
from pyflink_jobs.streaming_job import net_runtime_ms
from reconcile.diff import KEY


@dataclass
class Backfill:
    from_ms: int
    to_ms: int
    output: Path            # the recomputed minute windows (Parquet)
    manifests: list[dict]   # the archive manifests it read
    rows_read: int
    seconds: float          # wall time: JVM start, planning and the job
    windows: dict[tuple, dict]  # the output, read once: {reconcile.diff.KEY values: row}
    job_seconds: float | None = None  # the Flink job's net runtime, as the streaming figures count it
    cpu_seconds: float | None = None  # of the job's processes (driver and mini-cluster JVM), SessionCpu

    @property
    def rate(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    @property
    def job_rate(self) -> float | None:
        return self.rows_read / self.job_seconds if self.job_seconds else None


class SessionCpu:
    """CPU seconds (user + system) of every process in a session, from /proc: each process's last
    sampled figure, summed. What a process spends after its last sample is not counted, so sample
    often (the backfill does every half second)."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time): a reused pid is another process

    def sample(self) -> None:
        for stat in procstat.every():
            if stat.session == self.session_id:
                self.seen[(stat.pid, stat.start_ticks)] = stat.cpu_seconds

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def archive_dir(env) -> Path:
    return paths.env_dir(env.archive.path)


def reports_dir(env) -> Path:
    return paths.env_dir(env.archive.reports)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job_state(rest: str) -> tuple[int, int, int] | None:
    """(rows the source stages emitted, stages finished, stages) of the running job; None before
    it shows up. In batch mode a stage starts when its inputs are done, so stages finished is the
    progress after the source has read everything."""
    try:
        jobs = httpx.get(f"{rest}/jobs/overview", timeout=2).json()["jobs"]
        if not jobs:
            return None
        vertices = httpx.get(f"{rest}/jobs/{jobs[0]['jid']}", timeout=2).json()["vertices"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    sources = [v for v in vertices if v["name"].startswith("Source")] or vertices[:1]
    return (sum(v["metrics"].get("write-records", 0) for v in sources),
            sum(v["status"] == "FINISHED" for v in vertices), len(vertices))


def _say_progress(say, state: tuple[int, int, int], total: int, partitions: int, started: float) -> None:
    done, finished, stages = state
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed else 0
    left = f", ~{(total - done) / rate:.0f} s left to read" if rate and done < total else ""
    share = f" ({100 * done / total:.0f} %)" if total else ""
    say(f"  {elapsed:.0f} s: read {done:,} of {total:,} archived rows{share} from {partitions} partitions"
        f"{left}; {finished} of {stages} stages done")


@contextmanager
def _sigterm_as_exit():
    """While the job runs, SIGTERM (a scheduler, `timeout`, `kill`) exits through every `finally`,
    as Ctrl-C does, so the job is stopped rather than left running with its mini-cluster JVM."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def exit_(signum, frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(env, from_ms: int, to_ms: int, output: Path, say=print, progress_every_s: float = 5.0) -> Backfill:
    """Check the manifests of the range's hours, then run the batch job into `output` (replaced)."""
    if to_ms <= from_ms:
        raise ValueError("--to must be after --from")
    from adagg.setup import connector_jars

    manifests = verify(archive_dir(env), partitions_between(from_ms, to_ms))
    if not manifests:
        raise ArchiveError(f"the archive holds no sealed partition between {from_ms} and {to_ms}")
    total = sum(m["rows"] for m in manifests)
    say(f"backfill {iso(from_ms)} .. {iso(to_ms)}: {len(manifests)} sealed partitions, {total:,} archived rows "
        f"(manifests checked)")
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.mkdir()
    script = output.parent / f"{output.name}.sql"  # exactly what ran, kept beside its output
    script.write_text(render(env, "backfill", partitions=partitions_between(from_ms, to_ms), from_ms=from_ms,
                             to_ms=to_ms, output_uri=output.resolve().as_uri()))
    port = _free_port()
    cmd = [sys.executable, "-m", "pyflink_jobs.streaming_job", "--sql-file", str(script),
           "--conf", f"rest.port={port}", "--conf", "rest.address=127.0.0.1", "--conf", "rest.bind-address=127.0.0.1",
           # One JVM: its shuffles never leave the machine, so compressing them only costs CPU.
           "--conf", "taskmanager.network.batch-shuffle.compression.enabled=false"]
    for jar in connector_jars():
        cmd += ["--jar", jar]
    log = paths.logs() / "backfill.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as out, _sigterm_as_exit():
        # A session of its own: the job and the mini-cluster JVM it starts are one process group,
        # stopped together if this command is interrupted (Ctrl-C, SIGTERM) before the job ends.
        job = subprocess.Popen(cmd, cwd=paths.REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "FLINK_LOG_DIR": str(paths.logs()),
                                    "PYTHONPATH": paths.flink_python_path(),
                                    # PyFlink starts the mini-cluster JVM with these options.
                                    "JVM_ARGS": env.archive.backfill_jvm_options})
        cpu = SessionCpu(job.pid)  # the job leads its session (start_new_session)
        try:
            last = 0
            while job.poll() is None:
                cpu.sample()
                time.sleep(0.5)
                if time.monotonic() - started - last >= progress_every_s:
                    last = time.monotonic() - started
                    state = _job_state(f"http://127.0.0.1:{port}")
                    if state is not None:
                        _say_progress(say, state, total, len(manifests), started)
        finally:
            if job.poll() is None:
                say("  stopping the backfill job")
                kill_groups([job.pid], grace_s=10)
    seconds = time.monotonic() - started
    if job.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"the backfill job failed (exit {job.returncode}); log {log}:\n{tail}")
    net_ms = net_runtime_ms(log.read_text(errors="replace"))
    done = Backfill(from_ms, to_ms, output, manifests, total, seconds, read_rows(output),
                    net_ms / 1000 if net_ms is not None else None, round(cpu.seconds, 2))
    job = f"; the job itself {done.job_seconds:.1f} s, {done.job_rate:,.0f} rows/s" if done.job_seconds else ""
    say(f"  done: {total:,} rows from {len(manifests)} partitions in {seconds:.1f} s ({done.rate:,.0f} rows/s, "
        f"JVM start and planning included{job}; {done.cpu_seconds:.1f} CPU s); {len(done.windows):,} minute windows "
        f"in {output}")
    return done


def read_rows(output: Path) -> dict[tuple, dict]:
    """The recomputed minute windows: {reconcile.diff.KEY values: row}."""
    import pyarrow.dataset as ds

    files = [p for p in output.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    if not files:
        return {}
    rows = ds.dataset([str(p) for p in files], format="parquet").to_table().to_pylist()
    return {tuple(r[c] for c in KEY): r for r in rows}


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
