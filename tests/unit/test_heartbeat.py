"""The collector's heartbeat record (collector/heartbeat.py): an event time only, never later than
the collector's clock, and none before its first event."""

from __future__ import annotations

import json

from collector.heartbeat import Heartbeat


def test_no_heartbeat_before_the_first_event():
    assert Heartbeat("c-1", 1.0).value(now_ms=1_000) is None


def test_a_heartbeat_carries_the_highest_event_time_written():
    beat = Heartbeat("c-1", 1.0)
    for t in (500, 900, 700):
        beat.saw(t)
    assert json.loads(beat.value(now_ms=1_000)) == {"heartbeat": "c-1", "event_time": 900}


def test_a_future_event_time_is_never_carried_past_the_clock():
    """A client whose clock runs fast must not move every partition's watermark ahead."""
    beat = Heartbeat("c-1", 1.0)
    beat.saw(10_000_000)
    assert json.loads(beat.value(now_ms=1_000))["event_time"] == 1_000
