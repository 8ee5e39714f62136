"""The collector's fast validator (msgspec types compiled from the contract) against the
reference (jsonschema on the same JSON Schemas): same verdicts, clear reasons, and a fuzzer."""

from __future__ import annotations

import copy
import json

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adagg.contract import schema, validate, versions
from collector import validation
from collector.validation import COLLECTOR_FILLED, REASONS, Rejection

EVENT = {
    "schema_version": 1, "event_id": "e-1", "event_type": "click", "event_time": 1_767_225_601_234,
    "ad_id": "ad-1", "campaign_id": "camp-0001", "advertiser_id": "adv-001", "user_id": "u-1",
    "ip": "23.32.0.5", "user_agent": "Mozilla/5.0", "placement_id": "plc-001", "publisher_id": "pub-01",
    "cost_micros": 250_000,
}
FILLS = {"event_id": "filled-id", "ip": "127.0.0.1", "user_agent": "filled-agent"}


def collector_accepts(event: object) -> bool:
    decoded = validation.decode(json.dumps(event).encode())
    return not isinstance(decoded, Rejection) and validation.check_ips(decoded) is None


def reference_accepts(event: object) -> bool:
    """jsonschema's verdict once the collector's fills are in, plus the collector's documented
    extra strictness: integers must be JSON integers within 64 bits."""
    if not isinstance(event, dict):
        return False
    filled = {**{k: v for k, v in FILLS.items() if k not in event}, **event}
    if validate(filled):
        return False
    props = schema(filled["schema_version"])["properties"]
    return all(type(filled[k]) is int and abs(filled[k]) < 2**63
               for k, spec in props.items() if spec.get("type") == "integer" and k in filled)


def test_compiles_every_version_and_fills_are_optional():
    assert [t.__struct_config__.tag for t in validation.compiled().union.__args__] == versions()
    assert validation.compiled().ip_fields == ("ip",)
    for name in COLLECTOR_FILLED:
        event = {k: v for k, v in EVENT.items() if k != name}
        assert collector_accepts(event), name


def test_unknown_keywords_are_refused_not_ignored():
    spec = {"type": "string", "pattern": "^a+$"}
    with pytest.raises(validation.ContractCompileError, match="pattern"):
        validation._field_type("ad_id", spec)


@pytest.mark.parametrize("change, reason, message", [
    ({"schema_version": 3}, "unknown_schema_version", "schema_version: invalid value 3; known versions: [1, 2]"),
    ({"schema_version": "1"}, "unknown_schema_version", "schema_version: expected `int`"),
    ({"event_type": "view"}, "bad_value", "event_type: invalid enum value 'view'"),
    ({"event_time": 1.0}, "wrong_type", "event_time: expected `int`, got `float`"),
    ({"event_time": True}, "wrong_type", "event_time: expected `int`, got `bool`"),
    ({"cost_micros": -1}, "out_of_range", "cost_micros: expected `int` >= 0"),
    ({"cost_micros": 10**13}, "out_of_range", "cost_micros: expected `int` <= 1000000000000"),
    ({"ad_id": "a" * 65}, "bad_length", "ad_id: expected `str` of length <= 64"),
    ({"ad_id": ""}, "bad_length", "ad_id: expected `str` of length >= 1"),
    ({"ad_id": 7}, "wrong_type", "ad_id: expected `str`, got `int`"),
    ({"referrer_domain": "x.example"}, "unknown_field", "referrer_domain: unknown field"),  # v2 field on v1
    ({"ip": None}, "wrong_type", "ip: expected `str`, got `null`"),
])
def test_rejections_have_a_reason_code_and_name_the_field(change, reason, message):
    result = validation.decode(json.dumps({**EVENT, **change}).encode())
    assert isinstance(result, Rejection) and result.reason == reason and result.reason in REASONS
    assert result.message.startswith(message), result.message


def test_missing_and_malformed_and_non_objects():
    event = copy.deepcopy(EVENT)
    del event["user_id"]
    assert validation.decode(json.dumps(event).encode()) == Rejection("missing_field",
                                                                     "user_id: required field is missing")
    assert validation.decode(b'{"schema_version": 1,').reason == "malformed_json"
    assert validation.decode(b"[1, 2]").reason == "not_an_object"
    assert validation.decode(b"{}").reason == "unknown_schema_version"


@pytest.mark.parametrize("ip, ok", [
    ("23.32.0.5", True), ("::1", True), ("2001:db8::8a2e:370:7334", True), ("::ffff:1.2.3.4", True),
    ("999.1.1.1", False), ("01.2.3.4", False), ("1.2.3", False), ("fe80::1%eth0", False), ("", False),
    ("1.2.3.4 ", False), ("localhost", False),
])
def test_ip_format_matches_jsonschema(ip, ok):
    assert collector_accepts({**EVENT, "ip": ip}) is ok
    assert reference_accepts({**EVENT, "ip": ip}) is ok


def test_time_bounds():
    event = validation.decode(json.dumps(EVENT).encode())
    now = EVENT["event_time"]
    assert validation.check_time(event, now, 1000, 1000) is None
    assert validation.check_time(event, now + 1001, 1000, 1000).reason == "timestamp_out_of_range"
    assert validation.check_time(event, now - 1001, 1000, 1000).reason == "timestamp_out_of_range"


def test_valid_events_pass_through_unchanged():
    v2 = {**EVENT, "schema_version": 2, "referrer_domain": "news.example"}
    for event in (EVENT, v2):
        decoded = validation.decode(json.dumps(event).encode())
        assert json.loads(validation.encode(decoded)) == event


# ---- the fuzzer: any JSON object, mostly near-valid, judged the same by both validators

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=300),
    st.sampled_from(["", "a", "1.2.3.4", "::1", "01.2.3.4", "256.0.0.1", "fe80::1%1", "click", "impression",
                     "conversion", "x" * 64, "x" * 65, "y" * 129]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_FIELDS = sorted(set().union(*(schema(v)["properties"] for v in versions())))


@st.composite
def near_valid_events(draw):
    event = dict(EVENT)
    if draw(st.booleans()):
        event["schema_version"] = draw(st.sampled_from([1, 2, 3, 0, "2", 2.0, None]))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "set", "add"]))
        if action == "drop" and event:
            event.pop(draw(st.sampled_from(sorted(event))))
        elif action == "set":
            event[draw(st.sampled_from(_FIELDS))] = draw(_VALUES)
        else:
            event[draw(st.text(min_size=1, max_size=8))] = draw(_VALUES)
    return event


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_events())
@example({**EVENT, "event_time": 1.0})
@example({**EVENT, "event_time": 2**63})
@example({**EVENT, "schema_version": 2, "referrer_domain": "z" * 254})
def test_fuzz_same_verdict_as_the_reference(event):
    assert collector_accepts(event) == reference_accepts(event), event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_arbitrary_bytes_never_raise(raw):
    result = validation.decode(raw)
    assert isinstance(result, Rejection) or hasattr(result, "event_type")
    if isinstance(result, Rejection):
        assert result.reason in REASONS and result.message


def test_float_precision_edge():
    # 2**53 + 1 survives as an int (no float round-trip anywhere on the path).
    event = {**EVENT, "event_time": 2**53 + 1}
    decoded = validation.decode(json.dumps(event).encode())
    assert decoded.event_time == 2**53 + 1
    assert msgspec.json.decode(validation.encode(decoded))["event_time"] == 2**53 + 1
