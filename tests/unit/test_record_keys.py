"""Record keys written outside Flink (reconciliation's corrections) are byte-identical to the keys
Flink's JSON key format writes, so that they land in the same Kafka partition."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adagg.record_keys import flink_json_key
from adagg.sql import render
from reconcile import diff
from tests.unit.test_consistency import sink_tables

# Written by Flink 2.2.1's json format (a batch job over VALUES into a filesystem sink: the same
# JsonRowDataSerializationSchema the Kafka sink's key.format = json uses).
WRITTEN_BY_FLINK = [
    ("ad-0001", b'{"window_start_ms":1700000000000,"ad_id":"ad-0001","country":"US"}'),
    ("a|b\\c", b'{"window_start_ms":1700000000000,"ad_id":"a|b\\\\c","country":"US"}'),
    ("x\x1fy\x00z\x7f", b'{"window_start_ms":1700000000000,"ad_id":"x\\u001Fy\\u0000z\x7f","country":"US"}'),
    ("t\tn\nr\rb\bf\f", b'{"window_start_ms":1700000000000,"ad_id":"t\\tn\\nr\\rb\\bf\\f","country":"US"}'),
    ("it's \"q\"", b'{"window_start_ms":1700000000000,"ad_id":"it\'s \\"q\\"","country":"US"}'),
    ("café/广告", b'{"window_start_ms":1700000000000,"ad_id":"caf\xc3\xa9/\xe5\xb9\xbf\xe5\x91\x8a","country":"US"}'),
    ("🚀x", b'{"window_start_ms":1700000000000,"ad_id":"\\uD83D\\uDE80x","country":"US"}'),
    ("إعلان\u2028", b'{"window_start_ms":1700000000000,"ad_id":"\xd8\xa5\xd8\xb9\xd9\x84\xd8\xa7\xd9\x86\xe2\x80\xa8","country":"US"}'),
]


@pytest.mark.parametrize("ad_id, written", WRITTEN_BY_FLINK)
def test_keys_are_the_bytes_flink_writes(ad_id, written):
    assert flink_json_key({"window_start_ms": 1_700_000_000_000, "ad_id": ad_id, "country": "US"}) == written


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=64), st.integers(0, 2**53))
def test_keys_are_json_of_the_fields_in_order(value, start):
    key = flink_json_key({"window_start_ms": start, "ad_id": value})
    assert json.loads(key) == {"window_start_ms": start, "ad_id": value}
    assert list(json.loads(key)) == ["window_start_ms", "ad_id"]


def test_corrections_are_keyed_in_the_sinks_key_order():
    """reconcile.run.publish keys a correction by diff.KEY: the order of the sinks' key fields, so
    its bytes equal the key Flink wrote for the row it replaces."""
    sinks = sink_tables(render("local"))
    for table in ("snk_ad_minute", "snk_ad_hour", "snk_ad_day"):
        assert sinks[table]["key"] == list(diff.KEY), table


def test_verify_holds_every_records_kafka_key_to_its_row():
    """adagg.verify compares each output record's Kafka key with flink_json_key of its key
    columns, so the e2e tier checks these bytes against what Flink wrote to real topics."""
    from adagg.verify import _compare

    cols = ("window_start_ms", "ad_id")
    row = {"window_start_ms": 60_000, "ad_id": "🚀|\x1f", "clicks": 1}
    good = flink_json_key({"window_start_ms": 60_000, "ad_id": "🚀|\x1f"})
    expected = {(60_000, "🚀|\x1f"): {"clicks": 1}}
    assert _compare("t", expected, [(good, row)], cols, False).exact
    python_json = json.dumps({"window_start_ms": 60_000, "ad_id": "🚀|\x1f"}, separators=(",", ":")).encode()
    wrong = _compare("t", expected, [(python_json, row)], cols, False)
    assert not wrong.exact and wrong.miskeyed == [((60_000, "🚀|\x1f"), python_json)]
    assert "1 miskeyed" in wrong.summary()
