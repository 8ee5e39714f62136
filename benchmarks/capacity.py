"""The sizing model of docs/capacity.md, printed from the latest benchmark reports.

Measured inputs (reports/, each written by the benchmark named):
* end_to_end.json (benchmarks/end_to_end.py): the highest sustainable rate of the whole stack and
  the cores each component used at it, bytes on disk per event (Kafka topics, raw archive) and
  Pinot rows per event;
* soak.json (benchmarks/soak.py): keyed state per unique event (both dedups, the live tier);
* backfill_rate.json (benchmarks/backfill_rate.py): the batch recomputation rate.

Everything else is an assumption, printed as one and overridable: the targets (events a day, the
peak, the burst), a core's share per machine, Kafka's replication and retention, Pinot's bytes per
row. The model is linear in events: per-core rates measured on 2 cores, extrapolated to many.

    .venv/bin/python benchmarks/capacity.py
    .venv/bin/python benchmarks/capacity.py --events-per-day 5e9 --peak 200000

Prints the model and writes reports/capacity.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adagg.env import load  # noqa: E402
from adagg.paths import REPO  # noqa: E402
from benchmarks.common import say  # noqa: E402

REPORTS = REPO / "reports"
DAY_S = 86_400
GIB = 2**30


def read(name: str, needed_by: str) -> dict | None:
    path = REPORTS / f"{name}.json"
    if not path.exists():
        say(f"  (no reports/{name}.json: run benchmarks/{needed_by} for {name}'s figures)")
        return None
    return json.loads(path.read_text())


def measured(e2e: dict, soak: dict | None, backfill: dict | None) -> dict:
    """Per-core rates and per-event sizes from the reports (the run with the highest parallelism)."""
    run = max(e2e["runs"], key=lambda r: r["parallelism"])
    rate = run["sustainable_per_s"]
    step = next(s for s in run["steps"] if s["offered_per_s"] == rate)
    cores = step["cores"]
    flink_cores = sum(v for k, v in cores.items() if k.startswith("flink-taskmanager"))
    pinot_cores = sum(v for k, v in cores.items() if k.startswith("pinot"))
    storage = run["storage"]
    unique = storage["unique_events"] or 1
    raw = storage["topics"].get("ad-events.raw", {})
    out = {
        "stack_sustainable_per_s": rate, "parallelism": run["parallelism"],
        "cores_at_that_rate": cores,
        "flink_events_per_core_s": round(rate / flink_cores) if flink_cores else None,
        "collector_events_per_core_s": round(rate / cores["collector"]) if cores.get("collector") else None,
        "kafka_events_per_core_s": round(rate / cores["kafka"]) if cores.get("kafka") else None,
        "pinot_events_per_core_s": round(rate / pinot_cores) if pinot_cores else None,
        "raw_topic_bytes_per_event": raw.get("bytes_per_unique_event"),
        "enriched_topic_bytes_per_event": storage["topics"].get("ad-events.enriched", {}).get("bytes_per_unique_event"),
        "archive_bytes_per_event": storage["archive"]["bytes_per_unique_event"],
        "pinot_rows_per_event": {t: round(n / unique, 4) for t, n in storage["pinot_rows"].items() if n is not None},
    }
    if soak:
        # Only the dedups and the live tier keep a key per unique event for the state TTL; windows
        # hold their open windows only, whatever the TTL.
        per_event = soak.get("state_bytes_per_unique_event", {})
        ttl_bound = [v for k, v in per_event.items() if k.startswith(("Deduplicate", "GroupAggregate"))]
        out["state_bytes_per_unique_event"] = round(sum(ttl_bound), 1) if ttl_bound else None
        out["state_measured_over_unique_events"] = soak.get("events", {}).get("unique")
    if backfill:
        out["backfill_events_per_core_s"] = round(backfill["rows_per_s"] / backfill["machine"]["cpus"])
    return out


def model(m: dict, a: argparse.Namespace, env) -> dict:
    """Every figure of the plan, from measured per-core rates (m) and the assumptions (a)."""
    avg = a.events_per_day / DAY_S
    burst_rate, burst_events = a.peak * a.burst, a.peak * a.burst * a.burst_seconds
    # Flink must carry the peak, and drain a burst's backlog within the recovery budget on top of it.
    flink_rate = m["flink_events_per_core_s"]
    drain = burst_events * (1 - a.peak / burst_rate) / a.recovery_budget_s
    flink_cores_peak = math.ceil(a.peak / flink_rate / a.utilization)
    flink_cores_burst = math.ceil((a.peak + drain) / flink_rate / a.utilization)
    raw_b = m["raw_topic_bytes_per_event"]
    ingress_mb_s = a.peak * raw_b / 1e6
    partitions = max(flink_cores_burst, math.ceil(ingress_mb_s / a.partition_mb_s))
    partitions = 12 * math.ceil(partitions / 12)  # divisible by the usual parallelisms
    brokers = max(3, math.ceil(ingress_mb_s * a.replication / a.broker_mb_s))
    ttl_s = _seconds(env.flink.state_ttl)
    unique_in_ttl = avg * ttl_s
    state_b = m.get("state_bytes_per_unique_event") or 0
    rows = {t: r * a.events_per_day for t, r in m["pinot_rows_per_event"].items()}
    archive_day = a.events_per_day * m["archive_bytes_per_event"]
    backfill_core_h = a.events_per_day / m["backfill_events_per_core_s"] / 3600 if m.get("backfill_events_per_core_s") else None
    return {
        "targets": {"events_per_day": a.events_per_day, "average_per_s": round(avg), "peak_per_s": a.peak,
                    "burst_per_s": burst_rate, "burst_seconds": a.burst_seconds,
                    "recovery_budget_s": a.recovery_budget_s},
        "collector": {"cores_peak": math.ceil(a.peak / m["collector_events_per_core_s"] / a.utilization),
                      "cores_burst": math.ceil(burst_rate / m["collector_events_per_core_s"] / a.utilization)},
        "kafka": {"partitions_raw": partitions, "brokers": brokers, "ingress_mb_s_peak": round(ingress_mb_s, 1),
                  "raw_gib_per_day_replicated": round(a.events_per_day * raw_b * a.replication / GIB, 1),
                  "raw_gib_retained": round(a.events_per_day * raw_b * a.replication * a.kafka_retention_days / GIB, 1),
                  "burst_backlog_gib": round(burst_events * raw_b / GIB, 2),
                  "broker_cores_peak": math.ceil(a.peak / m["kafka_events_per_core_s"] / a.utilization)},
        "flink": {"cores_for_peak": flink_cores_peak, "cores_for_peak_and_burst_drain": flink_cores_burst,
                  "parallelism": flink_cores_burst,
                  "taskmanagers": math.ceil(flink_cores_burst / a.cores_per_taskmanager),
                  "state_ttl_s": ttl_s, "unique_events_in_ttl": round(unique_in_ttl),
                  "state_gib": round(unique_in_ttl * state_b / GIB, 1),
                  "checkpoint_gib_full": round(unique_in_ttl * state_b / GIB, 1),
                  "state_written_gib_per_day": round(a.events_per_day * state_b / GIB, 1)},
        "pinot": {"rows_per_day": {t: round(r) for t, r in rows.items()},
                  "gib_per_day": round(sum(rows.values()) * a.pinot_bytes_per_row / GIB, 1),
                  "cores_peak": math.ceil(a.peak / m["pinot_events_per_core_s"] / a.utilization)},
        "archive": {"gib_per_day": round(archive_day / GIB, 1),
                    "tib_per_year": round(archive_day * 365 / 2**40, 2),
                    "backfill_core_hours_per_day": round(backfill_core_h, 1) if backfill_core_h else None},
    }


def _seconds(text: str) -> int:
    """A Flink duration as the environment files write them ('2 h', '26 h', '30 min', '5 s')."""
    number, unit = str(text).split()
    return int(float(number) * {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events-per-day", type=float, default=1e9)
    p.add_argument("--peak", type=float, default=50_000, help="peak events/s")
    p.add_argument("--burst", type=float, default=10, help="a campaign burst, as a multiple of the peak")
    p.add_argument("--burst-seconds", type=float, default=60)
    p.add_argument("--recovery-budget-s", type=float, default=120, help="time to drain a burst's backlog")
    p.add_argument("--utilization", type=float, default=0.7, help="target CPU use of a sized component")
    p.add_argument("--cores-per-taskmanager", type=int, default=4)
    p.add_argument("--replication", type=int, default=3)
    p.add_argument("--kafka-retention-days", type=float, default=7)
    p.add_argument("--partition-mb-s", type=float, default=10, help="assumed write rate one partition sustains")
    p.add_argument("--broker-mb-s", type=float, default=100, help="assumed replicated write rate per broker")
    p.add_argument("--pinot-bytes-per-row", type=float, default=120, help="assumed (columnar, dictionary-encoded)")
    p.add_argument("--soak-report", default="soak_recovery",
                   help="the soak report whose state per unique event sizes the state (reports/<name>.json)")
    p.add_argument("--env", default="prod", help="environment whose state TTL sizes the state")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    e2e = read("end_to_end", "end_to_end.py")
    if e2e is None:
        return 1
    m = measured(e2e, read(args.soak_report, "soak.py"), read("backfill_rate", "backfill_rate.py"))
    plan = model(m, args, load(args.env))
    say("measured (per core, on the 2-core machine, whole stack running):")
    for k, v in m.items():
        say(f"  {k}: {v}")
    say("assumed: " + ", ".join(f"{k}={v}" for k, v in vars(args).items()))
    say("plan:")
    for part, figures in plan.items():
        say(f"  {part}:")
        for k, v in figures.items():
            say(f"    {k}: {v}")
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "capacity.json").write_text(json.dumps({"measured": m, "assumed": vars(args), "plan": plan},
                                                      indent=1) + "\n")
    say("wrote reports/capacity.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
