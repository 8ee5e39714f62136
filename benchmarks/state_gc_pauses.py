"""Benchmark: garbage-collection pauses of a streaming dedup whose state is on the heap, per
collector. It is why the streaming TaskManager runs on G1 and the backfill on ParallelGC
(docs/benchmarks.md#the-streaming-jobs-collector).

For each collector (--collectors), a child process runs one job on a local PyFlink mini-cluster,
with a fixed heap (--heap) and the JVM's GC log:
  datagen (--rate rows/s of 32-character random keys, for --seconds)
  -> ROW_NUMBER dedup keeping the first row per key by processing time (the job's dedup pattern;
     its state is bounded by table.exec.state.ttl = --ttl, so it grows for that long)
  -> blackhole.
Parallelism 1, no checkpoints (a snapshot of gigabytes of heap state exceeds the mini-cluster's
JobManager checkpoint storage). From the GC log it reports, per collector: the pauses, the longest,
the full collections, and the share of time the job stood still once the state had grown
(after --settle seconds).

    .venv/bin/python benchmarks/state_gc_pauses.py      # 420 s per collector, 25,000 rows/s, TTL 300 s
    .venv/bin/python benchmarks/state_gc_pauses.py --seconds 60 --ttl '30 s' --collectors G1

Needs no running stack. Prints the figures; writes reports/state_gc_pauses.json and
reports/state_gc_pauses.svg. About 15 minutes with the defaults on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths  # noqa: E402
from benchmarks.common import bar_chart, machine, say  # noqa: E402

COLLECTORS = {"ParallelGC": "-XX:+UseParallelGC", "G1": "-XX:+UseG1GC"}
PAUSE = re.compile(r"^\[([\d.]+)s\].* GC\(\d+\) Pause (\w+).* ([\d.]+)ms$")


def run_job(rate: int, seconds: int, ttl: str) -> None:
    """The child: one bounded streaming job (datagen -> dedup -> blackhole) on a mini-cluster."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("parallelism.default", "1")
    config.set("table.exec.state.ttl", ttl)
    t_env.execute_sql(f"""
        CREATE TABLE keys (event_id STRING, ad_id STRING, cost BIGINT, proc_time AS PROCTIME())
        WITH ('connector' = 'datagen', 'rows-per-second' = '{rate}', 'number-of-rows' = '{rate * seconds}',
              'fields.event_id.length' = '32', 'fields.ad_id.length' = '8')""")
    t_env.execute_sql("CREATE TABLE sink (event_id STRING, ad_id STRING, cost BIGINT) WITH ('connector' = 'blackhole')")
    t_env.execute_sql("""
        INSERT INTO sink
        SELECT event_id, ad_id, cost FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS first_seen
          FROM keys)
        WHERE first_seen = 1""").wait()


def pauses(gc_log: Path) -> list[tuple[float, str, float]]:
    """(seconds since JVM start, kind, milliseconds) of every pause in a -Xlog:gc file."""
    found = []
    for line in gc_log.read_text().splitlines():
        match = PAUSE.match(line.strip())
        if match:
            found.append((float(match[1]), match[2], float(match[3])))
    return found


def summarize(found: list[tuple[float, str, float]], settle_s: float) -> dict:
    ms = sorted(p for _, _, p in found)
    late = [(t, p) for t, _, p in found if t >= settle_s]
    span = (max(t for t, _ in late) - settle_s) if late else 0.0
    stopped = sum(p for _, p in late) / 1000
    return {"pauses": len(ms), "longest_ms": round(ms[-1]) if ms else 0,
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))]) if ms else 0,
            "full_collections": sum(1 for _, kind, _ in found if kind == "Full"),
            "stopped_s_after_settle": round(stopped, 1), "span_after_settle_s": round(span),
            "stopped_share_after_settle": round(stopped / span, 3) if span else None}


def measure(collector: str, args: argparse.Namespace, work: Path) -> dict:
    gc_log = work / f"gc-{collector}.log"
    jvm = f"-Xms{args.heap} -Xmx{args.heap} {COLLECTORS[collector]} -Xlog:gc:file={gc_log}"
    say(f"  {collector}: {args.seconds} s at {args.rate:,} rows/s, TTL {args.ttl}, heap {args.heap} ...")
    started = time.monotonic()
    child = subprocess.run([sys.executable, __file__, "--child", "--rate", str(args.rate), "--seconds",
                            str(args.seconds), "--ttl", args.ttl], cwd=paths.REPO, capture_output=True, text=True,
                           env={**os.environ, "JVM_ARGS": jvm})
    if child.returncode != 0:
        raise RuntimeError(f"the {collector} job failed (exit {child.returncode}):\n{child.stderr[-2000:]}")
    result = {"jvm_args": jvm, "run_s": round(time.monotonic() - started, 1),
              **summarize(pauses(gc_log), args.settle)}
    say(f"    {result['pauses']} pauses, longest {result['longest_ms']:,} ms, {result['full_collections']} full; "
        f"after {args.settle:.0f} s stopped {result['stopped_s_after_settle']} s of {result['span_after_settle_s']} s")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collectors", default="ParallelGC,G1", help="comma-separated: " + ",".join(COLLECTORS))
    parser.add_argument("--rate", type=int, default=25_000, help="keys per second")
    parser.add_argument("--seconds", type=int, default=420)
    parser.add_argument("--ttl", default="300 s", help="the dedup state's TTL (how long the state grows)")
    parser.add_argument("--heap", default="3g")
    parser.add_argument("--settle", type=float, default=250.0, help="seconds before the share of time stopped counts")
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_job(args.rate, args.seconds, args.ttl)
        return 0
    collectors = [c for c in args.collectors.split(",") if c]
    unknown = set(collectors) - set(COLLECTORS)
    if unknown:
        parser.error(f"unknown collector(s) {sorted(unknown)}; choose from {', '.join(COLLECTORS)}")
    say(f"state_gc_pauses: {len(collectors)} collector(s), about {args.seconds * len(collectors) / 60:.0f} min")
    with tempfile.TemporaryDirectory(prefix="adagg-gc-") as work:
        results = {c: measure(c, args, Path(work)) for c in collectors}
    report = {"benchmark": "state_gc_pauses", "machine": machine(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "parameters": {k: v for k, v in vars(args).items() if k not in ("out", "child")},
              "collectors": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "state_gc_pauses.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    bars = {c: (r["longest_ms"], r["p99_ms"]) for c, r in results.items()}
    notes = [f"{c}: stopped {r['stopped_share_after_settle']:.0%} of the time after {args.settle:.0f} s"
             for c, r in results.items() if r["stopped_share_after_settle"] is not None] + ["dashed = p99"]
    (args.out / "state_gc_pauses.svg").write_text(bar_chart(
        bars, f"Longest GC pause, dedup state on the heap ({args.rate:,} keys/s, TTL {args.ttl})", "ms", notes))
    say(f"report: {args.out / 'state_gc_pauses.json'}\nplot:   {args.out / 'state_gc_pauses.svg'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
