"""Unit tests for adagg.traffic: determinism, the on-time/late rules, and an independent oracle."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adagg.traffic import Oracle, Send, Traffic, derive_oracle, generate

START = 1_700_000_040_000  # minute-aligned
BOUND = 5_000
MARGIN = 60_000
PARTITIONS = 3
ARGS: dict[str, Any] = dict(seed=7, events=5000, ads=20, partitions=PARTITIONS, start_ms=START,
                            bound_ms=BOUND)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate(**ARGS)


def ev(send: Send) -> dict[str, Any]:
    return json.loads(send.value)


def fence_ts(phase: list[Send]) -> int:
    return ev(phase[-1])["event_time"]


def classify(t: Traffic) -> list[tuple[Send, bool]]:
    """(send, is_late) for every send, asserting the on-time/late rules directly."""
    out = []
    max_ts = None
    prev_fence = None
    for phase in t.phases:
        for s in phase:
            ts = ev(s)["event_time"]
            late = prev_fence is not None and ts <= prev_fence - BOUND - MARGIN
            if not late:
                assert max_ts is None or ts > max_ts - BOUND, "neither on-time nor late"
            out.append((s, late))
            max_ts = ts if max_ts is None else max(max_ts, ts)
        prev_fence = fence_ts(phase)
    return out


def test_deterministic(traffic: Traffic) -> None:
    again = generate(**ARGS)
    assert again.phases == traffic.phases
    assert again.oracle.to_json() == traffic.oracle.to_json()
    other = generate(**{**ARGS, "seed": 8})
    assert other.phases != traffic.phases
    assert other.oracle.to_json() != traffic.oracle.to_json()


def test_event_shape(traffic: Traffic) -> None:
    s = traffic.phases[0][0]
    e = ev(s)
    assert set(e) == {"schema_version", "event_id", "event_type", "event_time", "ad_id",
                      "campaign_id", "advertiser_id", "user_id"}
    assert e["schema_version"] == 1 and e["event_type"] == "click"
    assert len(e["event_id"]) == 32 and int(e["event_id"], 16) >= 0
    assert s.key == e["event_id"].encode()
    assert s.value == json.dumps(e, separators=(",", ":"), sort_keys=True).encode()
    assert e["ad_id"].startswith("ad-") and len(e["ad_id"]) == 7


def test_independent_oracle(traffic: Traffic) -> None:
    first_on_time: dict[str, dict[str, Any]] = {}
    late_ids: set[str] = set()
    for s, late in classify(traffic):
        e = ev(s)
        if late:
            late_ids.add(e["event_id"])
        elif e["event_id"] not in first_on_time:
            first_on_time[e["event_id"]] = e
    final_wm = fence_ts(traffic.phases[-1]) - BOUND - 1
    clicks: dict[tuple[str, int], int] = {}
    for e in first_on_time.values():
        start = e["event_time"] // 60_000 * 60_000
        if start + 60_000 - 1 <= final_wm:  # Flink fires at watermark >= end - 1
            clicks[(e["ad_id"], start)] = clicks.get((e["ad_id"], start), 0) + 1
    o = traffic.oracle
    assert o.final_watermark_ms == final_wm
    assert o.late_event_ids == late_ids
    assert o.clicks == clicks
    # Only the close fence stays in an open window.
    assert len(first_on_time) - sum(clicks.values()) == PARTITIONS
    assert o.stats["counted_clicks"] == sum(clicks.values())
    assert o.stats["sends"] == sum(len(p) for p in traffic.phases)


def test_proportions(traffic: Traffic) -> None:
    st = traffic.oracle.stats
    all_ids = [ev(s)["event_id"] for p in traffic.phases for s in p]
    assert st["unique_events"] == len(set(all_ids)) == 5000 + 3 * PARTITIONS
    assert st["duplicates"] == len(all_ids) - len(set(all_ids))
    assert 0.025 * 5000 < st["duplicates"] < 0.075 * 5000
    assert st["late_events"] == 100
    assert st["late_sends"] > st["late_events"]  # some late events were duplicated
    assert st["late_duplicates"] > 0
    assert 0.05 * 5000 < st["out_of_order"] < 0.15 * 5000
    # Late events are never counted, and every counted event is unique.
    assert st["counted_clicks"] == st["on_time_events"] - PARTITIONS
    assert st["on_time_events"] + st["late_events"] == st["unique_events"]


def test_duplicates_are_identical_and_soon(traffic: Traffic) -> None:
    for phase in traffic.phases:
        first: dict[bytes, int] = {}
        for i, s in enumerate(phase):
            if s.key in first:
                assert s == phase[first[s.key]]
                assert i - first[s.key] <= 10
            else:
                first[s.key] = i


def test_late_and_on_time_rules(traffic: Traffic) -> None:
    late_ids = traffic.oracle.late_event_ids
    fences = [fence_ts(p) for p in traffic.phases]
    max_ts = None
    for p, phase in enumerate(traffic.phases):
        for s in phase:
            e = ev(s)
            if e["event_id"] in late_ids:
                assert p > 0 and e["event_time"] <= fences[p - 1] - BOUND - MARGIN
            else:
                assert max_ts is None or e["event_time"] > max_ts - BOUND
            max_ts = e["event_time"] if max_ts is None else max(max_ts, e["event_time"])


def test_fences(traffic: Traffic) -> None:
    assert len(traffic.phases) == 3
    for phase in traffic.phases:
        fence = phase[-PARTITIONS:]
        assert [s.partition for s in fence] == list(range(PARTITIONS))
        assert len({ev(s)["event_time"] for s in fence}) == 1
        assert ev(fence[0])["event_time"] == max(ev(s)["event_time"] for s in phase)
        assert all(s.partition is None for s in phase[:-PARTITIONS])
    last_max = fence_ts(traffic.phases[1])
    assert fence_ts(traffic.phases[2]) >= last_max + BOUND + 120_000
    assert len(traffic.phases[2]) == PARTITIONS


def test_skewed_popularity(traffic: Traffic) -> None:
    totals: dict[str, int] = {}
    for (ad, _), n in traffic.oracle.clicks.items():
        totals[ad] = totals.get(ad, 0) + n
    assert totals["ad-0001"] == max(totals.values())
    assert totals["ad-0001"] > 3 * totals["ad-0010"]


def test_oracle_json_round_trip(traffic: Traffic) -> None:
    text = traffic.oracle.to_json()
    back = Oracle.from_json(text)
    assert back == traffic.oracle
    assert back.to_json() == text
    windows = json.loads(text)["windows"]
    assert windows[0].keys() == {"ad_id", "window_start_ms", "clicks"}


def test_ambiguous_send_rejected(traffic: Traffic) -> None:
    # A phase-2 send just behind the fence - bound is neither clearly on-time nor clearly late.
    e = ev(traffic.phases[1][0])
    e["event_time"] = fence_ts(traffic.phases[0]) - BOUND - 1
    bad = Send(key=b"x", value=json.dumps(e).encode(), partition=None)
    phases = [traffic.phases[0], [bad] + traffic.phases[1], traffic.phases[2]]
    with pytest.raises(ValueError, match="not clearly"):
        derive_oracle(phases, BOUND, MARGIN)


def test_small_and_no_noise() -> None:
    t = generate(seed=1, events=1, ads=1, partitions=1, start_ms=START, bound_ms=2000,
                 duplicate_rate=0, out_of_order_rate=0, late_rate=0)
    assert [len(p) for p in t.phases] == [2, 1, 1]
    assert t.oracle.late_event_ids == set()
    assert sum(t.oracle.clicks.values()) == 3  # the event + the phase-1 and phase-2 fences


@pytest.mark.parametrize("override", [
    {"events": 0}, {"ads": 0}, {"partitions": 0}, {"bound_ms": 1999},
    {"duplicate_rate": 1.0}, {"out_of_order_rate": -0.1}, {"late_rate": 1},
    {"events_per_second": 0}, {"late_margin_ms": 0}, {"start_ms": -1},
])
def test_bad_arguments(override: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate(**{**ARGS, **override})


def test_runs_at_other_start_times_share_no_event_id():
    a = generate(seed=1, events=300, ads=5, partitions=2, start_ms=60_000 * 1000, bound_ms=10_000)
    b = generate(seed=1, events=300, ads=5, partitions=2, start_ms=60_000 * 2000, bound_ms=10_000)
    ids = lambda t: {s.key for phase in t.phases for s in phase}  # noqa: E731
    assert not ids(a) & ids(b)
