"""Each SQL view on the Flink mini-cluster against hand-written fixture inputs and outputs.

The fixture events (fixtures/views.yaml) go to a one-partition raw topic on a real Kafka; the job's
statements are run up to its views, with the source bounded and the watermark emitted on every
event, so each view's result is deterministic. Every view is then queried and compared with the
rows written out by hand in the fixture.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer
from pyflink.table.types import RowType

from adagg.contract import billing_key, billing_key_of, validate
from adagg.env import Namespace, bucket_ms, load
from adagg.kafka_io import ensure_topics
from adagg.setup import connector_jars
from adagg.sql import render, templates
from adagg.traffic_catalog import USER_AGENTS
from pyflink_jobs.streaming_job import build_table_env, run_script
from tests.integration.conftest import isolated_env

FIXTURE = yaml.safe_load((Path(__file__).parent / "fixtures" / "views.yaml").read_text())
T0 = FIXTURE["t0"]
MS_COLUMNS = ("window_start_ms", "window_end_ms", "max_received_at_ms")
COSTLESS = {"conversion_value_micros"}


def fixture_events(env) -> list[dict]:
    events = []
    for row in FIXTURE["events"]:
        eid, etype, ad, user, agent, ip, t, cost, *extra = row
        campaign, advertiser = FIXTURE["ads"][ad]
        event = {"schema_version": 1, "event_id": eid, "event_type": etype, "event_time": T0 + t,
                 "ad_id": ad, "campaign_id": campaign, "advertiser_id": advertiser, "user_id": user,
                 "ip": ip, "user_agent": USER_AGENTS[FIXTURE["agents"][agent]].user_agent,
                 "placement_id": "plc-001", "publisher_id": "pub-01", "cost_micros": cost}
        event.update(extra[0] if extra else {})
        assert validate(event) == [], (eid, validate(event))
        events.append(event)
    return events


def absolute(row: dict) -> dict:
    """Fixture offsets -> epoch ms: window bounds, and the bucket at the end of a billing key."""
    out = dict(row)
    for col in MS_COLUMNS:
        if out.get(col) is not None:
            out[col] += T0
    if "billing_key" in out:
        *head, bucket = out["billing_key"].split("|")
        out["billing_key"] = "|".join([*head, str(T0 + int(bucket))])
    return out


@pytest.fixture(scope="module")
def t_env(kafka):
    run = f"views{uuid.uuid4().hex[:8]}"
    env = isolated_env(run, **{"topics.raw.partitions": 1, "flink.raw_startup_mode": "earliest-offset",
                               "flink.watermark_emit": "on-event"})
    env.flink["raw_source_options"] = Namespace({"scan.bounded.mode": "latest-offset"})
    ensure_topics(env, say=lambda *_: None)
    buckets = bucket_ms(env)
    producer = KafkaProducer(bootstrap_servers=env.kafka.bootstrap_servers, acks="all")
    for event in fixture_events(env):
        # The collector's headers as it writes them (accepted 500 ms after the event time, here);
        # an event without them came "direct".
        source = FIXTURE["sources"].get(event["event_id"], FIXTURE["sources"]["default"])
        headers = [] if source is None else [("adagg-source", source.encode()),
                                             ("adagg-received-at", str(event["event_time"] + 500).encode())]
        producer.send(env.topics.raw.name, key=billing_key(event, buckets).encode(),
                      value=json.dumps(event).encode(), headers=headers, partition=0)
    producer.flush()
    producer.close()

    t_env = build_table_env(connector_jars())
    script = render(env)
    run_script(t_env, script[:script.index("EXECUTE STATEMENT SET")])  # every object, no INSERTs
    return t_env


def query(t_env, view: str) -> list[dict]:
    """The view's rows once the bounded job ends; for a changelog, the final row per key."""
    schema = t_env.from_path(view).get_schema()
    names = schema.get_field_names()
    # Time attributes do not cross the Python bridge, nor do nested rows with a NULL field: read
    # them as strings.
    columns = [f"CAST(`{n}` AS STRING) AS `{n}`" if "TIMESTAMP" in str(t) or isinstance(t, RowType) else f"`{n}`"
               for n, t in zip(names, schema.get_field_data_types())]
    result = t_env.execute_sql(f"SELECT {', '.join(columns)} FROM {view}")
    state: Counter = Counter()
    with result.collect() as rows:
        for row in rows:
            values = tuple(tuple(v) if isinstance(v, list) else v for v in row)  # arrays: hashable
            kind = row.get_row_kind().name
            state[values] += 1 if kind in ("INSERT", "UPDATE_AFTER") else -1
    assert all(n >= 0 for n in state.values()), f"{view}: retraction of a row never emitted"
    return [dict(zip(names, values)) for values, n in state.items() for _ in range(n)]


def project(rows: list[dict], columns: list[str]) -> Counter:
    return Counter(tuple(sorted((c, r.get(c)) for c in columns)) for r in rows)


@pytest.mark.parametrize("view", list(FIXTURE["expected"]))
def test_view_matches_fixture(t_env, view):
    expected = [absolute(r) for r in FIXTURE["expected"][view]]
    actual = query(t_env, view)
    # Compare on the columns the fixture names for every row, then each row on its own columns.
    assert len(actual) == len(expected), f"{view}: {len(actual)} rows, expected {len(expected)}"
    common = sorted(set.intersection(*(set(r) for r in expected)))
    assert project(actual, common) == project(expected, common)
    key = [c for c in common if c in ("event_id", "window_start_ms", "ad_id", "country", "device_type", "campaign_id",
                                      "country_scope", "ad_rank", "publisher_id", "source")]
    by_key = {tuple(r[c] for c in key): r for r in actual}
    for row in expected:
        got = by_key[tuple(row[c] for c in key)]
        assert {c: got[c] for c in row} == row, f"{view}: row {row}"
    if view.startswith("mart_") and view != "mart_events_enriched":
        tier = "live" if view.endswith("_live") else "final"
        assert {(r["tier"], r["version"]) for r in actual} == {(tier, 0 if tier == "live" else 1)}
        assert all(r["pipeline_version"] and r["computed_at_ms"] > T0 for r in actual)


def test_enrich_event_in_sql_equals_the_python_reference(t_env):
    """The SQL side of enrich_event's packed argument (macros/columns.sql enrichment_input) against
    udfs.enrichment.pack_input: odd inputs (NULL, '', the separator in every field) through the
    real UDF give exactly pack(enrich(...))."""
    from udfs import enrichment
    from tests.unit.test_udfs import ODD_INPUTS

    template = '{% from "macros/columns.sql" import enrichment_input %}' \
               '{{ enrichment_input("ip", "campaign_id", "user_agent") }}'
    argument = templates().from_string(template).render()

    def literal(value):
        return "CAST(NULL AS STRING)" if value is None else "'" + value.replace("'", "''") + "'"

    rows = ", ".join(f"({i}, {literal(ua)}, {literal(ip)}, {literal(c)})" for i, (ua, ip, c) in enumerate(ODD_INPUTS))
    result = t_env.execute_sql(f"SELECT k, enrich_event({argument}) FROM (VALUES {rows}) "
                               "AS t(k, user_agent, ip, campaign_id)")
    with result.collect() as collected:
        got = {row[0]: row[1] for row in collected}
    expected = {i: enrichment.pack(enrichment.enrich(*values)) for i, values in enumerate(ODD_INPUTS)}
    assert got == expected

    # And read back as the views do: split into an array (int_deliveries_enriched), each field by
    # name (enrichment_field), a valid event's '' reason as NULL: exactly unpack(pack(enrich(...))).
    fields = templates().from_string(
        '{% from "macros/columns.sql" import enrichment_field %}'
        '{% for name in names %}{{ enrichment_field("enrichment", name) }}, {% endfor %}').render(
        names=enrichment.FIELDS)
    result = t_env.execute_sql(f"SELECT {fields}k FROM (SELECT k, SPLIT(enrich_event({argument}), CHR(31)) AS "
                               f"enrichment FROM (VALUES {rows}) AS t(k, user_agent, ip, campaign_id))")
    with result.collect() as collected:
        read = {row[-1]: tuple(row[:-1]) for row in collected}
    assert read == {i: tuple(enrichment.unpack(packed)) for i, packed in expected.items()}


# Ids the contract allows: the separator and the escape character in every position, CHR(31),
# quotes, NUL, a newline, accents, CJK, an astral emoji, right-to-left text, maximum lengths.
TRICKY_IDS = [("a|b", "c"), ("a", "b|c"), ("a\\", "|b"), ("a\\|", "b"), ("|", "|"), ("\\", "\\"),
              ("x\x1fy", "it's \"q\""), ("\x00\n", "é广🚀עב"), ("|" * 64, "\\" * 128),
              ("🚀" * 64, "|\\" * 64), ("ad-0001", "user-1")]


def test_the_billing_key_in_sql_equals_the_python_reference(t_env):
    """macros/keys.sql billing_key on Flink against adagg.contract.billing_key_of: byte-identical
    strings for ids holding anything the contract allows (issue 20: a plain '|' join gave
    ('a|b', 'c') and ('a', 'b|c') one key)."""
    env = load("local")
    expression = templates().from_string('{% from "macros/keys.sql" import billing_key with context %}'
                                         "{{ billing_key('ad_id', 'user_id', 'event_type', 'event_time') }}").render(env=env)
    buckets = bucket_ms(env)
    cases = [(ad, user, event_type, T0 + 1234 + i * 61_000)
             for i, (ad, user) in enumerate(TRICKY_IDS) for event_type in ("impression", "click", "conversion")]

    def literal(value):
        return "'" + value.replace("'", "''") + "'"

    rows = ", ".join(f"({i}, {literal(ad)}, {literal(user)}, '{t}', CAST({ts} AS BIGINT))"
                     for i, (ad, user, t, ts) in enumerate(cases))
    result = t_env.execute_sql(f"SELECT k, {expression} FROM (VALUES {rows}) "
                               "AS v(k, ad_id, user_id, event_type, event_time)")
    with result.collect() as collected:
        got = {row[0]: row[1] for row in collected}
    assert got == {i: billing_key_of(*case, buckets) for i, case in enumerate(cases)}
    assert len(set(got.values())) == len(cases)


def test_the_json_key_format_writes_what_record_keys_writes(tmp_path):
    """Flink's JSON format (a sink's 'key.format' = 'json') against adagg.record_keys, which
    reconciliation keys its corrections with: the same bytes for every tricky id."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from adagg.record_keys import flink_json_key
    from reconcile.diff import KEY

    batch = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    batch.get_config().set("rest.bind-port", "0")
    batch.get_config().set("parallelism.default", "1")
    columns = ", ".join(f"{c} {'BIGINT' if c == 'window_start_ms' else 'STRING'}" for c in KEY)
    batch.execute_sql(f"CREATE TABLE keys_out ({columns}) WITH ('connector' = 'filesystem', "
                      f"'path' = '{tmp_path.as_uri()}', 'format' = 'json')")
    ids = [value for pair in TRICKY_IDS for value in pair] + ["\x7f\u2028/\b\x0b", "\uff01"]

    def literal(value):
        return "'" + value.replace("'", "''") + "'"

    rows = [{"window_start_ms": T0 + i, "ad_id": v, "country": "US", "device_type": "mobile",
             "campaign_id": v[::-1], "advertiser_id": "adv-001", "vertical": "retail"} for i, v in enumerate(ids)]
    values = ", ".join("(" + ", ".join(f"CAST({r[c]} AS BIGINT)" if c == "window_start_ms" else literal(r[c])
                                       for c in KEY) + ")" for r in rows)
    batch.execute_sql(f"INSERT INTO keys_out SELECT * FROM (VALUES {values}) AS v({', '.join(KEY)})").wait()
    written = [line for f in sorted(tmp_path.rglob("*")) if f.is_file() and not f.name.startswith(".")
               for line in f.read_bytes().splitlines()]
    assert sorted(written) == sorted(flink_json_key(r) for r in rows)
