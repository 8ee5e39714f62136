"""The end-to-end benchmark's arithmetic (benchmarks/end_to_end.py): probe lag percentiles with
unseen probes, the sustainable rate, the recovery after a burst, CPU per process tree, and the
generated events the collector accepts."""

from __future__ import annotations

import json
import os

from benchmarks.end_to_end import Load, Phase, cpu_seconds, lag_summary, percentile, recovery_s, sustainable

INF = float("inf")


def test_percentiles_are_nearest_rank_and_unseen_probes_are_worst():
    assert percentile([], 95) is None
    assert percentile([3.0], 50) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    summary = lag_summary([1.0] * 18 + [INF, INF])  # 10% unseen: p95 cannot be a number
    assert summary["unseen"] == 2 and summary["p50_s"] == 1.0 and summary["p95_s"] is None
    assert summary["max_s"] == 1.0


def step(rate, p95, accepted=None, unseen=0):
    return {"offered_per_s": rate, "accepted_per_s": rate if accepted is None else accepted,
            "live_lag": {"p95_s": p95, "unseen": unseen}}


def test_the_sustainable_rate_is_the_top_of_the_unbroken_passing_run():
    assert sustainable([step(1000, 1.2), step(2000, 3.9), step(4000, 7.5)], 5.0) == 2000
    # A rate that passes above a failing one does not count (noise, not capacity).
    assert sustainable([step(1000, 1.2), step(2000, 6.0), step(4000, 4.0)], 5.0) == 1000
    # Lag within the SLO but the collector did not take what was offered: not sustained.
    assert sustainable([step(1000, 1.0), step(2000, 1.0, accepted=1500)], 5.0) == 1000
    assert sustainable([step(1000, 1.0, unseen=1)], 5.0) is None


def test_recovery_is_the_start_of_the_first_streak_of_probes_within_the_slo():
    probes = [(100.0 + i, 9.0) for i in range(10)] + [(110.0 + i, 2.0) for i in range(12)]
    assert recovery_s(probes, after=100.0, slo_s=5.0) == 10.0
    # A lone good probe inside the backlog does not end it.
    probes[3] = (103.0, 1.0)
    assert recovery_s(probes, after=100.0, slo_s=5.0) == 10.0
    assert recovery_s([(100.0 + i, INF) for i in range(20)], after=100.0, slo_s=5.0) is None


def test_cpu_seconds_of_this_process_tree():
    spent = cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert cpu_seconds(os.getpid()) > spent >= 0


def test_generated_events_are_valid_and_accepted_ids_are_counted_once():
    from collector.validation import Rejection, decode  # the collector's own schema check

    load = Load("e2e1x42", seed=1, batch=10)
    lines = [load.line(1_800_000_000_000, hot=i % 2 == 0) for i in range(200)]
    events = [json.loads(line) for line in lines]
    assert [e["event_id"] for e in events] == [f"e2e1x42-{n}" for n in range(200)]
    assert sum(e["ad_id"] == "ad-0000" for e in events) >= 100  # every other one is the hot ad
    for line in lines:
        assert not isinstance(decode(line), Rejection), line
    phase = Phase("t", 1, 1)
    for line in lines[:5] + lines[:5]:
        load.mark(line, phase)
    assert phase.accepted == 5 and sum(load.accepted) == 5


def test_the_backlog_drain_rate_and_when_it_would_reach_zero():
    from benchmarks.end_to_end import drain_estimate

    lags = [(1000.0 + t, 50_000 - 400 * t) for t in range(0, 60, 2)]
    est = drain_estimate(lags)
    assert est["drain_per_s"] == 400
    assert est["zero_in_s"] == round((50_000 - 400 * 58) / 400)
    assert drain_estimate([(0.0, 10), (1.0, 20)])["zero_in_s"] is None  # growing: never
    assert drain_estimate([(0.0, 10)]) == {"drain_per_s": None, "zero_in_s": None}
