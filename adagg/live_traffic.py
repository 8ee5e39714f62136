"""Continuous traffic: generated events paced in real time through the collector, as an SDK sends
them, with no phases and no pauses. For fault tests and soak runs.

The timeline is the phase generator's (adagg/traffic.py): the same events, duplicates, billing
retries, bots, blocked IPs, fuzzed ids and campaign switches, with event time advancing at `rate`
events a second, and each send due when the timeline reaches its event time. A share of events is
made clearly late: its event time lies at least the watermark delay plus `late_margin_ms` behind
the newest one. No oracle is built here: what the job must output follows from what the raw topic
holds (adagg.oracle.derive_from_deliveries), whatever faults did to the timing.

The sender (Sender) posts what is due every tick, NDJSON, and does what an SDK does: a request
that is not answered (the collector died, Kafka is down: 503) is sent again after a backoff, so
an event may reach Kafka twice (the job's exact dedup removes the copy), and none is lost.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from adagg.traffic import TYPE_WEIGHTS, Config, Generator, Send

# As the phase generator: late events lie at least this far behind (newest - bound), up to 8 min more.
_LATE_MIN_OFFSET_MS = 120_000
_LATE_SPREAD_MS = 480_000
# The close fence is this far past the newest event time (plus the bound): every window closes.
_CLOSE_EXTRA_MS = 120_000


@dataclass
class Timeline:
    sends: list[tuple[float, str, Send]]  # (due, seconds from the start; event_id; send), in send order
    close: list[Send]  # one fence per partition past every window of the timeline
    start_ms: int
    end_ms: int  # the newest event time of the timeline
    bound_ms: int
    late_margin_ms: int

    @property
    def seconds(self) -> float:
        return self.sends[-1][0] if self.sends else 0.0

    def late_ids(self) -> set[str]:
        """The events sent clearly late: at or below (newest event time sent before - bound - margin).
        Every other send is clearly on time (above newest - bound), which is checked: whatever a
        fault does to the timing, the job's rule (each partition's newest event time - bound) can
        then only decide one way (adagg.oracle.derive_from_deliveries)."""
        late, newest = set(), None
        for _, eid, send in self.sends:
            ts = json.loads(send.value)["event_time"]
            if newest is not None and ts <= newest - self.bound_ms - self.late_margin_ms:
                late.add(eid)
            elif newest is not None and ts <= newest - self.bound_ms:
                raise ValueError(f"send of {eid} is neither clearly on time nor clearly late")
            newest = ts if newest is None else max(newest, ts)
        return late


def timeline(*, seed: int, seconds: float, rate: float, ads: int, partitions: int, start_ms: int, bound_ms: int,
             bucket_ms: Mapping[str, int], late_rate: float = 0.02, late_margin_ms: int = 60_000,
             duplicate_rate: float = 0.05, fuzz_rate: float = 0.01, campaign_switch_rate: float = 0.01) -> Timeline:
    """`seconds` of traffic at `rate` new events a second (exact duplicates on top).

    No generated billing retries: the phase generator sends one a few sends after its original
    with an event time up to 2 s later, which at hundreds of events a second would carry the
    timeline ahead of the clock. Billing repeats still come, from the user pool (the same user on
    the same ad within a bucket), and resends from the sender."""
    cfg = Config(seed, ads, partitions, start_ms, bound_ms, rate, duplicate_rate, 0.1, dict(bucket_ms),
                 dict(TYPE_WEIGHTS), 0.3, 0.0, 0.05, 0.03, 0.01, 0.3, fuzz_rate, campaign_switch_rate)
    gen = Generator(cfg)
    rng = random.Random(f"{seed}:late")
    sends: list[tuple[float, str, Send]] = []
    end_ms = start_ms + int(seconds * 1000)
    earliest_late = start_ms + bound_ms + _LATE_MIN_OFFSET_MS + late_margin_ms
    while gen.max_ts < end_ms:
        before = len(gen.current)
        if gen.max_ts > earliest_late and rng.random() < late_rate:
            gen.late_limit = gen.max_ts - bound_ms - late_margin_ms
            newest_late = gen.max_ts - bound_ms - max(late_margin_ms, _LATE_MIN_OFFSET_MS)
            gen.late_event(rng.randint(max(start_ms, newest_late - _LATE_SPREAD_MS), newest_late))
        else:
            gen.on_time_event()
        due = (gen.max_ts - start_ms) / 1000
        sends += [(due, json.loads(s.value)["event_id"], s) for s in gen.current[before:]]
    before = len(gen.current)
    gen.end_phase("timeline")  # what is still pending, then one fence per partition
    sends += [(sends[-1][0], json.loads(s.value)["event_id"], s) for s in gen.current[before:]]
    newest = gen.max_ts
    gen.max_ts = newest + bound_ms + _CLOSE_EXTRA_MS
    gen.end_phase("close")
    return Timeline(sends, gen.phases[-1], start_ms, newest, bound_ms, late_margin_ms)


@dataclass
class SenderStats:
    requests: int = 0
    resent: int = 0  # requests sent again: unanswered, refused with 503, or events answered "retry"
    accepted: dict[str, float] = field(default_factory=dict)  # event_id -> when first accepted (epoch s)
    rejected: list[str] = field(default_factory=list)  # "event_id: reason" (generated traffic is valid)
    skipped: list[str] = field(default_factory=list)  # event ids the caller's `skip` dropped when due
    behind_s: float = 0.0  # how far behind its schedule the sender is (grows while the collector is down)


class Sender(threading.Thread):
    """Posts a timeline's sends when due, retrying until every one is accepted (see module doc).
    A send for which `skip` answers True when it is due is dropped: a test shapes the traffic by
    what it has seen so far (partitions left without events until the windows closed)."""

    def __init__(self, url: str, api_key: str, sends: list[tuple[float, str, Send]], tick_s: float = 0.1,
                 max_batch: int = 5000, timeout_s: float = 10.0, skip: Callable[[Send], bool] | None = None):
        super().__init__(daemon=True, name="live-traffic-sender")
        self.sends, self.tick_s, self.max_batch, self.skip = sends, tick_s, max_batch, skip
        self.http = httpx.Client(base_url=url, timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/x-ndjson"})
        self.stats = SenderStats()
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        try:
            self.started_at = time.time()
            i = 0
            while i < len(self.sends) and not self._halt.is_set():
                elapsed = time.time() - self.started_at
                j = i
                while j < len(self.sends) and self.sends[j][0] <= elapsed and j - i < self.max_batch:
                    j += 1
                if j == i:
                    time.sleep(min(self.tick_s, self.sends[i][0] - elapsed))
                    continue
                self.stats.behind_s = max(0.0, elapsed - self.sends[i][0])
                batch = []
                for _, eid, send in self.sends[i:j]:
                    if self.skip is not None and self.skip(send):
                        self.stats.skipped.append(eid)
                    else:
                        batch.append((eid, send.value))
                self.post(batch)
                i = j
        except BaseException as error:  # noqa: BLE001 - reported by the caller through .error
            self.error = error
        finally:
            self.http.close()

    def post(self, batch: list[tuple[str, bytes]]) -> None:
        """Send one batch until every event in it is accepted (or rejected, which is reported)."""
        backoff = 0.25
        while batch and not self._halt.is_set():
            self.stats.requests += 1
            results = self._results(batch)
            if results is not None:
                now = time.time()
                again = []
                for (eid, value), result in zip(batch, results, strict=True):
                    if result["status"] == "accepted":
                        self.stats.accepted.setdefault(eid, now)
                    elif result["status"] == "rejected":
                        self.stats.rejected.append(f"{eid}: {result['reason']}")
                    else:
                        again.append((eid, value))
                batch = again
            if batch:
                self.stats.resent += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 4.0)

    def _results(self, batch: list[tuple[str, bytes]]) -> list[dict] | None:
        """The per-event results of one request (a 503 answers them too), or None when unanswered."""
        try:
            response = self.http.post("/v1/events", content=b"\n".join(v for _, v in batch))
        except httpx.HTTPError:
            return None
        if response.status_code not in (200, 503) or not response.headers.get(
                "content-type", "").startswith("application/json"):
            return None
        return response.json().get("results")

    def stop(self) -> None:
        self._halt.set()
