"""Benchmark: start-up time and resident memory of the local stack.

Starts the stack from stopped (data kept unless --fresh), records the time each service took to
become healthy, then the RSS of every service idle and after the demo traffic has run through it.
Prints the figures and writes reports/stack_footprint.json plus the machine it ran on.

    .venv/bin/python benchmarks/stack_footprint.py --fresh
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from adagg import flink, paths
from adagg.demo import make_traffic, next_start_ms, wait_for_oracle
from adagg.env import load
from adagg.kafka_io import ensure_topics, send_traffic
from adagg.pinot import apply
from adagg.setup import fetch
from adagg.stack import Stack


def rss(stack: Stack) -> dict[str, float]:
    return {row["service"]: row["rss_mb"] for row in stack.status()}


def machine() -> dict:
    mem_kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
    return {"cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "platform": platform.platform(),
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="wipe the stack's data first (first-start timing)")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    fetch()
    stack = Stack("local")
    stack.down()
    if args.fresh:
        shutil.rmtree(paths.data(), ignore_errors=True)
    t0 = time.monotonic()
    healthy_at = stack.up()
    startup_s = round(time.monotonic() - t0, 1)
    time.sleep(10)  # let the JVMs settle before reading memory
    idle = rss(stack)

    env = load("local")
    ensure_topics(env, say=lambda *_: None)
    apply(env, say=lambda *_: None)
    flink.cancel_all(env, say=lambda *_: None)
    flink.wait_running(env.flink.rest_url, flink.submit("local", say=lambda *_: None))
    traffic = make_traffic(env, seed=1, events=args.events, start_ms=next_start_ms(env))
    send_traffic(env, traffic, say=lambda *_: None)
    exact = wait_for_oracle(env, traffic.oracle, say=lambda *_: None) == traffic.oracle.clicks
    loaded = rss(stack)

    report = {"startup_s": startup_s, "healthy_at_s": healthy_at, "rss_idle_mb": idle,
              "rss_after_traffic_mb": loaded, "total_idle_mb": round(sum(v or 0 for v in idle.values())),
              "total_after_traffic_mb": round(sum(v or 0 for v in loaded.values())),
              "traffic_events": args.events, "pinot_matched_oracle": exact, "fresh": args.fresh,
              "machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = paths.REPO / "reports" / "stack_footprint.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"start-up (all healthy): {startup_s} s  ({'fresh data' if args.fresh else 'existing data'})")
    print(f"{'service':18} {'healthy at s':>12} {'RSS idle MB':>12} {'RSS loaded MB':>14}")
    for name in idle:
        print(f"{name:18} {healthy_at.get(name, 0):12} {idle[name] or 0:12.0f} {loaded[name] or 0:14.0f}")
    print(f"{'total':18} {'':12} {report['total_idle_mb']:12} {report['total_after_traffic_mb']:14}")
    print(f"report: {out}")


if __name__ == "__main__":
    main()
