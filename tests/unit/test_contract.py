"""The event contract: the schemas, the evolution rule between versions, and the source table
that must read every version."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adagg.contract import EVENT_TYPES, billing_key, billing_key_of, key_part, schema, validate, versions
from adagg.paths import SQL_DIR
from adagg.sql import templates

EVENT = {
    "schema_version": 1, "event_id": "e-1", "event_type": "click", "event_time": 1_767_225_601_234,
    "ad_id": "ad-1", "campaign_id": "camp-0001", "advertiser_id": "adv-001", "user_id": "u-1",
    "ip": "23.32.0.5", "user_agent": "Mozilla/5.0", "placement_id": "plc-001", "publisher_id": "pub-01",
    "cost_micros": 250_000,
}
JSON_TO_FLINK = {"string": "STRING", "integer": "BIGINT"}


def test_every_version_is_a_valid_json_schema():
    assert versions() == list(range(1, len(versions()) + 1)) and len(versions()) >= 2
    for v in versions():
        jsonschema.Draft202012Validator.check_schema(schema(v))
        assert schema(v)["properties"]["schema_version"] == {"const": v}
        assert schema(v)["additionalProperties"] is False
        assert set(schema(v)["properties"]["event_type"]["enum"]) == set(EVENT_TYPES)


@pytest.mark.parametrize("old", versions()[:-1])
def test_a_new_version_only_adds_optional_fields(old):
    """The evolution rule: nothing removed, renamed, retyped or newly required."""
    a, b = schema(old), schema(old + 1)
    added = b["properties"].keys() - a["properties"].keys()
    assert a["properties"].keys() <= b["properties"].keys(), "a field was removed or renamed"
    for name, spec in a["properties"].items():
        if name != "schema_version":
            assert b["properties"][name] == spec, f"{name} changed between v{old} and v{old + 1}"
    assert b["required"] == a["required"], "required fields changed"
    assert added and not added & set(b["required"])


def test_source_table_reads_the_union_of_all_versions():
    ddl = (SQL_DIR / "sources" / "src_ad_events_raw.sql").read_text()
    columns = dict(re.findall(r"^  (\w+) (STRING|BIGINT|INT),?$", ddl, re.M))
    # The one column no contract version has: set on the collector's heartbeats (collector/heartbeat.py).
    assert columns.pop("heartbeat") == "STRING"
    fields = {}
    for v in versions():
        fields |= schema(v)["properties"]
    assert set(columns) == set(fields)
    for name, spec in fields.items():
        expected = "INT" if name == "schema_version" else JSON_TO_FLINK[spec.get("type", "string")]  # enum: string
        assert columns[name] == expected, name


def test_valid_events_of_each_version():
    assert validate(EVENT) == []
    v2 = {**EVENT, "schema_version": 2, "referrer_domain": "news.example"}
    assert validate(v2) == []
    assert validate({**EVENT, "schema_version": 2}) == []  # the v2 field is optional
    conversion = {**EVENT, "event_type": "conversion", "cost_micros": 0, "conversion_value_micros": 9_000_000}
    assert validate(conversion) == []


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 3}, "schema_version: unknown version 3"),
    ({"schema_version": "1"}, "schema_version: unknown version '1'"),
    ({"event_type": "view"}, "event_type: 'view' is not one of"),
    ({"event_time": 1.5}, "event_time: 1.5 is not of type 'integer'"),
    ({"cost_micros": -1}, "cost_micros: -1 is less than the minimum of 0"),
    ({"ip": "999.1.1.1"}, "ip: '999.1.1.1' is not valid under any of the given schemas"),
    ({"referrer_domain": "x.example"}, "event: Additional properties are not allowed"),  # v2 field on v1
    ({"ad_id": "a" * 65}, "ad_id: 'aaaa"),
])
def test_invalid_events_are_named_clearly(change, message):
    errors = validate({**EVENT, **change})
    assert errors and any(e.startswith(message) for e in errors), errors


def test_missing_field_and_non_object():
    event = copy.deepcopy(EVENT)
    del event["user_id"]
    assert validate(event) == ["event: 'user_id' is a required property"]
    assert validate(["not", "an", "object"]) == ["event: must be a JSON object"]


def test_billing_key_buckets_per_event_type():
    buckets = {"impression": 60_000, "click": 60_000, "conversion": 3_600_000}
    assert billing_key(EVENT, buckets) == "ad-1|u-1|click|1767225600000"
    later = {**EVENT, "event_time": EVENT["event_time"] + 58_000}
    assert billing_key(later, buckets) == billing_key(EVENT, buckets)
    conversion = {**EVENT, "event_type": "conversion", "event_time": EVENT["event_time"] + 3_000_000}
    assert billing_key(conversion, buckets) == "ad-1|u-1|conversion|1767225600000"


BUCKETS = {"impression": 60_000, "click": 60_000, "conversion": 3_600_000}
# Ids as the contract allows them: any unicode (astral plane, controls, the separator, the escape
# character, quotes) up to the schema's maximum length.
TRICKY = st.sampled_from(["|", "\\", "\x1f", "'", '"', "a", "é", "广", "🚀", "ع", "\x00"])
IDS = st.one_of(st.text(min_size=1, max_size=64), st.lists(TRICKY, min_size=1, max_size=64).map("".join))
USERS = st.one_of(st.text(min_size=1, max_size=128), st.lists(TRICKY, min_size=1, max_size=128).map("".join))


def split_billing_key(key: str) -> tuple[str, str, str, int]:
    """The billing key read back into (ad_id, user_id, event_type, bucket start): an unescaped '|'
    separates, a backslash takes the next character as it is. That it reads back is what makes
    the encoding injective."""
    parts, current, chars = [], [], iter(key)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars))
        elif ch == "|":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    ad, user, event_type, bucket = [*parts, "".join(current)]
    return ad, user, event_type, int(bucket)


def test_billing_keys_of_ids_holding_the_separator_differ():
    """Defect 2 of issue 20: a plain '|' join gave ('a|b', 'c') and ('a', 'b|c') one key, so the
    second billable click was never billed."""
    t = EVENT["event_time"]
    assert billing_key_of("a|b", "c", "click", t, BUCKETS) != billing_key_of("a", "b|c", "click", t, BUCKETS)
    assert billing_key_of("a\\", "|b", "click", t, BUCKETS) != billing_key_of("a\\|", "b", "click", t, BUCKETS)
    # Ordinary ids read as before.
    assert billing_key_of("ad-0001", "user-1", "click", 1_699_999_999_999, BUCKETS) == "ad-0001|user-1|click|1699999980000"
    assert billing_key_of("a|b", "c\\d", "click", t, BUCKETS) == "a\\|b|c\\\\d|click|1767225600000"


@settings(max_examples=500, deadline=None)
@given(IDS, USERS, st.sampled_from(EVENT_TYPES), st.integers(0, 2**53))
def test_a_billing_key_reads_back_into_its_parts(ad_id, user_id, event_type, event_time):
    key = billing_key_of(ad_id, user_id, event_type, event_time, BUCKETS)
    bucket = event_time - event_time % BUCKETS[event_type]
    assert split_billing_key(key) == (ad_id, user_id, event_type, bucket)


@settings(max_examples=500, deadline=None)
@given(st.tuples(IDS, USERS, st.sampled_from(EVENT_TYPES)), st.tuples(IDS, USERS, st.sampled_from(EVENT_TYPES)),
       st.sampled_from([0, 60_000, 3_600_000]))
def test_distinct_tuples_never_share_a_billing_key(a, b, time):
    key_a, key_b = (billing_key_of(*x, 1_767_225_600_000 + time, BUCKETS) for x in (a, b))
    assert (key_a == key_b) == (a == b)


def _sql_replacements() -> list[tuple[str, str]]:
    """The (search, replacement) literals of macros/keys.sql key_part, in the order SQL applies
    them (the inner REPLACE first); Flink SQL literals escape only a quote, by doubling it."""
    sql = templates().from_string('{% from "macros/keys.sql" import key_part %}{{ key_part("x") }}').render()
    literal = r"'((?:[^']|'')*)'"
    m = re.fullmatch(rf"REPLACE\(REPLACE\(x, {literal}, {literal}\), {literal}, {literal}\)", sql)
    assert m, sql
    a, b, c, d = (g.replace("''", "'") for g in m.groups())
    return [(a, b), (c, d)]


@settings(max_examples=300, deadline=None)
@given(USERS)
def test_the_sql_key_part_replaces_what_python_replaces(value):
    """The SQL text of macros/keys.sql does, replacement by replacement, what contract.key_part
    does (tests/integration/test_views.py runs the SQL itself on Flink against the same keys)."""
    out = value
    for search, replacement in _sql_replacements():
        out = out.replace(search, replacement)
    assert out == key_part(value)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(schema(2)["properties"]) + ["junk"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=80), st.floats(allow_nan=False),
                                 st.booleans(), st.lists(st.integers(), max_size=2))))
def test_validate_never_raises_and_explains_every_rejection(event):
    errors = validate(event)
    assert isinstance(errors, list) and all(isinstance(e, str) and ": " in e for e in errors)
