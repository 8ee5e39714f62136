"""Deterministic ad-click traffic for the raw Kafka topic, plus the exact oracle of the Flink job's output.

The Flink job: watermark = max event time - bound - 1 ms (min over partitions); rows with
ts <= CURRENT_WATERMARK(ts) go to the late topic (before dedup); on-time rows are deduplicated on
event_id and counted per ad_id in 1-minute tumbling windows; only windows that close are emitted.

Watermark timing in Flink is not deterministic, so the traffic is built so that every send is
unambiguously on-time or late whatever the timing:

* on-time: ts > (max event time of all earlier sends) - bound_ms. No partition's watermark can
  have passed it, since each is at most that max - bound - 1.
* late: in a later phase, ts <= (previous fence ts) - bound_ms - late_margin_ms. The sender pauses
  between phases, and the fence put one event at fence ts into every partition, so by then the
  watermark is at least fence ts - bound - 1.

Phases: main (timeline + out-of-order + duplicates), late (timeline continues, interleaved with
late events), close (one far-future fence that closes every earlier window).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field

WINDOW_MS = 60_000
# Share of the on-time (non-fence) events that goes into the main phase; the rest goes to the late phase.
_MAIN_FRACTION = 0.8
# Late events lie this far before (previous fence - bound): at least max(margin, 2 min), up to 8 min more.
_LATE_MIN_OFFSET_MS = 120_000
_LATE_SPREAD_MS = 480_000
# A duplicate is re-sent after 1.._DUP_MAX_DELAY further sends.
_DUP_MAX_DELAY = 4
# The close fence is this far past (last max + bound), so every window before it closes.
_CLOSE_EXTRA_MS = 120_000


@dataclass(frozen=True)
class Send:
    key: bytes  # Kafka message key = event_id utf-8
    value: bytes  # compact, key-sorted JSON
    partition: int | None  # explicit partition for fence events, else None (partitioned by key)


@dataclass
class Oracle:
    clicks: dict[tuple[str, int], int]  # (ad_id, window_start_ms) -> count, closed windows only
    late_event_ids: set[str]
    final_watermark_ms: int
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {
            "final_watermark_ms": self.final_watermark_ms,
            "late_event_ids": sorted(self.late_event_ids),
            "stats": dict(sorted(self.stats.items())),
            "windows": [
                {"ad_id": ad, "window_start_ms": start, "clicks": n}
                for (ad, start), n in sorted(self.clicks.items())
            ],
        }
        return json.dumps(doc, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Oracle:
        doc = json.loads(text)
        return cls(
            clicks={(w["ad_id"], int(w["window_start_ms"])): int(w["clicks"]) for w in doc["windows"]},
            late_event_ids=set(doc["late_event_ids"]),
            final_watermark_ms=int(doc["final_watermark_ms"]),
            stats={k: int(v) for k, v in doc["stats"].items()},
        )


@dataclass
class Traffic:
    phases: list[list[Send]]
    oracle: Oracle


def encode_event(event: dict[str, object]) -> bytes:
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
) -> Traffic:
    """Build three phases of sends and their oracle.

    `events` counts distinct non-fence events (on-time + late); fences (one per partition per phase)
    and duplicate re-sends come on top. Raises ValueError on bad arguments, or if any send it built
    is not clearly on-time or clearly late (then the oracle would not be exact).
    """
    _validate(events, ads, partitions, start_ms, bound_ms, events_per_second,
              duplicate_rate, out_of_order_rate, late_rate, late_margin_ms)
    gen = _Generator(seed, ads, partitions, start_ms, bound_ms, events_per_second,
                     duplicate_rate, out_of_order_rate)

    late_count = round(events * late_rate)
    main_count = round((events - late_count) * _MAIN_FRACTION)
    late_phase_on_time = events - late_count - main_count

    # Phase 1: main.
    for _ in range(main_count):
        gen.on_time_event()
    gen.end_phase()
    fence1 = gen.max_ts

    # Phase 2: the timeline goes on, with late events shuffled in.
    late_lo = fence1 - bound_ms - max(late_margin_ms, _LATE_MIN_OFFSET_MS)
    kinds = [False] * late_phase_on_time + [True] * late_count
    gen.rng.shuffle(kinds)
    for is_late in kinds:
        if is_late:
            gen.late_event(gen.rng.randint(late_lo - _LATE_SPREAD_MS, late_lo))
        else:
            gen.on_time_event()
    gen.end_phase()

    # Phase 3: close. Only the fence, far enough ahead to close every window of phases 1-2.
    gen.max_ts += bound_ms + _CLOSE_EXTRA_MS
    gen.end_phase()

    return Traffic(phases=gen.phases, oracle=derive_oracle(gen.phases, bound_ms, late_margin_ms))


def derive_oracle(phases: list[list[Send]], bound_ms: int, late_margin_ms: int) -> Oracle:
    """Replay the sends with the on-time/late rules and compute what the Flink job must output.

    The last `partitions` sends of every phase (those with an explicit partition) are its fence.
    Raises ValueError if a send is neither clearly on-time nor clearly late.
    """
    max_ts: int | None = None
    min_ts: int | None = None  # earliest event time: where the run's windows (late ones too) begin
    fence_ts: int | None = None  # fence of the previous phase
    seen: set[str] = set()  # every event_id sent so far (to count duplicate sends)
    on_time: dict[str, tuple[str, int]] = {}  # event_id -> (ad_id, ts), first on-time copy
    late_ids: set[str] = set()
    stats = dict.fromkeys(
        ["sends", "fences", "duplicates", "out_of_order", "late_sends", "late_duplicates"], 0)

    for p, phase in enumerate(phases):
        for i, send in enumerate(phase):
            ev = json.loads(send.value)
            eid, ts = ev["event_id"], ev["event_time"]
            is_on_time = max_ts is None or ts > max_ts - bound_ms
            is_late = fence_ts is not None and ts <= fence_ts - bound_ms - late_margin_ms
            if is_on_time == is_late:  # both cannot happen, but neither can
                raise ValueError(f"send {i} of phase {p} (event {eid}, ts {ts}) is not clearly "
                                 f"on-time or late (max {max_ts}, fence {fence_ts})")
            dup = eid in seen
            seen.add(eid)
            stats["sends"] += 1
            stats["fences"] += send.partition is not None
            stats["duplicates"] += dup
            if is_late:
                late_ids.add(eid)
                stats["late_sends"] += 1
                stats["late_duplicates"] += dup
            else:
                if not dup and max_ts is not None and ts < max_ts:
                    stats["out_of_order"] += 1
                on_time.setdefault(eid, (ev["ad_id"], ts))
            max_ts = ts if max_ts is None else max(max_ts, ts)
            min_ts = ts if min_ts is None else min(min_ts, ts)
        fence_ts = json.loads(phase[-1].value)["event_time"] if phase else fence_ts

    if fence_ts is None:
        raise ValueError("no sends")
    final_wm = fence_ts - bound_ms - 1
    clicks: dict[tuple[str, int], int] = {}
    unclosed = 0
    for ad, ts in on_time.values():
        start = ts - ts % WINDOW_MS
        if start + WINDOW_MS - 1 <= final_wm:  # Flink fires a window once watermark >= end - 1
            clicks[(ad, start)] = clicks.get((ad, start), 0) + 1
        else:
            unclosed += 1
    stats.update(
        min_event_time_ms=min_ts,
        unique_events=len(seen),
        late_events=len(late_ids),
        on_time_events=len(on_time),
        unclosed_events=unclosed,
        counted_clicks=sum(clicks.values()),
        closed_windows=len(clicks),
    )
    return Oracle(clicks=clicks, late_event_ids=late_ids, final_watermark_ms=final_wm, stats=stats)


def _validate(events: int, ads: int, partitions: int, start_ms: int, bound_ms: int,
              events_per_second: float, duplicate_rate: float, out_of_order_rate: float,
              late_rate: float, late_margin_ms: int) -> None:
    for name, v in [("events", events), ("ads", ads), ("partitions", partitions)]:
        if v <= 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if start_ms < 0:
        raise ValueError(f"start_ms must be >= 0, got {start_ms}")
    if bound_ms < 2000:
        raise ValueError(f"bound_ms must be >= 2000, got {bound_ms}")
    if not events_per_second > 0:
        raise ValueError(f"events_per_second must be > 0, got {events_per_second}")
    for name, r in [("duplicate_rate", duplicate_rate), ("out_of_order_rate", out_of_order_rate),
                    ("late_rate", late_rate)]:
        if not 0 <= r < 1:
            raise ValueError(f"{name} must be in [0, 1), got {r}")
    if late_margin_ms <= 0:  # at 0 a late event could sit exactly one ms above the watermark
        raise ValueError(f"late_margin_ms must be > 0, got {late_margin_ms}")


class _Generator:
    """Mutable state while building phases: rng, timeline max, pending duplicates."""

    def __init__(self, seed: int, ads: int, partitions: int, start_ms: int, bound_ms: int,
                 events_per_second: float, duplicate_rate: float, out_of_order_rate: float) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.partitions = partitions
        self.bound_ms = bound_ms
        self.eps = events_per_second
        self.duplicate_rate = duplicate_rate
        self.out_of_order_rate = out_of_order_rate
        width = max(4, len(str(ads)))
        self.ad_ids = [f"ad-{i:0{width}d}" for i in range(1, ads + 1)]
        # Zipf-like popularity (weight 1/rank) so the top ads stand out.
        self.cum_weights: list[float] = []
        total = 0.0
        for rank in range(1, ads + 1):
            total += 1.0 / rank
            self.cum_weights.append(total)
        self.max_ts = start_ms  # timeline: max event time of all sends so far
        self.start_ms = start_ms
        self.any_sent = False
        self.counter = 0
        self.phases: list[list[Send]] = []
        self.current: list[Send] = []
        self.pending: list[tuple[int, Send, int, bool]] = []  # (due send index, send, ts, late)

    def _event(self, ts: int) -> tuple[Send, int]:
        self.counter += 1
        # start_ms is part of the id so that runs at other times never collide in the job's dedup state.
        eid = hashlib.blake2b(f"{self.seed}:{self.start_ms}:{self.counter}".encode(), digest_size=16).hexdigest()
        idx = self.rng.choices(range(len(self.ad_ids)), cum_weights=self.cum_weights)[0]
        event = {
            "schema_version": 1,
            "event_id": eid,
            "event_type": "click",
            "event_time": ts,
            "ad_id": self.ad_ids[idx],
            # Campaign/advertiser are fixed per ad, so they can be joined from a dimension table.
            "campaign_id": f"camp-{idx // 3 + 1:04d}",
            "advertiser_id": f"adv-{idx // 12 + 1:03d}",
            "user_id": f"user-{self.rng.randrange(1, 100_000):05d}",
        }
        return Send(key=eid.encode(), value=encode_event(event), partition=None), ts

    def _emit(self, send: Send, ts: int) -> None:
        self.current.append(send)
        self.max_ts = max(self.max_ts, ts)
        self.any_sent = True

    def _flush_due(self, everything: bool = False) -> None:
        keep = []
        for due, send, ts, late in self.pending:
            if everything or due <= len(self.current):
                # An on-time duplicate is re-sent only if it is still on-time now.
                if late or ts > self.max_ts - self.bound_ms:
                    self._emit(send, ts)
            else:
                keep.append((due, send, ts, late))
        self.pending = keep

    def _new(self, ts: int, late: bool) -> None:
        self._flush_due()
        send, ts = self._event(ts)
        self._emit(send, ts)
        if self.rng.random() < self.duplicate_rate:
            due = len(self.current) + self.rng.randint(1, _DUP_MAX_DELAY)
            self.pending.append((due, send, ts, late))

    def on_time_event(self) -> None:
        if self.any_sent and self.rng.random() < self.out_of_order_rate:
            # Pulled back by < bound - 1s: behind the max, yet safely on-time.
            ts = max(self.start_ms, self.max_ts - self.rng.randint(1, self.bound_ms - 1001))
        else:
            ts = self.max_ts + round(self.rng.expovariate(self.eps) * 1000)
        self._new(ts, late=False)

    def late_event(self, ts: int) -> None:
        self._new(ts, late=True)

    def end_phase(self) -> None:
        """Flush pending duplicates, then the fence: one event per partition at the phase max."""
        self._flush_due(everything=True)
        for p in range(self.partitions):
            send, ts = self._event(self.max_ts)
            self._emit(Send(send.key, send.value, partition=p), ts)
        self.phases.append(self.current)
        self.current = []
