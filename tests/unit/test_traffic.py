"""Unit tests for adagg.traffic: determinism, the contract, the on-time/late rules, and an
independent re-derivation of the oracle from the sends and the catalog."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest

from adagg import fuzz_ids
from adagg import traffic_catalog as cat
from adagg.contract import billing_key, bucket_start, validate
from adagg.traffic import BUCKET_MS, Oracle, Send, Traffic, derive_oracle, generate, key_partition

START = 1_700_000_040_000  # minute-aligned
BOUND = 5_000
MARGIN = 60_000
PARTITIONS = 3
EVENTS = 3000
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
ARGS: dict[str, Any] = dict(seed=7, events=EVENTS, ads=20, partitions=PARTITIONS, start_ms=START,
                            bound_ms=BOUND)
AGENTS = {a.user_agent: a for a in cat.USER_AGENTS}
COUNTRY_NETS = {c: ipaddress.ip_network(n) for c, n in cat.COUNTRY_NETWORKS.items()}
BLOCKED_NETS = [ipaddress.ip_network(n) for n in cat.BLOCKED_NETWORKS]
# What a billing retry copies from its original (all but event_id and event_time).
COPIED = ("schema_version", "event_type", "ad_id", "campaign_id", "advertiser_id", "user_id", "ip",
          "user_agent", "placement_id", "publisher_id", "cost_micros", "conversion_value_micros",
          "referrer_domain")
# The ordinary ids the generator makes (a fuzzed id keeps one as its prefix; a separator twin's
# user is t<number>).
PLAIN_IDS = {"event_id": r"[0-9a-f]{32}", "ad_id": r"ad-\d{4}", "campaign_id": r"camp-\d{4}",
             "advertiser_id": r"adv-\d{3}", "user_id": r"user-\d{5}|fence-(main|late|close)-\d+-\d+"}


def fuzzed_fields(e: dict[str, Any]) -> set[str]:
    return {name for name, pattern in PLAIN_IDS.items() if not re.fullmatch(pattern, e[name])}


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


def unique_on_time(t: Traffic) -> list[dict[str, Any]]:
    """Unique on-time events in order of their first on-time delivery."""
    first: dict[str, dict[str, Any]] = {}
    for s, late in classify(t):
        e = ev(s)
        if not late and e["event_id"] not in first:
            first[e["event_id"]] = e
    return list(first.values())


def labels(e: dict[str, Any]) -> dict[str, Any]:
    """The enrichment, straight from the catalog."""
    agent = AGENTS[e["user_agent"]]
    addr = ipaddress.ip_address(e["ip"])
    country = next((c for c, net in COUNTRY_NETS.items() if addr in net), "ZZ")
    blocked = any(addr in net for net in BLOCKED_NETS)
    reason = "bot_user_agent" if agent.is_bot else "blocked_ip" if blocked else None
    return {"device_type": agent.device_type, "os": agent.os, "browser": agent.browser, "country": country,
            "vertical": cat.campaign_vertical(e["campaign_id"]), "invalid_reason": reason,
            "billing_key": billing_key(e, dict(BUCKET_MS))}


def billable_ids(events: list[dict[str, Any]], labs: dict[str, dict[str, Any]]) -> set[str]:
    taken, out = set(), set()
    for e in events:
        lab = labs[e["event_id"]]
        if lab["invalid_reason"] is None and lab["billing_key"] not in taken:
            taken.add(lab["billing_key"])
            out.add(e["event_id"])
    return out


def retries_of(t: Traffic) -> dict[str, dict[str, Any]]:
    """retry event_id -> its original: a later unique event with the same content but id and time."""
    originals: dict[tuple, dict[str, Any]] = {}
    out = {}
    for phase in t.phases:
        for s in phase:
            e = ev(s)
            content = tuple(e.get(k) for k in COPIED)
            orig = originals.setdefault(content, e)
            if orig["event_id"] != e["event_id"]:
                out.setdefault(e["event_id"], orig)
    return out


@pytest.fixture(scope="module")
def derived(traffic: Traffic) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], set[str]]:
    """The test's own (unique on-time events, their labels, billable ids)."""
    events = unique_on_time(traffic)
    labs = {e["event_id"]: labels(e) for e in events}
    return events, labs, billable_ids(events, labs)


def test_deterministic(traffic: Traffic) -> None:
    again = generate(**ARGS)
    assert again.phases == traffic.phases
    assert again.oracle == traffic.oracle
    small = {**ARGS, "events": 300}
    assert generate(**small).phases != generate(**{**small, "seed": 8}).phases


def test_every_event_follows_the_contract() -> None:
    # A small run with every kind of event made common (jsonschema is too slow for the big fixture).
    t = generate(**{**ARGS, "events": 400}, duplicate_rate=0.2, retry_rate=0.3, bot_rate=0.2, blocked_ip_rate=0.2,
                 unknown_ip_rate=0.1, v2_rate=0.5, type_weights={"impression": 1, "click": 1, "conversion": 1},
                 fuzz_rate=0.5, campaign_switch_rate=0.3)
    events = {e["event_id"]: e for e in map(ev, (s for p in t.phases for s in p))}
    assert {e["schema_version"] for e in events.values()} == {1, 2}
    assert {e["event_type"] for e in events.values()} == {"impression", "click", "conversion"}
    for e in events.values():
        assert validate(e) == [], e
    # Fuzzed ids of every kind, in every id field, up to the contract's maximum lengths.
    ids = {name: [e[name] for e in events.values()] for name in fuzz_ids.ID_FIELDS}
    text = "".join(v for values in ids.values() for v in values)
    for needle in ("|", "\\", "\x1f", "'", '"', "é", "广", "🚀", "إ", "פ"):
        assert needle in text, needle
    for name, values in ids.items():
        assert max(map(len, values)) == fuzz_ids.MAX_LENGTH[name], name
        assert any(name in fuzzed_fields(e) for e in events.values()), name
    assert t.oracle.enriched  # the oracle takes them all


def test_event_shape(traffic: Traffic) -> None:
    fuzzed = switched = 0
    for phase in traffic.phases:
        for s in phase:
            e = ev(s)
            assert s.key == billing_key(e, dict(BUCKET_MS)).encode()
            assert s.value == json.dumps(e, separators=(",", ":"), sort_keys=True).encode()
            assert ("referrer_domain" in e) == (e["schema_version"] == 2)
            assert ("conversion_value_micros" in e) == (e["event_type"] == "conversion")
            lo, hi = {"impression": (500, 5000), "click": (100_000, 2_000_000), "conversion": (0, 0)}[e["event_type"]]
            assert lo <= e["cost_micros"] <= hi
            assert e["user_agent"] in AGENTS
            odd = fuzzed_fields(e)
            fuzzed += bool(odd)
            for name in odd:  # a fuzzed id keeps the ordinary one as its prefix (twin users: t<n>)
                assert re.match(PLAIN_IDS[name], e[name]) or (name == "user_id" and re.fullmatch(r"t\d+", e[name]))
            if not odd & {"ad_id", "campaign_id", "advertiser_id"}:
                # Campaign and advertiser follow the ad, but for a campaign switch.
                n = (int(e["ad_id"][3:]) - 1) // 3 + 1
                options = {n, n % cat.CAMPAIGNS + 1, (n + 3) % cat.CAMPAIGNS + 1}
                assert (e["campaign_id"], e["advertiser_id"]) in {(cat.campaign_id(m), cat.advertiser_id(m))
                                                                  for m in options}
                switched += e["campaign_id"] != cat.campaign_id(n)
    sends = sum(map(len, traffic.phases))
    assert 0.003 * sends < fuzzed < 0.03 * sends and 0.003 * sends < switched < 0.03 * sends


def test_traffic_mix(traffic: Traffic) -> None:
    st = traffic.oracle.stats
    mix = st["unique_events"] - st["fences"]
    for name, share in [("bots", 0.05), ("blocked_ips", 0.03), ("unknown_ips", 0.01), ("v2_events", 0.3),
                        ("impression_events", 0.7), ("click_events", 0.25), ("conversion_events", 0.05)]:
        assert abs(st[name] / mix - share) < 0.25 * share + 0.005, name
    enriched = traffic.oracle.enriched.values()
    assert st["invalid_events"] == sum(r["invalid_reason"] is not None for r in enriched)
    assert {r["invalid_reason"] for r in enriched} == {None, "bot_user_agent", "blocked_ip"}
    assert {r["country"] for r in enriched} == set(cat.COUNTRY_NETWORKS) | {"ZZ"}


def test_hot_ad_share(traffic: Traffic) -> None:
    events = {e["event_id"]: e for p in traffic.phases for s in p if s.partition is None for e in [ev(s)]}
    hot = sum(e["ad_id"] == "ad-0001" for e in events.values())
    assert traffic.oracle.stats["hot_ad_events"] == hot
    assert 0.27 < hot / len(events) < 0.33
    # The rest is Zipf: the second ad leads the others.
    totals: dict[str, int] = {}
    for e in events.values():
        totals[e["ad_id"]] = totals.get(e["ad_id"], 0) + 1
    assert totals["ad-0002"] == max(n for ad, n in totals.items() if ad != "ad-0001")
    assert totals["ad-0002"] > 3 * totals["ad-0011"]


def test_independent_oracle(traffic: Traffic, derived) -> None:
    events, labs, billable = derived
    final_wm = fence_ts(traffic.phases[-1]) - BOUND - 1
    o = traffic.oracle
    assert o.final_watermark_ms == final_wm
    assert o.enriched == labs

    # Final minute rows.
    minute: dict[tuple, dict[str, Any]] = {}
    for e in events:
        lab, start = labs[e["event_id"]], e["event_time"] // MINUTE * MINUTE
        if start + MINUTE - 1 > final_wm:  # Flink fires at watermark >= end - 1
            continue
        key = (start, e["ad_id"], lab["country"], lab["device_type"], e["campaign_id"], e["advertiser_id"],
               lab["vertical"])
        row = minute.setdefault(key, {
            "window_end_ms": start + MINUTE, "campaign_id": e["campaign_id"], "advertiser_id": e["advertiser_id"],
            "vertical": lab["vertical"], "impressions": 0, "clicks": 0, "conversions": 0, "invalid_events": 0,
            "billable_impressions": 0, "billable_clicks": 0, "billable_conversions": 0, "spend_micros": 0,
            "conversion_value_micros": 0})
        row[e["event_type"] + "s"] += 1
        row["invalid_events"] += lab["invalid_reason"] is not None
        if e["event_id"] in billable:
            row["billable_" + e["event_type"] + "s"] += 1
            row["spend_micros"] += e["cost_micros"]
            row["conversion_value_micros"] += e.get("conversion_value_micros", 0)
    assert o.minute == minute
    # Only the close fence stays in an open window.
    assert len(events) - sum(r["impressions"] + r["clicks"] + r["conversions"] for r in minute.values()) == PARTITIONS
    assert set(o.minute_live) - set(o.minute) == {k for k in o.minute_live if k[0] > final_wm - MINUTE}

    # Billable counts.
    for t in ("impression", "click", "conversion"):
        assert o.stats[f"billable_{t}s"] == sum(e["event_type"] == t for e in events if e["event_id"] in billable)
    assert o.stats["billing_repeats"] == sum(labs[i]["invalid_reason"] is None for i in labs) - len(billable)
    assert o.stats["billing_repeats"] > 0

    # Top-N per closed minute: scope ALL and per country.
    totals: dict[tuple[int, str], dict[str, list[int]]] = {}
    for (start, ad, country, *_), r in minute.items():
        for scope in ("ALL", country):
            t = totals.setdefault((start, scope), {}).setdefault(ad, [0, 0, 0])
            t[0], t[1], t[2] = t[0] + r["billable_clicks"], t[1] + r["clicks"], t[2] + r["impressions"]
    top = {}
    for (start, scope), per_ad in totals.items():
        ranked = sorted(per_ad.items(), key=lambda kv: (-kv[1][0], kv[0]))
        for rank, (ad, (b, c, i)) in enumerate(ranked[:100], 1):
            top[(start, scope, rank)] = {"window_end_ms": start + MINUTE, "ad_id": ad, "billable_clicks": b,
                                         "clicks": c, "impressions": i}
    assert o.top == top
    assert {scope for _, scope, _ in top} > {"ALL", "US", "ZZ"}

    # The compatibility view: clicks per ad and closed minute.
    assert sum(o.clicks.values()) == o.stats["counted_clicks"] == sum(r["clicks"] for r in minute.values())


def test_sliding_windows(traffic: Traffic) -> None:
    o = traffic.oracle
    assert o.sliding
    for (start, ad), w in o.sliding.items():
        assert w["window_end_ms"] == start + 5 * MINUTE <= o.final_watermark_ms + 1
        rows = [r for (m, a, *_), r in o.minute_live.items() if a == ad and start <= m < start + 5 * MINUTE]
        assert rows
        for c in ("impressions", "clicks", "billable_impressions", "billable_clicks", "spend_micros"):
            assert w[c] == sum(r[c] for r in rows)
    # Every closed window holding an event of the ad is there.
    expected = {(m - k * MINUTE, a) for (m, a, *_) in o.minute_live for k in range(5)
                if m - k * MINUTE + 5 * MINUTE - 1 <= o.final_watermark_ms}
    assert set(o.sliding) == expected


def test_retries(traffic: Traffic, derived) -> None:
    retries = retries_of(traffic)
    st = traffic.oracle.stats
    assert st["retries"] == len(retries) > 0.03 * EVENTS
    assert 0 < st["late_retries"] == sum(i in traffic.oracle.late_event_ids for i in retries)
    position: dict[str, tuple[int, int]] = {}  # event_id -> (phase, index) of its first send
    for p, phase in enumerate(traffic.phases):
        for i, s in enumerate(phase):
            position.setdefault(ev(s)["event_id"], (p, i))
    for rid, orig in retries.items():
        retry = ev(traffic.phases[position[rid][0]][position[rid][1]])
        assert 0 <= retry["event_time"] - orig["event_time"] <= 2000
        assert retry["event_time"] // MINUTE == orig["event_time"] // MINUTE
        assert billing_key(retry, dict(BUCKET_MS)) == billing_key(orig, dict(BUCKET_MS))
        (p, i), (p0, i0) = position[rid], position[orig["event_id"]]
        assert p == p0 and 1 <= i - i0 <= 10
        # A retry of a late event is late, of an on-time one on-time.
        assert (rid in traffic.oracle.late_event_ids) == (orig["event_id"] in traffic.oracle.late_event_ids)
    assert not derived[2] & set(retries)


def test_proportions(traffic: Traffic) -> None:
    st = traffic.oracle.stats
    all_ids = [ev(s)["event_id"] for p in traffic.phases for s in p]
    assert st["unique_events"] == len(set(all_ids)) == EVENTS + 3 * PARTITIONS + st["retries"]
    assert st["duplicates"] == len(all_ids) - len(set(all_ids))
    assert 0.025 * EVENTS < st["duplicates"] < 0.075 * EVENTS
    assert st["late_events"] == 0.02 * EVENTS + st["late_retries"]
    assert st["late_sends"] > st["late_events"]  # some late events were duplicated
    assert st["late_duplicates"] > 0
    assert 0.05 * EVENTS < st["out_of_order"] < 0.15 * EVENTS
    assert st["unclosed_events"] == PARTITIONS
    assert st["on_time_events"] + st["late_events"] == st["unique_events"]
    assert st["minute_rows"] == len(traffic.oracle.minute) and st["top_rows"] == len(traffic.oracle.top)


def test_duplicates_are_identical_and_soon(traffic: Traffic) -> None:
    dups = 0
    for phase in traffic.phases:
        first: dict[str, int] = {}
        for i, s in enumerate(phase):
            eid = ev(s)["event_id"]
            if eid in first:
                dups += 1
                assert s == phase[first[eid]]
                assert i - first[eid] <= 10
            else:
                first[eid] = i
    assert dups == traffic.oracle.stats["duplicates"]


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
    assert not late_ids & set(traffic.oracle.enriched)


def test_fences(traffic: Traffic) -> None:
    assert len(traffic.phases) == 3
    fence_keys = set()
    for name, phase in zip(["main", "late", "close"], traffic.phases):
        fence = phase[-PARTITIONS:]
        assert [s.partition for s in fence] == list(range(PARTITIONS))
        assert len({ev(s)["event_time"] for s in fence}) == 1
        assert ev(fence[0])["event_time"] == max(ev(s)["event_time"] for s in phase)
        assert all(s.partition is None for s in phase[:-PARTITIONS])
        for p, s in enumerate(fence):
            e = ev(s)
            assert e["user_id"].startswith(f"fence-{name}-{p}-") and e["event_type"] == "impression"
            # Kafka's default partitioner (the collector's too) puts the fence where it belongs.
            assert key_partition(s.key, PARTITIONS) == p
            lab = labels(e)
            assert lab["invalid_reason"] is None and lab["country"] != "ZZ"
            fence_keys.add(s.key)
    others = {s.key for phase in traffic.phases for s in phase if s.partition is None}
    assert len(fence_keys) == 3 * PARTITIONS and not fence_keys & others
    last_max = fence_ts(traffic.phases[1])
    assert fence_ts(traffic.phases[2]) == last_max + BOUND + 120_000
    assert len(traffic.phases[2]) == PARTITIONS


def test_close_day_closes_every_window() -> None:
    # Starts 5 s before midnight UTC, so the on-time events span two days.
    start = (START // DAY + 1) * DAY - 5_000
    t = generate(**{**ARGS, "events": 800, "start_ms": start}, close_day=True)
    o = t.oracle
    last_max = fence_ts(t.phases[1])
    assert o.final_watermark_ms % DAY == 0 and o.final_watermark_ms >= last_max + BOUND + 120_000
    assert fence_ts(t.phases[2]) == o.final_watermark_ms + BOUND + 1
    close_ids = {ev(s)["event_id"] for s in t.phases[2]}
    events = [e for e in unique_on_time(t) if e["event_id"] not in close_ids]
    for table, size in [(o.minute, MINUTE), (o.hour, HOUR), (o.day, DAY)]:
        assert {k[0] for k in table} == {e["event_time"] // size * size for e in events}
        assert all(r["window_end_ms"] - 1 <= o.final_watermark_ms for r in table.values())
        assert sum(r["impressions"] + r["clicks"] + r["conversions"] for r in table.values()) == len(events)
    assert len({k[0] for k in o.day}) == 2
    # Roll-ups add up: the day rows are the minute rows summed.
    for key, row in o.day.items():
        minutes = [r for k, r in o.minute.items() if k[1:] == key[1:] and k[0] // DAY * DAY == key[0]]
        assert row["spend_micros"] == sum(r["spend_micros"] for r in minutes)
        assert row["billable_clicks"] == sum(r["billable_clicks"] for r in minutes)


def test_oracle_json_round_trip(traffic: Traffic) -> None:
    text = traffic.oracle.to_json()
    back = Oracle.from_json(text)
    assert back == traffic.oracle
    assert back.to_json() == text
    doc = json.loads(text)
    assert set(doc["minute"][0]) == {
        "window_start_ms", "ad_id", "country", "device_type", "window_end_ms", "campaign_id", "advertiser_id",
        "vertical", "impressions", "clicks", "conversions", "invalid_events", "billable_impressions",
        "billable_clicks", "billable_conversions", "spend_micros", "conversion_value_micros"}
    assert set(doc["top"][0]) == {"window_start_ms", "country_scope", "ad_rank", "window_end_ms", "ad_id",
                                  "billable_clicks", "clicks", "impressions"}
    assert set(doc["enriched"][0]) == {"event_id", "device_type", "os", "browser", "country", "vertical",
                                       "invalid_reason", "billing_key"}
    rows = doc["minute"]
    assert rows == sorted(rows, key=lambda r: (r["window_start_ms"], r["ad_id"], r["country"], r["device_type"],
                                               r["campaign_id"], r["advertiser_id"], r["vertical"]))


def test_ambiguous_send_rejected(traffic: Traffic) -> None:
    # A phase-2 send just behind the fence - bound is neither clearly on-time nor clearly late.
    e = ev(traffic.phases[1][0])
    e["event_time"] = fence_ts(traffic.phases[0]) - BOUND - 1
    bad = Send(key=b"x", value=json.dumps(e).encode(), partition=None)
    phases = [traffic.phases[0], [bad] + traffic.phases[1], traffic.phases[2]]
    with pytest.raises(ValueError, match="not clearly"):
        derive_oracle(phases, BOUND, MARGIN)


def test_unknown_user_agent_rejected(traffic: Traffic) -> None:
    e = ev(traffic.phases[0][0])
    e["user_agent"] = "curl/8.0"
    phases = [[Send(key=b"x", value=json.dumps(e).encode(), partition=0)]]
    with pytest.raises(ValueError, match="user agent not in traffic_catalog"):
        derive_oracle(phases, BOUND, MARGIN)


def test_small_and_no_noise() -> None:
    t = generate(seed=1, events=1, ads=1, partitions=1, start_ms=START, bound_ms=2000,
                 duplicate_rate=0, out_of_order_rate=0, late_rate=0, retry_rate=0, bot_rate=0,
                 blocked_ip_rate=0, unknown_ip_rate=0, v2_rate=0, type_weights={"click": 1})
    assert [len(p) for p in t.phases] == [2, 1, 1]
    o = t.oracle
    assert o.late_event_ids == set()
    assert sum(o.clicks.values()) == 1  # the event; the fences are impressions
    assert sum(r["impressions"] for r in o.minute.values()) == 2  # the phase-1 and phase-2 fences
    assert o.stats["billable_clicks"] == 1 and o.stats["invalid_events"] == 0
    assert [r["ad_id"] for (_, scope, _), r in o.top.items() if scope == "ALL"] == ["ad-0001"]


@pytest.mark.parametrize("override, message", [
    ({"events": 0}, "events must be > 0"), ({"ads": 0}, "ads must be > 0"),
    ({"partitions": 0}, "partitions must be > 0"), ({"bound_ms": 1999}, "bound_ms must be >= 2000"),
    ({"duplicate_rate": 1.0}, r"duplicate_rate must be in \[0, 1\)"),
    ({"out_of_order_rate": -0.1}, "out_of_order_rate"), ({"late_rate": 1}, "late_rate"),
    ({"events_per_second": 0}, "events_per_second"), ({"late_margin_ms": 0}, "late_margin_ms"),
    ({"start_ms": -1}, "start_ms"), ({"retry_rate": 1}, "retry_rate"),
    ({"bot_rate": 1.5}, r"bot_rate must be in \[0, 1\]"), ({"hot_ad_share": -0.1}, "hot_ad_share"),
    ({"v2_rate": float("nan")}, "v2_rate"), ({"unknown_ip_rate": 2}, "unknown_ip_rate"),
    ({"blocked_ip_rate": 0.6, "unknown_ip_rate": 0.5}, "blocked_ip_rate \\+ unknown_ip_rate"),
    ({"bucket_ms": {"impression": 60_000, "click": 60_000}}, "bucket_ms must map each of"),
    ({"bucket_ms": {"impression": 60_000, "click": 0, "conversion": 1}}, "bucket_ms"),
    ({"type_weights": {"view": 1}}, "type_weights"), ({"type_weights": {"click": 0}}, "type_weights"),
])
def test_bad_arguments(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**{**ARGS, **override})


def test_runs_at_other_start_times_share_no_event_id():
    a = generate(seed=1, events=300, ads=5, partitions=2, start_ms=60_000 * 1000, bound_ms=10_000)
    b = generate(seed=1, events=300, ads=5, partitions=2, start_ms=60_000 * 2000, bound_ms=10_000)
    ids = lambda t: {ev(s)["event_id"] for phase in t.phases for s in phase}  # noqa: E731
    assert not ids(a) & ids(b)


def test_reconciled_oracle_is_the_live_one_plus_every_late_event(traffic: Traffic) -> None:
    o = traffic.oracle
    firsts: dict[str, dict] = {}
    for phase in traffic.phases:
        for send in phase:
            event = json.loads(send.value)
            firsts.setdefault(event["event_id"], event)
    late_only = [e for i, e in firsts.items() if i in o.late_event_ids]
    assert late_only, "the fixture must have late events"
    for column, event_type in (("impressions", "impression"), ("clicks", "click"), ("conversions", "conversion")):
        live = sum(r[column] for r in o.minute_live.values())
        assert sum(r[column] for r in o.reconciled.values()) == live + sum(e["event_type"] == event_type
                                                                            for e in late_only)
    # Windows the late events touch differ; every other window is the live tier's.
    touched = {(e["event_time"] // MINUTE * MINUTE, e["ad_id"]) for e in late_only}
    for key, row in o.reconciled.items():
        if (key[0], key[1]) not in touched:
            assert o.minute_live[key] == row
    assert Oracle.from_json(o.to_json()).reconciled == o.reconciled


def test_traffic_holds_separator_twins_and_campaign_switches(traffic: Traffic, derived) -> None:
    """Every exactness test (oracle against the job's outputs) covers issue 20's defects 2 and 3:
    billable events whose ids a plain '|' join of the billing key would merge, and an ad with two
    campaigns in one window, whose rows a key without the campaign would merge."""
    events, labs, billable = derived
    plain: dict[str, set[str]] = {}
    for e in events:
        if e["event_id"] in billable:
            bucket = bucket_start(e["event_time"], BUCKET_MS[e["event_type"]])
            plain.setdefault(f"{e['ad_id']}|{e['user_id']}|{e['event_type']}|{bucket}", set()).add(e["event_id"])
    assert any(len(ids) > 1 for ids in plain.values())
    assert len({lab["billing_key"] for i, lab in labs.items() if i in billable}) == len(billable)
    rows_per_old_key: dict[tuple, int] = {}
    for key in traffic.oracle.minute:
        rows_per_old_key[key[:4]] = rows_per_old_key.get(key[:4], 0) + 1
    assert any(n > 1 for n in rows_per_old_key.values())


def test_the_quality_table_counts_duplicates_repeats_and_late_deliveries(traffic: Traffic, derived) -> None:
    """The oracle of mart_quality_minute and of the late deliveries per minute, from the test's own
    classification of every send: closed minutes only (the job's window fires once), and the
    traffic has exact duplicates and billing repeats to count."""
    o = traffic.oracle
    events, labs, billable = derived
    sends = classify(traffic)
    want: dict[int, dict[str, int]] = {}

    def row(event_time: int) -> dict[str, int]:
        return want.setdefault(event_time // MINUTE * MINUTE, {
            "deliveries": 0, "unique_events": 0, "valid_events": 0, "billable_events": 0})

    for send, late in sends:
        if not late:
            row(ev(send)["event_time"])["deliveries"] += 1
    for e in events:
        r = row(e["event_time"])
        r["unique_events"] += 1
        r["valid_events"] += labs[e["event_id"]]["invalid_reason"] is None
        r["billable_events"] += e["event_id"] in billable
    expected = {start: {**r, "window_end_ms": start + MINUTE, "duplicate_deliveries": r["deliveries"] - r["unique_events"],
                        "billing_repeats": r["valid_events"] - r["billable_events"]}
                for start, r in want.items() if start + MINUTE - 1 <= o.final_watermark_ms}
    assert o.quality == expected
    assert sum(r["duplicate_deliveries"] for r in expected.values()) > 0
    assert sum(r["billing_repeats"] for r in expected.values()) > 0
    late: dict[int, int] = {}
    for send, is_late in sends:
        if is_late:
            start = ev(send)["event_time"] // MINUTE * MINUTE
            late[start] = late.get(start, 0) + 1
    assert late and o.late_minute == {start: {"late_deliveries": n} for start, n in late.items()}
    assert Oracle.from_json(o.to_json()).quality == o.quality
