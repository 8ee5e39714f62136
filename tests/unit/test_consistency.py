"""Every Kafka sink agrees with the Pinot table that reads it: topic, columns, types, time column
and primary key (= record key), for every environment."""

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
        out[m.group(1)] = {"columns": cols, "options": opts}
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
        assert spec.table_config["segmentsConfig"]["timeColumnName"] in sink["columns"]
        assert sink["options"]["key.fields"].split(";") == spec.schema["primaryKeyColumns"]
        assert stream["stream.kafka.broker.list"] == env.kafka.bootstrap_servers
        assert stream["stream.kafka.isolation.level"] == "read_committed"
        assert sink["options"]["sink.delivery-guarantee"] == "exactly-once"
        if "upsertConfig" in spec.table_config:
            assert spec.table_config["routing"]["instanceSelectorType"] == "strictReplicaGroup"
            assert spec.table_config["upsertConfig"]["comparisonColumn"] in sink["columns"]


def test_sql_objects_one_per_file():
    for path in SQL_DIR.rglob("*.sql"):
        if path.parent.name in ("jobs", "macros"):
            continue
        text = path.read_text()
        created = r"^CREATE (TABLE|TEMPORARY VIEW|VIEW|TEMPORARY SYSTEM FUNCTION)"
        assert len(re.findall(created, text, re.M)) == 1, path
        assert re.search(rf"{created} {path.stem}\b", text, re.M), f"{path}: object must be named like its file"
        assert re.match(rf"-- {path.stem}: ", text), f"{path}: must start with a header comment naming it"
