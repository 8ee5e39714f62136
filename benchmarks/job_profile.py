"""Benchmark: where the streaming job's time goes, measured on the job as deployed (the local stack:
parallelism 4 on two TaskManagers, RocksDB, exactly-once Kafka sinks, thread-mode Python UDF).

A backlog of generated traffic is written to the raw topic before the job starts, so that the job
reads as fast as it can from its first second. While it catches up:

* every vertex's busy, back-pressured and idle time per second (Flink's task metrics
  busyTimeMsPerSecond, backPressuredTimeMsPerSecond, idleTimeMsPerSecond) is sampled every 2 s;
* an on-CPU flame graph of every vertex is taken (REST .../flamegraph, rest.flamegraph.enabled in
  infra/stack/flink), and each sample's time is given to the first frame on its stack, leaf first,
  that names a known cost (the Python UDF, RocksDB, JSON, Kafka, the raw archive's files, network
  and serialization, the generated SQL code): the top costs by measured share, not by guess;
* the read rate over the source's reading window: records read (the source vertex's numRecordsIn)
  between the first and the last sample in which the source was still reading, so the job's start
  and the final commit are not in it (benchmarks/common.py reading_window, shared with
  pipeline_throughput.py), and over its second half alone (a fresh job's JIT compiles for minutes);
* every TaskManager thread's CPU over that window, by kind (benchmarks/thread_cpu.py): operators,
  the JIT compiler, GC, RocksDB's background threads, Kafka producers, Netty. The flame graphs see
  task threads only.

    .venv/bin/python benchmarks/job_profile.py [--events 1000000] [--seed 1] [--no-flame] [--conf KEY=VALUE]
        [--set KEY=VALUE] [--sql-dir DIR] [--warmup RECORDS]

Writes reports/job_profile.json and reports/job_profile.collapsed (the flame graphs as collapsed
stacks, which flamegraph.pl or speedscope.app render). Takes the stack lock and starts a fresh stack (Kafka and Flink only:
Pinot and the collector would take CPU from the job being measured).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from adagg import flink  # noqa: E402
from adagg.demo import make_traffic  # noqa: E402
from adagg.env import load  # noqa: E402
from adagg.kafka_io import consumer_lag, ensure_topics  # noqa: E402
from adagg.paths import REPO  # noqa: E402
from adagg.setup import fetch  # noqa: E402
from adagg.stack import start_fresh  # noqa: E402
from benchmarks.common import (SOURCE_RECORDS, env_changes, machine, produce_backlog,  # noqa: E402
                               reading_window, render_job, say, source_vertex, stack_lock, vertex_metrics)
from benchmarks import thread_cpu  # noqa: E402

REPORTS = REPO / "reports"
SAMPLE_S = 2.0
# Cost buckets, first match wins, tried on each sampled stack from the leaf to the root.
COSTS = [
    ("Python UDF (pemja, embedded CPython)", re.compile(r"pemja|PythonCalc|EmbeddedPython|python", re.I)),
    ("RocksDB state", re.compile(r"rocksdb", re.I)),
    ("JSON (de)serialization", re.compile(r"json|jackson", re.I)),
    ("raw archive files (Parquet, compression)", re.compile(r"parquet|snappy|compress|filesystem|StreamingFileWriter", re.I)),
    ("Kafka clients", re.compile(r"kafka", re.I)),
    ("network and record serialization", re.compile(r"runtime\.io\.network|serializ|RecordWriter|DataOutput|DataInput", re.I)),
    ("SQL operators and generated code", re.compile(r"table\.runtime|generated|StreamExec|Calc|Window|Dedup|Aggregat", re.I)),
]
OTHER = "other (JVM, task runtime, mailbox)"


class Sampler(threading.Thread):
    """Every SAMPLE_S: each vertex's busy/back-pressured/idle ms per second, the records the
    source has read, and the CPU time of every TaskManager thread so far (benchmarks/thread_cpu)."""

    TIMES = ["busyTimeMsPerSecond", "backPressuredTimeMsPerSecond", "idleTimeMsPerSecond"]

    def __init__(self, rest: str, job_id: str, source_id: str):
        super().__init__(daemon=True, name="profile-sampler")
        self.rest, self.job_id, self.source_id = rest, job_id, source_id
        self.samples: list[dict] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_S):
            try:
                sample = {"t": time.time(), "vertices": {}, "threads": thread_cpu.snapshot()}
                for v in flink.job_detail(self.rest, self.job_id)["vertices"]:
                    m = vertex_metrics(self.rest, self.job_id, v["id"], self.TIMES + [SOURCE_RECORDS])
                    sample["vertices"][v["name"]] = {k: m[k].get("avg") for k in self.TIMES if k in m}
                    if v["id"] == self.source_id and SOURCE_RECORDS in m:
                        sample["source_records"] = m[SOURCE_RECORDS].get("sum")
                self.samples.append(sample)
            except requests.RequestException:
                pass


def flame_graph(rest: str, job_id: str, vertex_id: str, timeout_s: float = 40) -> dict | None:
    """The vertex's on-CPU flame graph; the first request starts the sampling, later ones return it."""
    url = f"{rest}/jobs/{job_id}/vertices/{vertex_id}/flamegraph"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        body = requests.get(url, params={"type": "on_cpu"}, timeout=30).json()
        data = body.get("data") or {}
        if data.get("children"):
            return data
        time.sleep(1)
    return None


def cost_of(stack: list[str]) -> str:
    for frame in reversed(stack):  # leaf first
        for name, pattern in COSTS:
            if pattern.search(frame):
                return name
    return OTHER


def self_times(tree: dict):
    """(stack of frame names below the root, root first; samples with that frame on top) for every
    frame of a flame graph that has samples of its own."""
    todo = [(child, []) for child in tree.get("children") or []]
    own = tree.get("value", 0) - sum(c.get("value", 0) for c in tree.get("children") or [])
    if own > 0:
        yield [], own
    while todo:
        node, stack = todo.pop()
        path = stack + [node.get("name", "")]
        children = node.get("children") or []
        own = node.get("value", 0) - sum(c.get("value", 0) for c in children)
        if own > 0:
            yield path, own
        todo.extend((c, path) for c in children)


def attribute(tree: dict) -> tuple[Counter, Counter]:
    """Samples by cost bucket and by leaf frame (self time) in one flame graph."""
    costs, leaves = Counter(), Counter()
    for path, own in self_times(tree):
        costs[cost_of(path)] += own
        leaves[path[-1] if path else tree.get("name", "")] += own
    return costs, leaves


def collapsed(tree: dict, vertex: str) -> list[str]:
    """The flame graph as collapsed stacks ("frame;frame;frame count", root first), the input of
    flamegraph.pl, speedscope and most flame graph viewers; the vertex is the bottom frame."""
    return [f"{';'.join([vertex, *(f.replace(';', ':') for f in path)])} {own}" for path, own in self_times(tree)]


def thread_cpu_over(samples: list[dict], window: dict) -> dict:
    """TaskManager cores by thread kind and by task thread between the samples that open and close
    the reading window."""
    if not window.get("t0"):
        return {}
    first = next(s for s in samples if s["t"] >= window["t0"])
    last = next(s for s in reversed(samples) if s["t"] <= window["t1"])
    seconds = last["t"] - first["t"]
    if seconds <= 0:
        return {}
    by_kind = thread_cpu.cores_by(first["threads"], last["threads"], seconds)
    tasks = {tid: v for tid, v in last["threads"].items() if thread_cpu.kind_of(v[0]).startswith("task")}
    return {"seconds": round(seconds, 1), "total": round(sum(by_kind.values()), 2), "by_kind": by_kind,
            "by_task_thread": thread_cpu.cores_by(first["threads"], tasks, seconds, key=thread_cpu.task_thread)}


def warm_up(env, job_id: str, warmup: int) -> tuple[str, int]:
    """Let the job read `warmup` records, take a savepoint, cancel the job and resume it from the
    savepoint: (the resumed job's id, about the records it has left to read)."""
    rest = env.flink.rest_url
    source = source_vertex(flink.job_detail(rest, job_id)["vertices"])
    deadline = time.time() + 1800
    while (vertex_metrics(rest, job_id, source["id"], [SOURCE_RECORDS]).get(SOURCE_RECORDS, {}).get("sum") or 0) < warmup:
        if time.time() > deadline:
            raise SystemExit(f"the warm-up did not read {warmup:,} records in 30 minutes")
        time.sleep(1)
    kept = flink.kept_plan(env, job_id)
    # A savepoint, then a cancel: stop-with-savepoint under full back-pressure was refused here
    # ("PartialFinishingNotSupportedByStateException" on the source's vertex, docs/benchmarks.md).
    savepoint = flink.trigger_savepoint(rest, job_id)
    flink.cancel_all(env, say=lambda *_: None)
    # The group's committed offsets: the savepoint's, or the last checkpoint's (then a few seconds
    # of records more than are left, which only moves the end of the wait, not the reading window).
    left = sum(consumer_lag(env).values())
    say(f"  warmed up: a savepoint after {warmup:,}+ records, about {left:,} left; resuming from it")
    job_id = flink.submit_kept("local", kept, savepoint, say=lambda line: None)
    flink.wait_running(rest, job_id)
    return job_id, left


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="original events to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a job setting over the rendered job's (repeatable), to measure a variant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment value for the rendered job (repeatable), e.g. flink.parallelism=2 "
                             "or flink.checkpoint_interval='10 s': settings the job's script SETs itself")
    parser.add_argument("--sql-dir", type=Path, default=None,
                        help="render the job from this copy of sql/ (a SQL variant) instead of the project's")
    parser.add_argument("--warmup", type=int, default=0, metavar="RECORDS",
                        help="first let the job read this many records, take a savepoint and resume the job "
                             "from it: the measured job then runs with the state it has built, on TaskManagers "
                             "that have compiled Flink's runtime (its own classes compile again)")
    parser.add_argument("--report", default="job_profile", help="reports/<report>.json and .collapsed")
    parser.add_argument("--no-flame", action="store_true",
                        help="no flame graphs: their thread sampling takes CPU from the read rate measured")
    args = parser.parse_args()

    env = load("local")
    rest = env.flink.rest_url
    with stack_lock():
        fetch(say=lambda line: say("  " + line))
        say("[1/4] a fresh stack: Kafka and Flink ...")
        start_fresh(["kafka", "flink"], say=lambda line: None)
        ensure_topics(env, say=lambda *_: None)

        say(f"[2/4] a backlog of {args.events:,} events in {env.topics.raw.name} ...")
        traffic = make_traffic(env, seed=args.seed, events=args.events, ads=100)
        sends = [s for phase in traffic.phases for s in phase]
        produced = produce_backlog(env, sends)
        records = len(sends)
        del traffic, sends
        say(f"  {records:,} records in {produced['seconds']} s")

        say("[3/4] the job reads it: task times every 2 s, a flame graph of every vertex ...")
        job_id = flink.submit("local", say=lambda line: None, conf=args.conf,
                              sql_file=render_job(env, env_changes(args.set), args.sql_dir))
        flink.wait_running(rest, job_id)
        if args.warmup:
            job_id, records = warm_up(env, job_id, args.warmup)
        graph = flink.job_detail(rest, job_id)["vertices"]
        source = source_vertex(graph)
        sampler = Sampler(rest, job_id, source["id"])
        sampler.start()
        time.sleep(10)  # past deployment and the first records
        # One vertex at a time (the JobManager samples one request after the other, ~10 s each),
        # the busiest first, while the source still reads.
        first = sampler.samples[-1]["vertices"] if sampler.samples else {}
        flames = {}
        busiest = sorted(graph, key=lambda v: -(first.get(v["name"], {}).get("busyTimeMsPerSecond") or 0))
        for v in [] if args.no_flame else busiest:
            if (sampler.samples[-1].get("source_records") or 0) >= records:
                break
            flames[v["name"]] = flame_graph(rest, job_id, v["id"])
        deadline, seen, since = time.time() + 1800, -1, time.time()
        while time.time() < deadline and time.time() - since < 30:  # read all, or nothing new for 30 s
            out = (sampler.samples[-1] if sampler.samples else {}).get("source_records") or 0
            if out >= records:
                break
            if out != seen:
                seen, since = out, time.time()
            time.sleep(SAMPLE_S)
        time.sleep(2 * SAMPLE_S)
        sampler.halt.set()
        sampler.join()
        flink.cancel_all(env, say=lambda *_: None)

    say("[4/4] report")
    window = reading_window(sampler.samples, records)
    busy = {}
    for name in (v["name"] for v in graph):
        rows = [s["vertices"][name] for s in sampler.samples if name in s["vertices"]
                and 0 < (s.get("source_records") or 0) < records]
        busy[name] = {k: round(statistics.mean(r[k] for r in rows if r.get(k) is not None), 1)
                      for k in Sampler.TIMES if any(r.get(k) is not None for r in rows)}
    cpu = thread_cpu_over(sampler.samples, window)
    costs, leaves = Counter(), Counter()
    for tree in filter(None, flames.values()):
        c, leaf = attribute(tree)
        costs.update(c)
        leaves.update(leaf)
    total = sum(costs.values()) or 1
    report = {
        "benchmark": "job_profile", "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {**vars(args), "sql_dir": str(args.sql_dir or ""), "parallelism": env_changes(args.set).get("flink.parallelism", env.flink.parallelism), "records": records},
        "produce": produced, "reading_window": window,
        "taskmanager_cores": cpu,
        "vertices_by_busy_ms_per_s": dict(sorted(busy.items(), key=lambda kv: -kv[1].get("busyTimeMsPerSecond", 0))),
        "flame_graph_samples": total,
        "vertices_with_a_flame_graph": sorted(n for n, t in flames.items() if t),
        "costs_by_share": {k: round(v / total, 3) for k, v in costs.most_common()},
        "top_leaf_frames": {k: round(v / total, 3) for k, v in leaves.most_common(25)},
    }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{args.report}.json").write_text(json.dumps(report, indent=1) + "\n")
    stacks = [line for name, tree in flames.items() if tree for line in collapsed(tree, name.split(" -> ")[0])]
    (REPORTS / f"{args.report}.collapsed").write_text("\n".join(stacks) + "\n")
    say(f"  read rate over the reading window: {window.get('records_per_s')} records/s "
        f"({window.get('records')} records in {window.get('seconds')} s)")
    say(f"  second half of the window alone: {window.get('second_half_records_per_s')} records/s")
    if cpu:
        say(f"  TaskManager cores over the reading window ({cpu['total']} in all), by thread kind:")
        for kind, cores in cpu["by_kind"].items():
            say(f"    {cores:5.2f}  {kind}")
        say("  task threads, busiest first (cores):")
        for name, cores in list(cpu["by_task_thread"].items())[:8]:
            say(f"    {cores:5.2f}  {name}")
    say("  vertices by busy ms/s (mean over the reading window):")
    for name, b in list(report["vertices_by_busy_ms_per_s"].items())[:8]:
        say(f"    {b.get('busyTimeMsPerSecond', 0):6.0f} busy {b.get('backPressuredTimeMsPerSecond', 0):6.0f} "
            f"back-pressured  {name[:90]}")
    say(f"  on-CPU samples by cost ({total:,} samples over {len(report['vertices_with_a_flame_graph'])} vertices):")
    for name, share in report["costs_by_share"].items():
        say(f"    {100 * share:5.1f}%  {name}")
    say(f"  wrote reports/{args.report}.json and reports/{args.report}.collapsed (collapsed stacks: any flame graph viewer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
