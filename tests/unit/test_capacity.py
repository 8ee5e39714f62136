"""The sizing model (benchmarks/capacity.py): figures follow from the measured per-core rates and
per-event sizes by the rules docs/capacity.md states."""

from __future__ import annotations

from adagg.env import load
from benchmarks.capacity import _seconds, measured, model, parse_args

E2E = {"runs": [
    {"parallelism": 1, "sustainable_per_s": 1000, "steps": [], "storage": {}},
    {"parallelism": 2, "sustainable_per_s": 4000,
     "steps": [{"offered_per_s": 2000, "cores": {}},
               {"offered_per_s": 4000, "cores": {"collector": 0.1, "kafka": 0.2, "flink-taskmanager-1": 0.5,
                                                 "flink-taskmanager-2": 0.5, "pinot-server": 0.2, "pinot-broker": 0.05}}],
     "storage": {"unique_events": 1_000_000,
                 "topics": {"ad-events.raw": {"bytes_per_unique_event": 500.0},
                            "ad-events.enriched": {"bytes_per_unique_event": 400.0}},
                 "archive": {"bytes_per_unique_event": 60.0},
                 "pinot_rows": {"ad_minute": 100_000, "late_events": None}}},
]}
SOAK = {"state_bytes_per_unique_event": {"Deduplicate[11] -> Calc[12]": 38.0, "Deduplicate[16]": 13.5,
                                          "GroupAggregate[41] -> Sink": 3.5, "GlobalWindowAggregate[22]": 4.8},
        "events": {"unique": 1_000_000}}
BACKFILL = {"rows_per_s": 40_000, "machine": {"cpus": 2}}


def test_measured_rates_come_from_the_highest_parallelism_at_its_sustainable_rate():
    m = measured(E2E, SOAK, BACKFILL)
    assert m["stack_sustainable_per_s"] == 4000 and m["parallelism"] == 2
    assert m["flink_events_per_core_s"] == 4000  # 4,000 events/s on 1.0 TaskManager cores
    assert m["collector_events_per_core_s"] == 40_000
    assert m["pinot_events_per_core_s"] == round(4000 / 0.25)
    assert m["state_bytes_per_unique_event"] == 55.0  # windows hold open windows only, not TTL-bound
    assert m["pinot_rows_per_event"] == {"ad_minute": 0.1}
    assert m["backfill_events_per_core_s"] == 20_000


def test_the_plan_sizes_flink_for_the_peak_and_for_draining_a_burst_within_the_budget():
    m = measured(E2E, SOAK, BACKFILL)
    args = parse_args(["--peak", "50000", "--burst", "10", "--burst-seconds", "60", "--recovery-budget-s", "120",
                       "--utilization", "0.5"])
    plan = model(m, args, load("prod"))
    assert plan["flink"]["cores_for_peak"] == 25  # 50,000 / 4,000 / 0.5
    # backlog 500k/s x 60 s less what the peak rate carries: 27 M events in 120 s = 225,000/s more
    assert plan["flink"]["cores_for_peak_and_burst_drain"] == 138  # (50,000 + 225,000) / 4,000 / 0.5
    assert plan["kafka"]["partitions_raw"] % 12 == 0 and plan["kafka"]["partitions_raw"] >= 138
    assert plan["flink"]["unique_events_in_ttl"] == round(1e9 / 86_400 * 26 * 3600)  # prod TTL 26 h
    assert plan["archive"]["gib_per_day"] == round(1e9 * 60 / 2**30, 1)
    assert plan["archive"]["backfill_core_hours_per_day"] == round(1e9 / 20_000 / 3600, 1)


def test_durations_as_the_environment_files_write_them():
    assert _seconds("26 h") == 93_600 and _seconds("30 min") == 1800 and _seconds("5 s") == 5
