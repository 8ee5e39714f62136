"""Benchmark: the batch recomputation rate of a day of raw events (GUIDE §4: >= 5x the streaming rate).

1. Generates --events events whose event times span one UTC day (adagg.traffic.generate:
   duplicates, billing repeats, bots, late events...), and loads them into a raw archive in a
   temporary folder with archive/loader.py (Parquet, the streaming job's layout, sealed).
2. Runs `adagg backfill` over the day (reconcile/backfill.py: manifest check, then the shared
   SQL in Flink batch mode on a local mini-cluster, parallelism 1, thread-mode Python UDFs).
3. Rate = archived rows / the Flink job's net runtime, which is how the streaming rate it is
   compared with is counted: the full job's best records/s over its whole run in
   reports/pipeline_throughput.json (benchmarks/pipeline_throughput.py, same machine; since issue
   21 the job as deployed on the stack, parallelism 4). The rate over the whole command's wall time
   (JVM start and planning included) is reported beside it.
4. Like the streaming benchmark, it runs the job --runs times (default 3) and keeps the best and
   the median: the ratio is best to best, and median to median beside it.

    .venv/bin/python benchmarks/backfill_rate.py                  # 1,000,000 events over a day, 3 runs
    .venv/bin/python benchmarks/backfill_rate.py --events 200000 --runs 1

Needs no running stack (no Kafka, no Pinot). Prints the figures; writes reports/backfill_rate.json
and reports/backfill_rate.svg. About 5 minutes with the defaults on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths  # noqa: E402
from adagg.env import bucket_ms, late_delay_ms, load, override  # noqa: E402
from benchmarks.common import bar_chart, machine, say  # noqa: E402

GOAL_RATIO = 5.0
DAY_MS = 86_400_000
DAY = 1_795_824_000_000  # 2026-11-28T00:00Z


def streaming_rates(report: Path) -> tuple[float, float] | tuple[None, None]:
    """(best, median) records/s of the full streaming job over its whole run (its net runtime, as
    the backfill's rate is counted), from benchmarks/pipeline_throughput.py; a report written
    before issue 21 names them best/median_events_per_s."""
    if not report.exists():
        return None, None
    full = json.loads(report.read_text())["summary"]["full"]
    if "whole_run_best" in full:
        return full["whole_run_best"], full["whole_run_median"]
    return full["best_events_per_s"], full["median_events_per_s"]


def numbers(done) -> dict:
    """A run's windows and their measures (computed_at_ms aside, which differs by design)."""
    from serving.queries import MEASURES

    return {key: tuple(row[m] for m in MEASURES) for key, row in done.windows.items()}


def ratio_of(rate: float | None, stream: float | None) -> float | None:
    return round(rate / stream, 2) if rate and stream else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="backfill runs over the one archive (best and median)")
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports")
    args = parser.parse_args(argv)

    from adagg.traffic import generate
    from archive import loader
    from archive.manifest import seal_all
    from reconcile import backfill

    with tempfile.TemporaryDirectory(prefix="adagg-backfill-bench-") as tmp:
        root = Path(tmp) / "archive"
        env = override(load("local"), {"archive.path": str(root), "archive.reports": str(Path(tmp) / "reports")})
        say(f"generating {args.events:,} events over one day ...")
        t0 = time.monotonic()
        traffic = generate(seed=args.seed, events=args.events, ads=200, partitions=env.topics.raw.partitions,
                           start_ms=DAY, bound_ms=late_delay_ms(env),
                           events_per_second=args.events / (DAY_MS / 1000) * 1.02,
                           bucket_ms=bucket_ms(env))
        sends = [s for phase in traffic.phases for s in phase]
        say(f"  {len(sends):,} deliveries in {time.monotonic() - t0:.0f} s; loading the archive ...")
        counts = loader.load(root, sends, partitions=env.topics.raw.partitions)
        del traffic, sends  # the generated deliveries (gigabytes of objects) are on disk now
        seal_all(root, say=lambda _: None)
        day_rows = sum(n for name, n in counts.items() if name.startswith("dt=2026-11-28"))
        say(f"  {len(counts)} hour partitions sealed ({day_rows:,} rows on 2026-11-28)")
        runs = []
        for run in range(1, args.runs + 1):
            say(f"run {run}/{args.runs}:")
            runs.append(backfill.run(env, DAY, DAY + DAY_MS, Path(tmp) / "out", say=say))
        first = numbers(runs[0])
        if any(numbers(r) != first for r in runs[1:]):
            raise SystemExit("the runs recomputed different numbers")
        windows = len(runs[0].windows)
    timed = [r for r in runs if r.job_rate]
    done = max(timed, key=lambda r: r.job_rate) if timed else runs[0]
    median_rate = statistics.median(r.job_rate for r in timed) if timed else None
    stream, stream_median = streaming_rates(paths.REPO / "reports" / "pipeline_throughput.json")
    ratio = ratio_of(done.job_rate, stream)
    ratio_median = ratio_of(median_rate, stream_median)
    ratio_wall = ratio_of(done.rate, stream)
    report = {"benchmark": "backfill_rate", "machine": machine(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "parameters": {"events": args.events, "seed": args.seed, "parallelism": env.flink.parallelism,
                             "python_execution_mode": env.flink.python_execution_mode},
              "archived_rows": done.rows_read, "partitions": len(done.manifests), "minute_windows": windows,
              "runs": [{"job_seconds": r.job_seconds, "wall_seconds": round(r.seconds, 1)} for r in runs],
              "job_seconds": done.job_seconds, "rows_per_s": done.job_rate and round(done.job_rate),
              "median_rows_per_s": median_rate and round(median_rate),
              "wall_seconds": round(done.seconds, 1), "rows_per_s_wall": round(done.rate),
              "streaming_events_per_s": stream, "streaming_median_events_per_s": stream_median,
              "ratio": ratio, "ratio_median": ratio_median, "ratio_wall": ratio_wall, "goal_ratio": GOAL_RATIO,
              "meets_goal": ratio is not None and ratio >= GOAL_RATIO}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backfill_rate.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "backfill_rate.svg").write_text(svg_chart(report))
    say(f"backfill: {done.rows_read:,} rows of a day; best of {len(runs)} runs: job {done.job_seconds} s = "
        f"{done.job_rate or 0:,.0f} rows/s (median {median_rate or 0:,.0f}; wall {done.seconds:.1f} s = "
        f"{done.rate:,.0f} rows/s); streaming job: {stream or 'not measured'} events/s (median {stream_median}); "
        f"ratio {ratio} (median to median {ratio_median}, wall {ratio_wall}; goal >= {GOAL_RATIO})")
    say(f"report: {args.out / 'backfill_rate.json'}\nplot:   {args.out / 'backfill_rate.svg'}")
    return 0


def svg_chart(report: dict) -> str:
    bars = {"streaming job": (report["streaming_events_per_s"] or 0, report["streaming_median_events_per_s"]),
            "backfill": (report["rows_per_s"] or 0, report["median_rows_per_s"])}
    notes = [f"ratio {report['ratio']} (goal &#8805; {GOAL_RATIO})", "bar = best run, dashed = median"]
    return bar_chart(bars, f"Backfill of a day vs the streaming job ({report['archived_rows']:,} rows)",
                     "rows/s (net runtime)", notes, colours={"streaming job": "#1f77b4", "backfill": "#2ca02c"})


if __name__ == "__main__":
    raise SystemExit(main())
