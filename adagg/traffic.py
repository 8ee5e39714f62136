"""Deterministic ad-event traffic for the raw Kafka topic, plus the exact oracle of the job's output.

Events are full contract events (v1 or v2): impressions, clicks and conversions with bot agents,
blocked and unknown IPs, exact duplicates (same event_id) and billing retries (new event_id, same
billing key). A small seeded share has fuzzed ids (adagg/fuzz_ids.py: the billing key's separator,
backslashes, CHR(31), quotes, non-ASCII text, maximum lengths), among them pairs of valid events
whose ids a plain '|' join would give one billing key; another small share shows an ad with a
second campaign and advertiser (a campaign switch), so that an ad has two rows in a window.
The Kafka key of every send is its billing key, as the collector would key it.
The oracle (adagg.oracle, re-exported here) computes every output of the streaming job from the sends.

The job splits late rows by watermark (max event time - bound - 1 ms, min over partitions) before
any dedup. Watermark timing in Flink is not deterministic, so the traffic is built so that every
send is unambiguously on-time or late whatever the timing:

* on-time: ts > (max event time of all earlier sends) - bound_ms. No partition's watermark can
  have passed it, since each is at most that max - bound - 1.
* late: in a later phase, ts <= (previous fence ts) - bound_ms - late_margin_ms. The sender pauses
  between phases, and the fence put one event at fence ts into every partition, so by then the
  watermark is at least fence ts - bound - 1.

Phases: main (timeline + out-of-order + duplicates + retries), late (timeline continues,
interleaved with late events), close (one far-future fence that closes every earlier window).
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kafka.partitioner.default import murmur2

from adagg import fuzz_ids
from adagg import traffic_catalog as cat
from adagg.contract import EVENT_TYPES, billing_key, bucket_start
from adagg.oracle import BUCKET_MS, DAY_MS, WINDOW_MS, Oracle, derive_oracle, enrich

__all__ = ["BUCKET_MS", "DAY_MS", "TYPE_WEIGHTS", "WINDOW_MS", "Oracle", "Send", "Traffic",
           "derive_oracle", "encode_event", "enrich", "generate", "key_partition"]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record: murmur2 of the key, as Java
    clients, kafka-python and the collector's producer (murmur2_random) pick it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


TYPE_WEIGHTS: Mapping[str, float] = MappingProxyType({"impression": 0.70, "click": 0.25, "conversion": 0.05})
# Share of the on-time (non-fence) events that goes into the main phase; the rest goes to the late phase.
_MAIN_FRACTION = 0.8
# Late events lie this far before (previous fence - bound): at least max(margin, 2 min), up to 8 min more.
_LATE_MIN_OFFSET_MS = 120_000
_LATE_SPREAD_MS = 480_000
# A duplicate or retry is sent after 1.._DUP_MAX_DELAY further sends.
_DUP_MAX_DELAY = 4
# A retry happens up to this long after its original (and always in its minute and billing bucket).
_RETRY_MAX_DELAY_MS = 2000
# The close fence is this far past (last max + bound), so every window before it closes.
_CLOSE_EXTRA_MS = 120_000
# A pool small enough that a user sometimes repeats on an ad within a bucket (natural billing repeats).
_USERS = 20_000
_PLACEMENTS = 20
_PUBLISHERS = 10
_REFERRER_DOMAINS = ("news.example.com", "sports.example.net", "recipes.example.org",
                     "travel.example.com", "games.example.net")
_COST_MICROS = {"impression": (500, 5000), "click": (100_000, 2_000_000), "conversion": (0, 0)}
_CONVERSION_VALUE_MICROS = (1_000_000, 100_000_000)
# Of the fuzzed events with room for two, the share sent as separator twins (fuzz_ids.separator_twins).
_TWIN_SHARE = 0.25


@dataclass(frozen=True)
class Send:
    key: bytes  # Kafka message key = the event's billing key, utf-8
    value: bytes  # compact, key-sorted JSON
    partition: int | None  # explicit partition for fence events, else None (partitioned by key)


@dataclass
class Traffic:
    phases: list[list[Send]]
    oracle: Oracle


@dataclass(frozen=True)
class Config:
    seed: int
    ads: int
    partitions: int
    start_ms: int
    bound_ms: int
    events_per_second: float
    duplicate_rate: float
    out_of_order_rate: float
    bucket_ms: Mapping[str, int]
    type_weights: Mapping[str, float]
    hot_ad_share: float
    retry_rate: float
    bot_rate: float
    blocked_ip_rate: float
    unknown_ip_rate: float
    v2_rate: float
    fuzz_rate: float
    campaign_switch_rate: float


def encode_event(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def generate(
    *,
    seed: int,
    events: int,
    ads: int,
    partitions: int,
    start_ms: int,
    bound_ms: int,
    events_per_second: float = 50.0,
    duplicate_rate: float = 0.05,
    out_of_order_rate: float = 0.1,
    late_rate: float = 0.02,
    late_margin_ms: int = 60_000,
    bucket_ms: Mapping[str, int] = BUCKET_MS,
    type_weights: Mapping[str, float] = TYPE_WEIGHTS,
    hot_ad_share: float = 0.3,
    retry_rate: float = 0.05,
    bot_rate: float = 0.05,
    blocked_ip_rate: float = 0.03,
    unknown_ip_rate: float = 0.01,
    v2_rate: float = 0.3,
    fuzz_rate: float = 0.01,
    campaign_switch_rate: float = 0.01,
    close_day: bool = False,
) -> Traffic:
    """Build three phases of sends and their oracle.

    `events` counts original non-fence events (on-time + late, separator twins included); fences
    (one per partition per phase), duplicate re-sends and billing retries come on top. fuzz_rate
    is the share of events with fuzzed ids, campaign_switch_rate the share whose ad shows up with
    another campaign (cat.switched_campaign). With close_day the close fence goes
    past the next UTC day boundary, so that every hour and day window closes too. Raises ValueError
    on bad arguments, or if any send it built is not clearly on-time or clearly late.
    """
    cfg = Config(seed, ads, partitions, start_ms, bound_ms, events_per_second, duplicate_rate,
                  out_of_order_rate, dict(bucket_ms), dict(type_weights), hot_ad_share, retry_rate,
                  bot_rate, blocked_ip_rate, unknown_ip_rate, v2_rate, fuzz_rate, campaign_switch_rate)
    _validate(cfg, events, late_rate, late_margin_ms)
    gen = Generator(cfg)

    late_count = round(events * late_rate)
    main_count = round((events - late_count) * _MAIN_FRACTION)
    late_phase_on_time = events - late_count - main_count

    # Phase 1: main.
    made = 0
    while made < main_count:
        made += gen.on_time_event(room=main_count - made)
    gen.end_phase("main")
    fence1 = gen.max_ts

    # Phase 2: the timeline goes on, with late events shuffled in.
    gen.late_limit = fence1 - bound_ms - late_margin_ms
    late_hi = fence1 - bound_ms - max(late_margin_ms, _LATE_MIN_OFFSET_MS)
    kinds = [False] * late_phase_on_time + [True] * late_count
    gen.rng.shuffle(kinds)
    for is_late in kinds:
        if is_late:
            gen.late_event(max(0, gen.rng.randint(late_hi - _LATE_SPREAD_MS, late_hi)))
        else:
            gen.on_time_event()
    gen.end_phase("late")

    # Phase 3: close. Only the fence, far enough ahead to close every window of phases 1-2.
    gen.max_ts = _close_fence_ts(gen.max_ts, bound_ms, close_day)
    gen.end_phase("close")

    return Traffic(phases=gen.phases, oracle=derive_oracle(gen.phases, bound_ms, late_margin_ms, cfg.bucket_ms))


def _close_fence_ts(last_max: int, bound_ms: int, close_day: bool) -> int:
    ts = last_max + bound_ms + _CLOSE_EXTRA_MS
    if close_day:
        # Final watermark (fence - bound - 1) = the next day boundary: every day window before it closes.
        ts = -(-ts // DAY_MS) * DAY_MS + bound_ms + 1
    return ts


def _validate(cfg: Config, events: int, late_rate: float, late_margin_ms: int) -> None:
    for name, v in [("events", events), ("ads", cfg.ads), ("partitions", cfg.partitions)]:
        if v <= 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if cfg.start_ms < 0:
        raise ValueError(f"start_ms must be >= 0, got {cfg.start_ms}")
    if cfg.bound_ms < 2000:
        raise ValueError(f"bound_ms must be >= 2000, got {cfg.bound_ms}")
    if not cfg.events_per_second > 0:
        raise ValueError(f"events_per_second must be > 0, got {cfg.events_per_second}")
    for name, r in [("duplicate_rate", cfg.duplicate_rate), ("out_of_order_rate", cfg.out_of_order_rate),
                    ("late_rate", late_rate), ("retry_rate", cfg.retry_rate), ("fuzz_rate", cfg.fuzz_rate),
                    ("campaign_switch_rate", cfg.campaign_switch_rate)]:
        if not 0 <= r < 1:
            raise ValueError(f"{name} must be in [0, 1), got {r}")
    for name, r in [("hot_ad_share", cfg.hot_ad_share), ("bot_rate", cfg.bot_rate),
                    ("blocked_ip_rate", cfg.blocked_ip_rate), ("unknown_ip_rate", cfg.unknown_ip_rate),
                    ("v2_rate", cfg.v2_rate)]:
        if not 0 <= r <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {r}")
    if cfg.blocked_ip_rate + cfg.unknown_ip_rate > 1:
        raise ValueError(f"blocked_ip_rate + unknown_ip_rate must be <= 1, got "
                         f"{cfg.blocked_ip_rate} + {cfg.unknown_ip_rate}")
    if late_margin_ms <= 0:  # at 0 a late event could sit exactly one ms above the watermark
        raise ValueError(f"late_margin_ms must be > 0, got {late_margin_ms}")
    if set(cfg.bucket_ms) != set(EVENT_TYPES) or not all(
            type(v) is int and v > 0 for v in cfg.bucket_ms.values()):
        raise ValueError(f"bucket_ms must map each of {list(EVENT_TYPES)} to a positive int, got {cfg.bucket_ms}")
    if not set(cfg.type_weights) <= set(EVENT_TYPES) or any(w < 0 for w in cfg.type_weights.values()) \
            or not sum(cfg.type_weights.values()) > 0:
        raise ValueError(f"type_weights must map event types {list(EVENT_TYPES)} to weights >= 0 "
                         f"with a positive sum, got {cfg.type_weights}")


class _Choice:
    """Weighted draws with the cumulative weights computed once."""

    def __init__(self, weights: Mapping[Any, float]) -> None:
        self.items = list(weights)
        self.cum = list(itertools.accumulate(weights.values()))

    def draw(self, rng: random.Random) -> Any:
        return rng.choices(self.items, cum_weights=self.cum)[0]


class Generator:
    """Mutable state while building phases: rng, timeline max, pending re-sends and retries."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        # Fuzzing and campaign switches draw from their own stream, so the rest of the traffic of
        # a seed stays what it was.
        self.ids_rng = random.Random(f"{cfg.seed}:ids")
        width = max(4, len(str(cfg.ads)))
        self.ad_ids = [f"ad-{i:0{width}d}" for i in range(1, cfg.ads + 1)]
        # Zipf-like popularity (weight 1/rank) over the ads after the hot one, so the top ads stand out.
        self.zipf = _Choice({idx: 1.0 / idx for idx in range(1, cfg.ads)})
        self.types = _Choice(cfg.type_weights)
        self.humans = _Choice({a: a.weight for a in cat.USER_AGENTS if not a.is_bot})
        self.bots = _Choice({a: a.weight for a in cat.USER_AGENTS if a.is_bot})
        self.countries = _Choice(cat.COUNTRY_WEIGHTS)
        self.country_nets = {c: ipaddress.ip_network(n) for c, n in cat.COUNTRY_NETWORKS.items()}
        self.blocked_nets = [ipaddress.ip_network(n) for n in cat.BLOCKED_NETWORKS]
        self.unknown_net = ipaddress.ip_network(cat.UNKNOWN_NETWORK)
        self.max_ts = cfg.start_ms  # timeline: max event time of all sends so far
        self.late_limit: int | None = None  # in the late phase: late sends must stay at or below it
        self.any_sent = False
        self.counter = 0
        self.phases: list[list[Send]] = []
        self.current: list[Send] = []
        self.pending: list[tuple[int, Send, int, bool]] = []  # (due send index, send, ts, late)

    # ---- event content ----

    def _event_id(self) -> str:
        self.counter += 1
        # start_ms is part of the id so that runs at other times never collide in the job's dedup state.
        return hashlib.blake2b(f"{self.cfg.seed}:{self.cfg.start_ms}:{self.counter}".encode(),
                               digest_size=16).hexdigest()

    def _ad_index(self) -> int:
        # The hot ad takes its share outright (a skewed key for the job), the others share the rest.
        if len(self.ad_ids) == 1 or self.rng.random() < self.cfg.hot_ad_share:
            return 0
        return self.zipf.draw(self.rng)

    def _ip(self, valid: bool) -> str:
        r = 1.0 if valid else self.rng.random()
        if r < self.cfg.blocked_ip_rate:
            net = self.rng.choice(self.blocked_nets)
        elif r < self.cfg.blocked_ip_rate + self.cfg.unknown_ip_rate:
            net = self.unknown_net
        else:
            net = self.country_nets[self.countries.draw(self.rng)]
        # A host address: neither the network nor the broadcast address.
        return str(net.network_address + self.rng.randint(1, net.num_addresses - 2))

    def _agent(self, valid: bool) -> cat.Agent:
        pool = self.bots if not valid and self.rng.random() < self.cfg.bot_rate else self.humans
        return pool.draw(self.rng)

    def _event(self, ts: int, fence_user: str | None = None) -> dict[str, Any]:
        """A new event; a fence is a plain valid v1 impression of a user nobody else has."""
        rng, fence = self.rng, fence_user is not None
        etype = "impression" if fence else self.types.draw(rng)
        idx = self._ad_index()
        campaign = idx // 3 + 1
        if not fence and self.ids_rng.random() < self.cfg.campaign_switch_rate:
            campaign = cat.switched_campaign(campaign, self.ids_rng)
        event: dict[str, Any] = {
            "schema_version": 1,
            "event_id": self._event_id(),
            "event_type": etype,
            "event_time": ts,
            "ad_id": self.ad_ids[idx],
            # Campaign/advertiser are fixed per ad, but for campaign switches.
            "campaign_id": cat.campaign_id(campaign),
            "advertiser_id": cat.advertiser_id(campaign),
            "user_id": fence_user or f"user-{rng.randrange(1, _USERS):05d}",
            "user_agent": self._agent(valid=fence).user_agent,
            "ip": self._ip(valid=fence),
            "placement_id": f"plc-{rng.randint(1, _PLACEMENTS):03d}",
            "publisher_id": f"pub-{rng.randint(1, _PUBLISHERS):02d}",
            "cost_micros": rng.randint(*_COST_MICROS[etype]),
        }
        if etype == "conversion":
            event["conversion_value_micros"] = rng.randint(*_CONVERSION_VALUE_MICROS)
        if not fence and rng.random() < self.cfg.v2_rate:
            event["schema_version"] = 2
            event["referrer_domain"] = rng.choice(_REFERRER_DOMAINS)
        return event

    def _fence_user(self, event: dict[str, Any], partition: int) -> str:
        """A fence user whose billing key the default (murmur2) partitioner puts in `partition`,
        so a fence lands there even when the collector, not the generator, picks partitions."""
        for n in itertools.count():
            user = f"{event['user_id']}-{n}"
            key = billing_key({**event, "user_id": user}, self.cfg.bucket_ms).encode()
            if key_partition(key, self.cfg.partitions) == partition:
                return user
        raise AssertionError("unreachable")

    def _retry(self, original: dict[str, Any], late: bool) -> dict[str, Any]:
        """A billing retry: a new event_id with the original's content, a little later but in the
        same minute and billing bucket (so the same billing key and minute row)."""
        t = original["event_time"]
        bucket = self.cfg.bucket_ms[original["event_type"]]
        cap = min(_RETRY_MAX_DELAY_MS, bucket_start(t, bucket) + bucket - 1 - t, t - t % WINDOW_MS + WINDOW_MS - 1 - t)
        if late:  # and still clearly late
            assert self.late_limit is not None, "late events come only in the late phase"
            cap = min(cap, self.late_limit - t)
        return {**original, "event_id": self._event_id(), "event_time": t + self.rng.randint(0, cap)}

    def _send(self, event: dict[str, Any], partition: int | None = None) -> Send:
        return Send(key=billing_key(event, self.cfg.bucket_ms).encode(), value=encode_event(event),
                    partition=partition)

    # ---- the send sequence ----

    def _emit(self, send: Send, ts: int) -> None:
        self.current.append(send)
        self.max_ts = max(self.max_ts, ts)
        self.any_sent = True

    def _later(self, send: Send, ts: int, late: bool) -> None:
        self.pending.append((len(self.current) + self.rng.randint(1, _DUP_MAX_DELAY), send, ts, late))

    def _flush_due(self, everything: bool = False) -> None:
        keep = []
        for due, send, ts, late in self.pending:
            if everything or due <= len(self.current):
                # An on-time duplicate or retry is sent only if it is still on-time now.
                if late or ts > self.max_ts - self.cfg.bound_ms:
                    self._emit(send, ts)
            else:
                keep.append((due, send, ts, late))
        self.pending = keep

    def _fuzzed(self, event: dict[str, Any], room: int) -> list[dict[str, Any]]:
        """The event with fuzzed ids, or, for a valid event with room for two, the event and its
        separator twin: same type and time, a new event_id, both billable, and one billing key
        under a plain '|' join."""
        rng = self.ids_rng
        if room >= 2 and rng.random() < _TWIN_SHARE and enrich(event, self.cfg.bucket_ms)["invalid_reason"] is None:
            (_, user), (twin_ad, twin_user) = fuzz_ids.separator_twins(event["ad_id"], event["user_id"],
                                                                       f"t{rng.randrange(10**6)}")
            event = {**event, "user_id": user}
            return [event, {**event, "event_id": self._event_id(), "ad_id": twin_ad, "user_id": twin_user}]
        return [fuzz_ids.fuzz_fields(rng, event)]

    def _new(self, ts: int, late: bool, room: int = 1) -> int:
        """A new event (with its duplicate and retry, if drawn); returns how many new events it
        made: 2 for separator twins, else 1."""
        event = self._event(ts)
        events = self._fuzzed(event, room) if self.ids_rng.random() < self.cfg.fuzz_rate else [event]
        event = events[0]
        send = self._send(event)
        self._emit(send, ts)
        for twin in events[1:]:  # right after its twin, at the same time: as clearly on time
            self._emit(self._send(twin), ts)
        if self.rng.random() < self.cfg.duplicate_rate:
            self._later(send, ts, late)
        if self.rng.random() < self.cfg.retry_rate:
            retry = self._retry(event, late)
            self._later(self._send(retry), retry["event_time"], late)
        return len(events)

    def on_time_event(self, room: int = 1) -> int:
        """One new on-time event (two for separator twins, when room allows); returns how many."""
        # Flush first: a retry may move the max ahead, and the out-of-order pull-back is relative to it.
        self._flush_due()
        if self.any_sent and self.rng.random() < self.cfg.out_of_order_rate:
            # Pulled back by < bound - 1s: behind the max, yet safely on-time.
            ts = max(self.cfg.start_ms, self.max_ts - self.rng.randint(1, self.cfg.bound_ms - 1001))
        else:
            ts = self.max_ts + round(self.rng.expovariate(self.cfg.events_per_second) * 1000)
        return self._new(ts, late=False, room=room)

    def late_event(self, ts: int) -> None:
        self._flush_due()
        self._new(ts, late=True)

    def end_phase(self, name: str) -> None:
        """Flush pending re-sends, then the fence: one event per partition at the phase max."""
        self._flush_due(everything=True)
        for p in range(self.cfg.partitions):
            event = self._event(self.max_ts, fence_user=f"fence-{name}-{p}")
            event["user_id"] = self._fence_user(event, p)
            self._emit(self._send(event, partition=p), self.max_ts)
        self.phases.append(self.current)
        self.current = []
