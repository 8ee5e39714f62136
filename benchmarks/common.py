"""Helpers shared by the benchmark scripts: machine facts, the stack lock, Kafka, SVG charts."""

from __future__ import annotations

import fcntl
import math
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from adagg import paths

LOCK_FILE = Path("/tmp/adagg-stack.lock")  # the same lock as tests/conftest.py's stack_lock


def say(*args) -> None:
    print(*args, flush=True)


# ---------------------------------------------------------------- the machine

def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), platform.processor())
    mem_kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
    java = _run(["java", "-version"]).splitlines()
    commit = _run(["git", "-C", str(paths.REPO), "rev-parse", "HEAD"])
    dirty = bool(_run(["git", "-C", str(paths.REPO), "status", "--porcelain", "--untracked-files=no"]))
    return {"cpu_model": model, "cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "java": java[0] if java else None, "git_commit": commit or None, "git_dirty": dirty}


# ---------------------------------------------------------------- lock and stack

@contextmanager
def stack_lock():
    """Hold the machine-wide stack lock (tests take it too) for the whole benchmark."""
    with open(LOCK_FILE, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for the stack lock ({LOCK_FILE}: a test tier or another benchmark is using the stack) ...")
            t0 = time.monotonic()
            fcntl.flock(fh, fcntl.LOCK_EX)
            say(f"  got the stack lock after {time.monotonic() - t0:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def kafka_up() -> bool:
    """Start Kafka (only) unless it runs; True if this call started it."""
    from adagg.setup import fetch
    from adagg.stack import Stack

    fetch(say=lambda line: say("  " + line))
    stack = Stack("local")
    running = stack.pid("kafka") is not None
    stack.up(["kafka"], say=lambda line: say(line))
    return not running



def render_job(env, changes: dict[str, str], sql_dir: Path | None = None) -> Path | None:
    """The streaming job rendered for env with dotted env keys changed (e.g. flink.parallelism=2),
    from sql_dir (a variant of sql/) if given, written to a temporary file for
    flink.submit(sql_file=...); None when nothing changes."""
    import tempfile

    import yaml

    from adagg import sql
    from adagg.env import override

    if not changes and sql_dir is None:
        return None
    script = sql.render(override(env, {k: yaml.safe_load(v) for k, v in changes.items()}), "streaming",
                        sql_dir=Path(sql_dir or sql.SQL_DIR))
    path = Path(tempfile.mkdtemp(prefix="adagg-bench-")) / "streaming.sql"
    path.write_text(script)
    return path


def env_changes(items: list[str]) -> dict[str, str]:
    """--set KEY=VALUE arguments as a dict (values parsed as YAML by render_job)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------- a job reading a backlog

# The source vertex's task metric of records read: its head operator is the Kafka source, whose
# reader counts every record it reads there (FLIP-33). numRecordsOut would count what the chain
# emits: nothing for a source chained into a sink (the blackhole).
SOURCE_RECORDS = "numRecordsIn"


def produce_backlog(env, sends, topic: str | None = None) -> dict:
    """Every send to the raw topic (or `topic`) in order, with librdkafka (kafka-python tops out
    near 5,000 sends/s); all acknowledged (acks=all) before it returns."""
    from confluent_kafka import Producer

    from collector.config import kafka_client_config

    topic = topic or env.topics.raw.name
    producer = Producer({**kafka_client_config(env), "linger.ms": 20, "batch.size": 1 << 20, "acks": "all",
                         "queue.buffering.max.messages": 1_000_000, "partitioner": "murmur2_random"})
    t0 = time.monotonic()
    for i, send in enumerate(sends):
        # No partition: by key, with the Java client's partitioner, as kafka-python would.
        where = {} if send.partition is None else {"partition": send.partition}
        while True:
            try:
                producer.produce(topic, key=send.key, value=send.value, **where)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the backlog was not fully acknowledged within 120 s")
    seconds = time.monotonic() - t0
    return {"sends": len(sends), "seconds": round(seconds, 1), "sends_per_s": round(len(sends) / seconds)}


def vertex_metrics(rest: str, job_id: str, vertex_id: str, names: list[str]) -> dict[str, dict]:
    """Metrics of a job vertex aggregated over its subtasks: name -> {"avg", "max", "sum"}."""
    import requests

    rows = requests.get(f"{rest}/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics",
                        params={"get": ",".join(names), "agg": "avg,max,sum"}, timeout=10).json()
    return {r["id"]: r for r in rows}


def source_vertex(vertices: list[dict]) -> dict:
    """The job's Kafka source vertex (the one named "Source: ...")."""
    return next(v for v in vertices if v["name"].startswith("Source:"))


def reading_window(samples: list[dict], total: int, key: str = "source_records") -> dict:
    """Records read per second over the source's reading window: between the first sample in
    which it had read something and the last in which it had not yet read all `total` records, so
    neither the job's start nor its last commit is in the rate.

    Each value counts at the sample in which it first appears: the REST API answers from a metric
    store that the JobManager refreshes at most every metrics.fetcher.update-interval (and in the
    background: the request that triggers a refresh still gets the old values), so a value seen
    again in later samples is older than those samples. Its first appearance is at most one sample
    interval after it was read, at both ends of the window alike."""
    points, last = [], None
    for s in samples:
        n = s.get(key)
        if n is not None and n != last:
            points.append((s["t"], n))
            last = n
    reading = [(t, n) for t, n in points if 0 < n < total]
    if len(reading) < 2:
        return {"records_per_s": None, "note": "fewer than two samples inside the reading window"}
    (t0, n0), (t1, n1) = reading[0], reading[-1]
    # The second half alone: a fresh JVM spends its first minutes compiling (JIT) on the same cores.
    tm, nm = reading[(len(reading) - 1) // 2]
    return {"records_per_s": round((n1 - n0) / (t1 - t0)), "seconds": round(t1 - t0, 1), "records": round(n1 - n0),
            "points": len(reading), "t0": t0, "t1": t1,
            "second_half_records_per_s": round((n1 - nm) / (t1 - tm)) if t1 > tm else None}


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until every future resolves
    for future in admin.delete_topics(names).values():
        try:
            future.result()
        except Exception as error:  # noqa: BLE001 - cleanup is best effort; say what was left
            say(f"  could not delete a topic: {error}")


def bar_chart(bars: dict[str, tuple[float, float | None]], title: str, y_label: str, notes: list[str],
              colours: dict[str, str] | None = None) -> str:
    """A bar chart as plain SVG: bars maps a label to (value, optional second value drawn as a dashed tick)."""
    colours = colours or {}
    width, height, left, top, bottom = 640, 360, 90, 50, 70
    plot_h, plot_w = height - top - bottom, width - left - 30
    top_value = max(max(v for v, _ in bars.values()), 1) * 1.1
    step = max(10 ** math.floor(math.log10(top_value / 5)), 1)
    step = next(m * step for m in (1, 2, 5, 10) if m * step * 5 >= top_value)
    ticks = math.ceil(top_value / step)
    peak = ticks * step
    bar_w = plot_w / max(len(bars), 1) * 0.55
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i in range(ticks + 1):  # y grid and labels
        value = step * i
        y = top + plot_h - plot_h * value / peak
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    parts.append(f'<text x="18" y="{top + plot_h / 2}" transform="rotate(-90 18 {top + plot_h / 2})" '
                 f'text-anchor="middle">{y_label}</text>')
    for i, (label, (value, tick)) in enumerate(bars.items()):
        cx = left + plot_w * (i + 0.5) / len(bars)
        h = plot_h * value / peak
        y = top + plot_h - h
        parts.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="{colours.get(label, "#2ca02c")}"/>')
        parts.append(f'<text x="{cx:.1f}" y="{y - 6:.1f}" text-anchor="middle">{value:,.0f}</text>')
        if tick is not None:
            my = top + plot_h - plot_h * tick / peak
            parts.append(f'<line x1="{cx - bar_w / 2:.1f}" y1="{my:.1f}" x2="{cx + bar_w / 2:.1f}" y2="{my:.1f}" '
                         f'stroke="black" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle">{" &#183; ".join(notes)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
               notes: list[str] = (), marks: list[float] = ()) -> str:
    """Lines over time as plain SVG: series maps a label to (x, y) points; marks are x positions
    drawn as thin vertical lines (faults, for example)."""
    width, height, left, top, bottom, right = 720, 360, 80, 50, 70, 150
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for pts in series.values() for p in pts]
    x_max = max((x for x, _ in points), default=1) or 1
    y_max = max((y for _, y in points), default=1) * 1.1 or 1
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    def sx(x: float) -> float:
        return left + plot_w * x / x_max

    def sy(y: float) -> float:
        return top + plot_h - plot_h * y / y_max

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{(left + plot_w / 2):.0f}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i in range(6):  # grid
        y, x = y_max * i / 5, x_max * i / 5
        parts.append(f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + plot_w}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        parts.append(f'<text x="{sx(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{x:,.0f}</text>')
    for x in marks:
        parts.append(f'<line x1="{sx(x):.1f}" y1="{top}" x2="{sx(x):.1f}" y2="{top + plot_h}" stroke="#bbbbbb" '
                     f'stroke-dasharray="3 3"/>')
    for n, (label, pts) in enumerate(series.items()):
        colour = palette[n % len(palette)]
        if pts:
            path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(f'<text x="{left + plot_w + 10}" y="{top + 16 * n + 10}" fill="{colour}">{label}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 36}" text-anchor="middle">{x_label}</text>')
    parts.append(f'<text x="16" y="{top + plot_h / 2}" transform="rotate(-90 16 {top + plot_h / 2})" '
                 f'text-anchor="middle">{y_label}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">{" &#183; ".join(notes)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
