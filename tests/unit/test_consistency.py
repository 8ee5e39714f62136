"""Every Kafka sink agrees with the Pinot table that reads it: topic, columns, types, time column
and primary key (= record key), for every environment."""

import json
import re

import pytest

from adagg import env as envs
from adagg.paths import SQL_DIR
from adagg.pinot import tables
from adagg.sql import render, split_statements

FLINK_TO_PINOT = {"STRING": "STRING", "BIGINT": "LONG", "INT": "INT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN"}


def sink_tables(sql: str) -> dict[str, dict]:
    """Parse the rendered CREATE TABLE statements: columns, topic, key fields."""
    out = {}
    for stmt in split_statements(sql):
        m = re.match(r"CREATE TABLE (\w+) \((.*?)\n\) WITH \((.*)\)", stmt, re.S)
        if not m:
            continue
        cols = {}
        for line in m.group(2).splitlines():
            parts = line.strip().rstrip(",").split()
            if len(parts) == 2 and parts[0].isidentifier():
                cols[parts[0]] = parts[1]
        opts = dict(re.findall(r"'([^']+)' = '([^']*)'", m.group(3)))
        pk = re.search(r"PRIMARY KEY \(([^)]*)\)", m.group(2))
        key = opts.get("key.fields", "").split(";") if "key.fields" in opts else None
        out[m.group(1)] = {"columns": cols, "options": opts,
                           "key": key or ([c.strip() for c in pk.group(1).split(",")] if pk else None)}
    return out


@pytest.mark.parametrize("env_name", envs.names())
def test_every_pinot_table_matches_its_sink(env_name):
    env = envs.load(env_name)
    sinks = sink_tables(render(env_name))
    specs = tables(env)
    assert specs, "no Pinot tables found"
    for spec in specs:
        stream = spec.table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
        topic = stream["stream.kafka.topic.name"]
        matching = [s for s in sinks.values() if s["options"].get("topic") == topic]
        assert len(matching) == 1, f"{spec.name}: no single Flink sink writes topic {topic}"
        sink = matching[0]
        schema_cols = {f["name"]: f["dataType"] for key in ("dimensionFieldSpecs", "metricFieldSpecs", "dateTimeFieldSpecs")
                       for f in spec.schema.get(key, [])}
        assert schema_cols == {c: FLINK_TO_PINOT[t] for c, t in sink["columns"].items()}
        time_column = spec.table_config["segmentsConfig"]["timeColumnName"]
        assert time_column in sink["columns"]
        assert [f["name"] for f in spec.schema["dateTimeFieldSpecs"]] == [time_column]
        assert stream["stream.kafka.broker.list"] == env.kafka.bootstrap_servers
        assert stream["stream.kafka.isolation.level"] == "read_committed"
        if sink["options"]["connector"] == "kafka":
            assert sink["options"]["sink.delivery-guarantee"] == "exactly-once"
        else:  # the live tier's changelog: each key's newest computation wins
            assert sink["options"]["connector"] == "upsert-kafka"
            assert spec.table_config["upsertConfig"]["comparisonColumn"] == "computed_at_ms"
        if "window_start_ms" in sink["columns"]:  # an aggregate: upsert on its window key
            assert sink["key"] == spec.schema["primaryKeyColumns"]
            assert spec.table_config["upsertConfig"]["mode"] == "FULL"
            assert spec.table_config["upsertConfig"]["hashFunction"] == "MURMUR3"  # keys on the server heap
            assert spec.table_config["routing"]["instanceSelectorType"] == "strictReplicaGroup"
            assert spec.table_config["upsertConfig"]["comparisonColumn"] in sink["columns"]
        else:  # events: append-only, keyed by event_id, a retention of their own
            assert sink["key"] == ["event_id"] and "upsertConfig" not in spec.table_config
        indexed = spec.table_config["tableIndexConfig"]
        assert set(indexed["invertedIndexColumns"]) | set(indexed["rangeIndexColumns"]) <= set(sink["columns"])


@pytest.mark.parametrize("env_name", envs.names())
def test_every_output_topic_has_a_pinot_table(env_name):
    env = envs.load(env_name)
    sinks = sink_tables(render(env_name))
    read = {spec.table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
            ["stream.kafka.topic.name"] for spec in tables(env)}
    written = {s["options"]["topic"] for name, s in sinks.items() if name.startswith("snk_")}
    assert written == read


def test_prod_tables_hold_no_secret(monkeypatch):
    monkeypatch.setenv("ADAGG_KAFKA_PASSWORD", "hunter2-secret")
    text = json.dumps([spec.table_config for spec in tables(envs.load("prod"))])
    assert "hunter2" not in text and "${file:/etc/adagg/pinot-kafka.properties:password}" in text


def test_sql_objects_one_per_file():
    for path in SQL_DIR.rglob("*.sql"):
        if path.parent.name in ("jobs", "macros"):
            continue
        text = path.read_text()
        created = r"^CREATE (TABLE|TEMPORARY VIEW|VIEW|TEMPORARY SYSTEM FUNCTION)"
        assert len(re.findall(created, text, re.M)) == 1, path
        assert re.search(rf"{created} {path.stem}\b", text, re.M), f"{path}: object must be named like its file"
        assert re.match(rf"-- {path.stem}: ", text), f"{path}: must start with a header comment naming it"
