"""The exact oracle of the streaming job, derived from the generated sends alone.

It implements the job's spec (docs of issue 3): late split by watermark, exact dedup by event_id,
enrichment, billing dedup, minute/hour/day aggregates, 5-minute sliding windows, per-minute Top-N
and the enriched-event rows. Enrichment labels come only from adagg.traffic_catalog (the ground
truth), never from the UDFs, so a UDF bug shows up as a mismatch instead of being copied here.

The on-time/late classification is the one traffic.py's generator is built around: a send is
on-time when its ts > (max event time of all earlier sends) - bound, late when
ts <= (previous phase's fence) - bound - late margin; anything else is rejected as ambiguous.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from adagg import traffic_catalog as cat
from adagg.contract import billing_key

if TYPE_CHECKING:
    from adagg.traffic import Send

WINDOW_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SLIDING_SIZE_MS = 5 * WINDOW_MS  # HOP windows: 5 minutes long, one every WINDOW_MS
TOP_N = 100
SCOPE_ALL = "ALL"
# Billing buckets per event type (the local environment's).
BUCKET_MS: Mapping[str, int] = MappingProxyType({"impression": 60_000, "click": 60_000, "conversion": 3_600_000})

# Summed columns of the minute/hour/day rows (besides window_end_ms, campaign_id, advertiser_id, vertical).
COUNT_COLUMNS = ("impressions", "clicks", "conversions", "invalid_events", "billable_impressions",
                 "billable_clicks", "billable_conversions", "spend_micros", "conversion_value_micros")
# The data-quality table's counts (mart_quality_minute), per minute.
QUALITY_COLUMNS = ("deliveries", "unique_events", "duplicate_deliveries", "valid_events", "billable_events",
                   "billing_repeats")
SLIDING_COLUMNS = ("impressions", "clicks", "billable_impressions", "billable_clicks", "spend_micros")
# event_type -> its count column.
TYPE_COLUMN = {"impression": "impressions", "click": "clicks", "conversion": "conversions"}
# Key columns of every table, in key order: each table's grain, as its Flink sink keys its
# records and Pinot keys its rows. The other columns of a JSON row are the value dict.
# An ad's campaign, advertiser and vertical are part of the grain: an ad that shows up with two
# campaigns in one window has two rows (issue 20, defect 3). They come after the first four, so
# that k[0]..k[3] stay window, ad, country and device, and they stay in the row's values too.
DESCRIPTIVE_KEY = ("campaign_id", "advertiser_id", "vertical")
AGG_KEY = ("window_start_ms", "ad_id", "country", "device_type", *DESCRIPTIVE_KEY)
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "minute": AGG_KEY, "minute_live": AGG_KEY, "hour": AGG_KEY, "day": AGG_KEY,
    "sliding": ("window_start_ms", "ad_id"),
    "top": ("window_start_ms", "country_scope", "ad_rank"),
    "enriched": ("event_id",),  # keyed by the bare event_id, not a 1-tuple
    "reconciled": AGG_KEY,
    # Sums over every source (the job's rows are per source too: verify.Output.summed_over).
    "quality": ("window_start_ms",),
    "late_minute": ("window_start_ms",),
}

AggKey = tuple[int, str, str, str, str, str, str]
Row = dict[str, Any]


@dataclass
class Oracle:
    minute: dict[AggKey, Row]  # closed minute windows (the final tier)
    minute_live: dict[AggKey, Row]  # every minute window with an on-time event (the live tier)
    hour: dict[AggKey, Row]  # closed only
    day: dict[AggKey, Row]  # closed only
    sliding: dict[tuple[int, str], Row]  # (window_start_ms, ad_id), closed only
    top: dict[tuple[int, str, int], Row]  # (window_start_ms, country_scope, ad_rank), closed minutes only
    late_event_ids: set[str]
    enriched: dict[str, Row]  # event_id -> labels, every unique on-time event
    final_watermark_ms: int
    stats: dict[str, int] = field(default_factory=dict)
    # Every minute window of every unique event, late ones included: what a batch recomputation
    # of the raw archive gives (no watermark, so nothing is late), i.e. the reconciled tier.
    reconciled: dict[AggKey, Row] = field(default_factory=dict)
    # Closed minutes: on-time deliveries, unique events, duplicates, billing repeats (QUALITY_COLUMNS).
    quality: dict[int, Row] = field(default_factory=dict)
    # Every minute with a late delivery: {"late_deliveries": n}. With quality: window completeness.
    late_minute: dict[int, Row] = field(default_factory=dict)

    @property
    def clicks(self) -> dict[tuple[str, int], int]:
        """(ad_id, window_start_ms) -> unique on-time clicks: the final minute table summed over
        country and device (so an ad's closed minute with impressions only is there with 0)."""
        out: dict[tuple[str, int], int] = {}
        for (start, ad, *_), row in self.minute.items():
            out[(ad, start)] = out.get((ad, start), 0) + row["clicks"]
        return out

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "final_watermark_ms": self.final_watermark_ms,
            "late_event_ids": sorted(self.late_event_ids),
            "stats": dict(sorted(self.stats.items())),
        }
        for name, keys in TABLE_KEYS.items():
            doc[name] = [_row_to_json(k, v, keys) for k, v in sorted(getattr(self, name).items())]
        return _dumps_one_item_a_line(doc)

    @classmethod
    def from_json(cls, text: str) -> Oracle:
        doc = json.loads(text)
        tables = {name: dict(_row_from_json(r, keys) for r in doc.get(name, [])) for name, keys in TABLE_KEYS.items()}
        return cls(**tables, late_event_ids=set(doc["late_event_ids"]),
                   final_watermark_ms=int(doc["final_watermark_ms"]),
                   stats={k: int(v) for k, v in doc["stats"].items()})


def _dumps_one_item_a_line(doc: dict[str, Any]) -> str:
    """Key-sorted JSON with one stats entry, id or row a line: diffable, and much faster than
    indent= (which drops json to its pure-Python encoder)."""
    def block(value: Any, open_: str, close: str, items: list[str]) -> str:
        return f"{open_}\n  " + ",\n  ".join(items) + f"\n {close}" if value else json.dumps(value)

    parts = []
    for name, value in sorted(doc.items()):
        if isinstance(value, list):
            text = block(value, "[", "]", [json.dumps(x, sort_keys=True) for x in value])
        elif isinstance(value, dict):
            text = block(value, "{", "}", [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
                                          for k, v in sorted(value.items())])
        else:
            text = json.dumps(value)
        parts.append(f" {json.dumps(name)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _row_to_json(key: Any, value: Row, keys: tuple[str, ...]) -> Row:
    key = key if isinstance(key, tuple) else (key,)
    return {**dict(zip(keys, key)), **value}


def _row_from_json(row: Row, keys: tuple[str, ...]) -> tuple[Any, Row]:
    key = tuple(row[k] for k in keys)
    value = {k: v for k, v in row.items() if k not in keys or k in DESCRIPTIVE_KEY}
    return (key if len(keys) > 1 else key[0]), value


# ---- enrichment (ground truth from the catalog) ----

@cache
def _agents() -> dict[str, cat.Agent]:
    return {a.user_agent: a for a in cat.USER_AGENTS}


@cache
def _networks() -> tuple[tuple[tuple[str, int, int], ...], tuple[tuple[int, int], ...]]:
    """The catalog's networks as (first, last) address integers: a range test per network."""
    def span(text: str) -> tuple[int, int]:
        net = ipaddress.ip_network(text)
        return int(net.network_address), int(net.broadcast_address)
    countries = tuple((c, *span(n)) for c, n in cat.COUNTRY_NETWORKS.items())
    return countries, tuple(span(n) for n in cat.BLOCKED_NETWORKS)


@lru_cache(maxsize=1 << 16)
def ip_labels(ip: str) -> tuple[str, bool]:
    """(country, blocked) of an ip: the country whose network holds it (else 'ZZ'), and whether a
    blocked network holds it. Dotted IPv4 is read with inet_aton (the catalog is IPv4; a fault
    test's oracle reads hundreds of thousands of addresses, and ipaddress was most of its time)."""
    countries, blocked = _networks()
    try:
        addr = int.from_bytes(socket.inet_aton(ip), "big") if ip.count(".") == 3 and ":" not in ip else None
    except OSError:
        addr = None
    if addr is None:  # anything but dotted IPv4: ipaddress decides (the catalog's networks are IPv4)
        parsed = ipaddress.ip_address(ip)
        if parsed.version != 4:
            return cat.UNKNOWN_COUNTRY, False
        addr = int(parsed)
    country = next((c for c, lo, hi in countries if lo <= addr <= hi), cat.UNKNOWN_COUNTRY)
    return country, any(lo <= addr <= hi for lo, hi in blocked)


def enrich(event: Mapping[str, Any], bucket_ms: Mapping[str, int] = BUCKET_MS) -> Row:
    """The labels the job must give one event. Raises ValueError for an agent not in the catalog
    (its labels would be a guess)."""
    agent = _agents().get(event["user_agent"])
    if agent is None:
        raise ValueError(f"event {event['event_id']}: user agent not in traffic_catalog: {event['user_agent']!r}")
    country, blocked = ip_labels(event["ip"])
    reason = cat.REASON_BOT if agent.is_bot else cat.REASON_BLOCKED_IP if blocked else None
    return {
        "device_type": agent.device_type, "os": agent.os, "browser": agent.browser,
        "country": country, "vertical": cat.campaign_vertical(event["campaign_id"]),
        "invalid_reason": reason, "billing_key": billing_key(event, bucket_ms),  # type: ignore[arg-type]
    }


# ---- replay of the sends ----

@dataclass
class _Replay:
    events: dict[str, Row]  # event_id -> event, every unique event in order of first send
    on_time: list[str]  # unique on-time event ids, in order of first on-time delivery
    late_ids: set[str]
    fence_ids: set[str]
    last_fence_ts: int
    stats: dict[str, int]
    on_time_deliveries: Counter  # minute start -> on-time deliveries (duplicates included)
    late_deliveries: Counter  # minute start -> late deliveries


def _replay(phases: Sequence[Sequence[Send]], bound_ms: int, late_margin_ms: int) -> _Replay:
    """Classify every send as on-time or late, exactly as the generator intends (see module doc)."""
    max_ts: int | None = None
    min_ts: int | None = None  # earliest event time: where the run's windows (late ones too) begin
    fence_ts: int | None = None  # fence of the previous phase
    events: dict[str, Row] = {}
    on_time: dict[str, None] = {}  # ordered set
    late_ids: set[str] = set()
    fence_ids: set[str] = set()
    stats = dict.fromkeys(["sends", "fences", "duplicates", "out_of_order", "late_sends", "late_duplicates"], 0)
    on_time_deliveries: Counter = Counter()
    late_deliveries: Counter = Counter()

    for p, phase in enumerate(phases):
        for i, send in enumerate(phase):
            ev = json.loads(send.value)
            eid, ts = ev["event_id"], ev["event_time"]
            is_on_time = max_ts is None or ts > max_ts - bound_ms
            is_late = fence_ts is not None and ts <= fence_ts - bound_ms - late_margin_ms
            if is_on_time == is_late:  # both cannot happen, but neither can
                raise ValueError(f"send {i} of phase {p} (event {eid}, ts {ts}) is not clearly "
                                 f"on-time or late (max {max_ts}, fence {fence_ts})")
            dup = eid in events
            events.setdefault(eid, ev)
            stats["sends"] += 1
            stats["duplicates"] += dup
            if send.partition is not None:
                stats["fences"] += 1
                fence_ids.add(eid)
            if is_late:
                late_ids.add(eid)
                stats["late_sends"] += 1
                stats["late_duplicates"] += dup
                late_deliveries[ts - ts % WINDOW_MS] += 1
            else:
                if not dup and max_ts is not None and ts < max_ts:
                    stats["out_of_order"] += 1
                on_time.setdefault(eid)
                on_time_deliveries[ts - ts % WINDOW_MS] += 1
            max_ts = ts if max_ts is None else max(max_ts, ts)
            min_ts = ts if min_ts is None else min(min_ts, ts)
        fence_ts = json.loads(phase[-1].value)["event_time"] if phase else fence_ts

    if fence_ts is None or min_ts is None:
        raise ValueError("no sends")
    stats["min_event_time_ms"] = min_ts
    return _Replay(events, list(on_time), late_ids, fence_ids, fence_ts, stats, on_time_deliveries, late_deliveries)


# ---- the job's outputs ----

def derive_oracle(phases: Sequence[Sequence[Send]], bound_ms: int, late_margin_ms: int,
                  bucket_ms: Mapping[str, int] = BUCKET_MS) -> Oracle:
    """Replay the sends with the on-time/late rules and compute every output of the job.

    The last `partitions` sends of every phase (those with an explicit partition) are its fence.
    Raises ValueError if a send is neither clearly on-time nor clearly late.
    """
    replay = _replay(phases, bound_ms, late_margin_ms)
    return _outputs(replay, replay.last_fence_ts - bound_ms - 1, bucket_ms)


@dataclass(frozen=True)
class Delivery:
    """One record of the raw topic, where it sits: an event, or a collector heartbeat."""
    partition: int
    offset: int
    record: Mapping[str, Any]
    received_at_ms: int | None = None  # the collector's adagg-received-at header (None: not through it)


def derive_from_deliveries(deliveries: Iterable[Delivery], partitions: int, delay_ms: int,
                           bucket_ms: Mapping[str, int] = BUCKET_MS, mix_stats: bool = True) -> Oracle:
    """Every output of the job, from what the raw topic holds, in its order: no phases, no fences.

    The job's rule (sql/views/stg_deliveries.sql): a delivery is late when its event time is at or
    below its partition's highest event time so far (heartbeats included) minus the watermark
    delay. The job's own watermark, the minimum over partitions, can add nothing to that while no
    partition is silent, which the collector's heartbeats (or a test's fences) ensure. A window is
    final once every partition's highest event time minus the delay has passed its end.
    `deliveries` must hold each partition's records in offset order (partitions may interleave).
    mix_stats=False leaves the traffic mix and billing figures out of `stats` (half the time of a
    large oracle; a check that compares outputs only does not need them).
    """
    by_partition: dict[int, list[Delivery]] = {}
    for d in deliveries:
        by_partition.setdefault(d.partition, []).append(d)
    events: dict[str, Row] = {}
    on_time: dict[str, None] = {}  # ordered set
    late_ids: set[str] = set()
    stats = dict.fromkeys(["sends", "fences", "duplicates", "out_of_order", "late_sends", "late_duplicates"], 0)
    on_time_deliveries: Counter = Counter()
    late_deliveries: Counter = Counter()
    highs: list[int] = []
    for p in range(partitions):
        high: int | None = None
        for d in sorted(by_partition.get(p, []), key=lambda d: d.offset):
            ts = d.record["event_time"]
            out_of_order = high is not None and ts < high
            high = ts if high is None else max(high, ts)
            if "heartbeat" in d.record:
                continue
            eid = d.record["event_id"]
            dup = eid in events
            events.setdefault(eid, dict(d.record))
            stats["sends"] += 1
            stats["duplicates"] += dup
            if ts <= high - delay_ms:
                late_ids.add(eid)
                stats["late_sends"] += 1
                stats["late_duplicates"] += dup
                late_deliveries[ts - ts % WINDOW_MS] += 1
            else:
                stats["out_of_order"] += out_of_order and not dup
                on_time.setdefault(eid)
                on_time_deliveries[ts - ts % WINDOW_MS] += 1
        highs.append(high if high is not None else -(1 << 62))
    if not events:
        raise ValueError("no event deliveries")
    stats["min_event_time_ms"] = min(e["event_time"] for e in events.values())
    replay = _Replay(events, list(on_time), late_ids, set(), min(highs), stats, on_time_deliveries, late_deliveries)
    return _outputs(replay, min(highs) - delay_ms - 1, bucket_ms, mix_stats)


def _outputs(replay: _Replay, final_wm: int, bucket_ms: Mapping[str, int], mix_stats: bool = True) -> Oracle:
    """Every output of the job from a replay: which events counted on time, in arrival order, and
    the final watermark (the windows it passed are final)."""
    labels = {eid: enrich(ev, bucket_ms) for eid, ev in replay.events.items()}
    on_time = [replay.events[eid] for eid in replay.on_time]
    billable = _billable(on_time, labels)

    minute_live = _aggregate(on_time, labels, billable)
    minute = _closed(minute_live, final_wm)
    oracle = Oracle(
        minute=minute,
        minute_live=minute_live,
        hour=_closed(_roll_up(minute_live, HOUR_MS), final_wm),
        day=_closed(_roll_up(minute_live, DAY_MS), final_wm),
        sliding=_sliding(minute_live, final_wm),
        top=_top(minute),
        late_event_ids=replay.late_ids,
        enriched={eid: labels[eid] for eid in replay.on_time},
        final_watermark_ms=final_wm,
    )
    everything = list(replay.events.values())  # every unique event, in order of first send
    oracle.reconciled = _aggregate(everything, labels, _billable(everything, labels))
    oracle.quality = _closed(_quality(replay, labels, billable), final_wm)
    oracle.late_minute = {start: {"late_deliveries": n} for start, n in sorted(replay.late_deliveries.items())}
    oracle.stats = _stats(replay, labels, billable, oracle) if mix_stats else dict(replay.stats)
    return oracle


def _billable(on_time: list[Row], labels: dict[str, Row]) -> set[str]:
    """First valid event per billing key, in arrival order (= send order: one key, one partition)."""
    seen: set[str] = set()
    out: set[str] = set()
    for ev in on_time:
        lab = labels[ev["event_id"]]
        if lab["invalid_reason"] is None and lab["billing_key"] not in seen:
            seen.add(lab["billing_key"])
            out.add(ev["event_id"])
    return out


def _aggregate(on_time: list[Row], labels: dict[str, Row], billable: set[str]) -> dict[AggKey, Row]:
    """Tumbling epoch-aligned minutes per (start, ad, country, device, campaign, advertiser,
    vertical): every minute with an event."""
    rows: dict[AggKey, Row] = {}
    for ev in on_time:
        lab = labels[ev["event_id"]]
        start = ev["event_time"] - ev["event_time"] % WINDOW_MS
        key = (start, ev["ad_id"], lab["country"], lab["device_type"], ev["campaign_id"], ev["advertiser_id"],
               lab["vertical"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"window_end_ms": start + WINDOW_MS, "campaign_id": ev["campaign_id"],
                               "advertiser_id": ev["advertiser_id"], "vertical": lab["vertical"],
                               **dict.fromkeys(COUNT_COLUMNS, 0)}
        column = TYPE_COLUMN[ev["event_type"]]
        row[column] += 1
        row["invalid_events"] += lab["invalid_reason"] is not None
        if ev["event_id"] in billable:
            row["billable_" + column] += 1
            row["spend_micros"] += ev["cost_micros"]
            row["conversion_value_micros"] += ev.get("conversion_value_micros", 0)
    return rows


def _quality(replay: _Replay, labels: dict[str, Row], billable: set[str]) -> dict[int, Row]:
    """mart_quality_minute summed over sources: per minute of on-time deliveries, the deliveries,
    unique events and their exact duplicates, valid events, billable events and billing repeats."""
    rows: dict[int, Row] = {}

    def row(start: int) -> Row:
        if start not in rows:
            rows[start] = {"window_end_ms": start + WINDOW_MS, **dict.fromkeys(QUALITY_COLUMNS, 0)}
        return rows[start]

    for start, n in replay.on_time_deliveries.items():
        row(start)["deliveries"] = n
    for eid in replay.on_time:
        ts = replay.events[eid]["event_time"]
        r = row(ts - ts % WINDOW_MS)
        r["unique_events"] += 1
        r["valid_events"] += labels[eid]["invalid_reason"] is None
        r["billable_events"] += eid in billable
    for r in rows.values():
        r["duplicate_deliveries"] = r["deliveries"] - r["unique_events"]
        r["billing_repeats"] = r["valid_events"] - r["billable_events"]
    return rows


def _roll_up(minute_live: dict[AggKey, Row], size_ms: int) -> dict[AggKey, Row]:
    """Epoch-aligned windows of size_ms (hour, day: multiples of a minute) as sums of minute rows."""
    rows: dict[AggKey, Row] = {}
    for (minute, *rest), m in minute_live.items():
        start = minute - minute % size_ms
        row = rows.get((start, *rest))
        if row is None:
            rows[(start, *rest)] = {**m, "window_end_ms": start + size_ms}
        else:
            for c in COUNT_COLUMNS:
                row[c] += m[c]
    return rows


def _closed(rows: dict[Any, Row], final_wm: int) -> dict[Any, Row]:
    """The windows that closed (Flink fires one once the watermark reaches window_end - 1), as
    copies, so that the final and live tables share no row."""
    return {k: dict(v) for k, v in rows.items() if v["window_end_ms"] - 1 <= final_wm}


def _sliding(minute_live: dict[AggKey, Row], final_wm: int) -> dict[tuple[int, str], Row]:
    """Closed 5-minute HOP windows per ad, as sums of the ad's minute rows (closed or not) inside."""
    per_minute: dict[tuple[int, str], Row] = {}
    for (start, ad, *_), row in minute_live.items():
        acc = per_minute.setdefault((start, ad), dict.fromkeys(SLIDING_COLUMNS, 0))
        for c in SLIDING_COLUMNS:
            acc[c] += row[c]
    out: dict[tuple[int, str], Row] = {}
    for (minute, ad), acc in per_minute.items():
        for back in range(SLIDING_SIZE_MS // WINDOW_MS):  # every window that contains this minute
            start = minute - back * WINDOW_MS
            if start + SLIDING_SIZE_MS - 1 > final_wm:
                continue
            w = out.setdefault((start, ad), {"window_end_ms": start + SLIDING_SIZE_MS,
                                             **dict.fromkeys(SLIDING_COLUMNS, 0)})
            for c in SLIDING_COLUMNS:
                w[c] += acc[c]
    return out


def _top(minute: dict[AggKey, Row]) -> dict[tuple[int, str, int], Row]:
    """Ranks 1..TOP_N per closed minute and scope ('ALL', or one country) by billable clicks, then ad_id."""
    totals: dict[tuple[int, str], dict[str, list[int]]] = {}  # (start, scope) -> ad -> [billable, clicks, impr]
    for (start, ad, country, *_), row in minute.items():
        for scope in (SCOPE_ALL, country):
            t = totals.setdefault((start, scope), {}).setdefault(ad, [0, 0, 0])
            t[0] += row["billable_clicks"]
            t[1] += row["clicks"]
            t[2] += row["impressions"]
    out: dict[tuple[int, str, int], Row] = {}
    for (start, scope), ads in totals.items():
        ranked = sorted(ads.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_N]
        for rank, (ad, (billable, clicks, impressions)) in enumerate(ranked, 1):
            out[(start, scope, rank)] = {"window_end_ms": start + WINDOW_MS, "ad_id": ad,
                                         "billable_clicks": billable, "clicks": clicks, "impressions": impressions}
    return out


# ---- stats ----

# What a billing retry copies from its original: everything but event_id and event_time.
_RETRY_COPIED = ("schema_version", "event_type", "ad_id", "campaign_id", "advertiser_id", "user_id", "ip",
                 "user_agent", "placement_id", "publisher_id", "cost_micros", "conversion_value_micros",
                 "referrer_domain")


def _stats(replay: _Replay, labels: dict[str, Row], billable: set[str], o: Oracle) -> dict[str, int]:
    st = dict(replay.stats)
    clicks = o.clicks
    closed_ids = sum(sum(r[c] for c in TYPE_COLUMN.values()) for r in o.minute.values())
    st.update(unique_events=len(replay.events), late_events=len(replay.late_ids),
              on_time_events=len(replay.on_time), unclosed_events=len(replay.on_time) - closed_ids,
              counted_clicks=sum(clicks.values()), closed_windows=len(clicks))

    # Traffic mix: over unique non-fence events (on-time and late), what the generator's rates apply to.
    mix = [ev for eid, ev in replay.events.items() if eid not in replay.fence_ids]
    hot_ad = min((ev["ad_id"] for ev in mix), default=None)  # zero-padded ids: the generator's first ad
    seen_payloads: set[tuple] = set()  # same billing key and copied fields as an earlier event: a retry
    counts = dict.fromkeys(["retries", "late_retries", "bots", "blocked_ips", "unknown_ips", "v2_events",
                            "hot_ad_events", "impression_events", "click_events", "conversion_events"], 0)
    for ev in mix:
        lab = labels[ev["event_id"]]
        payload = (lab["billing_key"], *(ev.get(k) for k in _RETRY_COPIED))
        retry = payload in seen_payloads
        seen_payloads.add(payload)
        counts["retries"] += retry
        counts["late_retries"] += retry and ev["event_id"] in replay.late_ids
        counts["bots"] += lab["invalid_reason"] == cat.REASON_BOT
        blocked = ip_labels(ev["ip"])[1]
        counts["blocked_ips"] += blocked
        counts["unknown_ips"] += lab["country"] == cat.UNKNOWN_COUNTRY and not blocked
        counts["v2_events"] += ev["schema_version"] == 2
        counts["hot_ad_events"] += ev["ad_id"] == hot_ad
        counts[ev["event_type"] + "_events"] += 1
    st.update(counts)

    # Billing: over every unique on-time event (fences included), closed windows or not.
    valid = [eid for eid in replay.on_time if labels[eid]["invalid_reason"] is None]
    st["invalid_events"] = len(replay.on_time) - len(valid)
    st["billing_repeats"] = len(valid) - len(billable)  # valid, but the billing key was taken
    for t in TYPE_COLUMN:
        st[f"billable_{t}s"] = sum(replay.events[eid]["event_type"] == t for eid in billable)
    st["spend_micros"] = sum(replay.events[eid]["cost_micros"] for eid in billable)
    for name in ("minute", "minute_live", "hour", "day", "sliding", "top"):
        st[f"{name}_rows"] = len(getattr(o, name))
    return st
