"""Benchmark: the batch recomputation rate of a day of raw events (GUIDE §4: >= 5x the streaming rate).

1. Generates --events events whose event times span one UTC day (adagg.traffic.generate:
   duplicates, billing repeats, bots, late events...), and loads them into a raw archive in a
   temporary folder with archive/loader.py (Parquet, the streaming job's layout, sealed).
2. Runs `adagg backfill` over the day (reconcile/backfill.py: manifest check, then the shared
   SQL in Flink batch mode on a local mini-cluster, parallelism 1, thread-mode Python UDFs).
3. Rate = archived rows / the Flink job's net runtime, which is how the streaming rate it is
   compared with is counted: the full job's best events/s in reports/pipeline_throughput.json
   (benchmarks/pipeline_throughput.py, same machine). The rate over the whole command's wall time
   (JVM start and planning included) is reported beside it.

    .venv/bin/python benchmarks/backfill_rate.py                  # 1,000,000 events over a day
    .venv/bin/python benchmarks/backfill_rate.py --events 200000

Needs no running stack (no Kafka, no Pinot). Prints the figures; writes reports/backfill_rate.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths  # noqa: E402
from adagg.env import load, override  # noqa: E402
from benchmarks.common import machine, say  # noqa: E402

GOAL_RATIO = 5.0
DAY_MS = 86_400_000
DAY = 1_795_824_000_000  # 2026-11-28T00:00Z


def streaming_rate(report: Path) -> float | None:
    if not report.exists():
        return None
    return json.loads(report.read_text())["summary"]["full"]["best_events_per_s"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports")
    args = parser.parse_args(argv)

    from adagg.traffic import generate
    from archive import loader
    from archive.manifest import seal_all
    from reconcile import backfill

    with tempfile.TemporaryDirectory(prefix="adagg-backfill-bench-") as tmp:
        root = Path(tmp) / "archive"
        env = override(load("local"), {"archive.path": str(root), "archive.reports": str(Path(tmp) / "reports")})
        flink = env.flink
        say(f"generating {args.events:,} events over one day ...")
        t0 = time.monotonic()
        traffic = generate(seed=args.seed, events=args.events, ads=200, partitions=env.topics.raw.partitions,
                           start_ms=DAY, bound_ms=(flink.watermark_bound_seconds + flink.allowed_lateness_seconds) * 1000,
                           events_per_second=args.events / (DAY_MS / 1000) * 1.02,
                           bucket_ms={t: s * 1000 for t, s in env.billing.bucket_seconds.items()})
        sends = [s for phase in traffic.phases for s in phase]
        say(f"  {len(sends):,} deliveries in {time.monotonic() - t0:.0f} s; loading the archive ...")
        counts = loader.load(root, sends, partitions=env.topics.raw.partitions)
        seal_all(root, say=lambda _: None)
        day_rows = sum(n for name, n in counts.items() if name.startswith("dt=2026-11-28"))
        say(f"  {len(counts)} hour partitions sealed ({day_rows:,} rows on 2026-11-28)")
        done = backfill.run(env, DAY, DAY + DAY_MS, Path(tmp) / "out", say=say)
        windows = len(done.windows)
    stream = streaming_rate(paths.REPO / "reports" / "pipeline_throughput.json")
    ratio = round(done.job_rate / stream, 2) if stream and done.job_rate else None
    ratio_wall = round(done.rate / stream, 2) if stream else None
    report = {"benchmark": "backfill_rate", "machine": machine(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "parameters": {"events": args.events, "seed": args.seed, "parallelism": env.flink.parallelism,
                             "python_execution_mode": env.flink.python_execution_mode},
              "archived_rows": done.rows_read, "partitions": len(done.manifests), "minute_windows": windows,
              "job_seconds": done.job_seconds, "rows_per_s": done.job_rate and round(done.job_rate),
              "wall_seconds": round(done.seconds, 1), "rows_per_s_wall": round(done.rate),
              "streaming_events_per_s": stream, "ratio": ratio, "ratio_wall": ratio_wall, "goal_ratio": GOAL_RATIO,
              "meets_goal": ratio is not None and ratio >= GOAL_RATIO}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backfill_rate.json").write_text(json.dumps(report, indent=2) + "\n")
    say(f"backfill: {done.rows_read:,} rows of a day; job {done.job_seconds} s = {done.job_rate or 0:,.0f} rows/s "
        f"(wall {done.seconds:.1f} s = {done.rate:,.0f} rows/s); streaming job: {stream or 'not measured'} events/s; "
        f"ratio {ratio} (wall {ratio_wall}; goal >= {GOAL_RATIO})")
    say(f"report: {args.out / 'backfill_rate.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
