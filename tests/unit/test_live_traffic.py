"""Continuous traffic (adagg/live_traffic.py): the timeline's pace, order and intent, without a stack."""

from __future__ import annotations

import json

import httpx

from adagg.live_traffic import Sender, timeline
from adagg.traffic import key_partition

BUCKETS = {"impression": 60_000, "click": 60_000, "conversion": 3_600_000}
START = 1_800_000_000_000


def make(seconds=400, rate=100, **kw):
    return timeline(seed=5, seconds=seconds, rate=rate, ads=20, partitions=4, start_ms=START, bound_ms=15_000,
                    bucket_ms=BUCKETS, **kw)


def test_sends_are_due_in_order_at_the_rate_with_event_time_following_the_clock():
    tl = make()
    dues = [due for due, _, _ in tl.sends]
    assert dues == sorted(dues) and 399 <= tl.seconds <= 401
    new = {eid for _, eid, _ in tl.sends}
    assert 0.9 * 400 * 100 <= len(new) <= 1.2 * 400 * 100
    for due, _, send in tl.sends[::97]:  # a send is due when the timeline reaches its event time
        assert json.loads(send.value)["event_time"] <= START + due * 1000 + 1


def test_every_send_is_clearly_on_time_or_clearly_late_and_some_are_late():
    tl = make(late_rate=0.05)
    late = tl.late_ids()  # raises if a send is neither
    assert late and all(eid in {e for _, e, _ in tl.sends} for eid in late)
    first_late_due = min(due for due, eid, _ in tl.sends if eid in late)
    assert first_late_due > (15_000 + 120_000 + 60_000) / 1000  # late only once there is a past to be late in


def test_the_close_fences_one_per_partition_past_every_window():
    tl = make(seconds=60)
    assert sorted(key_partition(s.key, 4) for s in tl.close) == [0, 1, 2, 3]
    assert all(json.loads(s.value)["event_time"] >= tl.end_ms + 15_000 + 60_000 for s in tl.close)


def test_the_same_seed_makes_the_same_traffic():
    assert [s.value for _, _, s in make(seconds=30).sends] == [s.value for _, _, s in make(seconds=30).sends]


def test_the_sender_drops_what_skip_refuses_when_it_is_due_and_posts_the_rest():
    tl = make(seconds=3, rate=50)
    sends = [(0.0, eid, s) for _, eid, s in tl.sends]  # all due at once
    posted: list[str] = []

    def collector(request: httpx.Request) -> httpx.Response:
        events = [json.loads(line) for line in request.content.splitlines()]
        posted.extend(e["event_id"] for e in events)
        return httpx.Response(200, json={"results": [{"status": "accepted"} for _ in events]})

    on_2 = {eid for _, eid, s in sends if key_partition(s.key, 4) == 2}
    sender = Sender("http://collector.test", "key", sends, skip=lambda s: key_partition(s.key, 4) == 2)
    sender.http = httpx.Client(base_url="http://collector.test", transport=httpx.MockTransport(collector))
    sender.run()
    assert sender.error is None and on_2
    assert set(sender.stats.skipped) == on_2 and set(posted) == {eid for _, eid, _ in sends} - on_2
    assert set(sender.stats.accepted) == set(posted)
