"""Every Kafka sink agrees with the Pinot table that reads it: topic, columns, types, time column
and primary key (= record key), for every environment."""

import json
import re

import pytest

from adagg import env as envs
from adagg.paths import SQL_DIR
from adagg.pinot import schema_columns, tables
from adagg.sql import marts, render, split_statements

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


# Tables whose topic no Flink sink writes, with that topic: Python code writes it (and its own test
# checks the columns: here for reconciliations, in test_collector_parts for the collector's dead letters).
WRITTEN_BY_PYTHON = {"reconciliations": lambda env: env.topics.reconciliations.name,
                     "dead_letters": lambda env: env.topics.dlq.name}


@pytest.mark.parametrize("env_name", envs.names())
def test_every_pinot_table_matches_its_sink(env_name):
    env = envs.load(env_name)
    sinks = sink_tables(render(env_name))
    specs = [spec for spec in tables(env) if spec.name not in WRITTEN_BY_PYTHON]
    assert specs, "no Pinot tables found"
    for spec in specs:
        stream = spec.table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
        topic = stream["stream.kafka.topic.name"]
        matching = [s for s in sinks.values() if s["options"].get("topic") == topic]
        assert len(matching) == 1, f"{spec.name}: no single Flink sink writes topic {topic}"
        sink = matching[0]
        stamped = {t["columnName"]: t["transformFunction"] for t in spec.table_config["ingestionConfig"].get(
            "transformConfigs", [])}
        assert stamped in ({}, {"ingested_at_ms": "now()"})  # the only column Pinot computes: when it ingested the row
        assert schema_columns(spec.schema) == {c: FLINK_TO_PINOT[t] for c, t in sink["columns"].items()} | {
            c: "LONG" for c in stamped}
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
    assert written | {WRITTEN_BY_PYTHON[name](env) for name in WRITTEN_BY_PYTHON} == read


@pytest.mark.parametrize("env_name", envs.names())
def test_the_reconciliation_history_table_holds_what_reconcile_writes(env_name):
    """pinot/reconciliations/ against reconcile.history.COLUMNS, the records it publishes; append-only
    (every pass is kept) and read_committed like every other table."""
    from reconcile.history import COLUMNS

    spec = next(t for t in tables(envs.load(env_name)) if t.name == "reconciliations")
    assert schema_columns(spec.schema) == COLUMNS
    assert "upsertConfig" not in spec.table_config and "primaryKeyColumns" not in spec.schema
    assert spec.table_config["segmentsConfig"]["timeColumnName"] == "run_at_ms"


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


# ---- every sink's record key is its view's grain (issue 20, defect 3) ----
#
# A record key coarser than the rows it keys makes Pinot's upsert keep one row of several: an ad
# seen with two campaigns in one minute had two rows of mart_ad_minute under one key. The grain
# of each mart is read from its SQL (the GROUP BY, a window rank's partition and rank, or a
# dedup's partition), through the views it reads, and held equal to the sink's key and to the
# Pinot table's primary key.

def _masked(text: str) -> str:
    """The text with string literals and everything inside parentheses blanked (same length), so
    that keywords found in it are at the top level."""
    out, depth, quoted = [], 0, False
    for ch in text:
        if quoted:
            quoted = ch != "'"
            out.append(" ")
        elif ch == "'":
            quoted = True
            out.append(" ")
        elif ch == "(":
            depth += 1
            out.append(" ")
        elif ch == ")":
            depth -= 1
            out.append(" ")
        else:
            out.append(ch if depth == 0 else " ")
    return "".join(out)


def _clauses(body: str) -> dict[str, str]:
    """The top-level SELECT list, FROM, WHERE and GROUP BY of a view's query."""
    masked = _masked(body)
    marks = sorted((m.start(), m.end(), m.group(0)) for m in re.finditer(r"\b(SELECT|FROM|WHERE|GROUP BY|UNION ALL)\b", masked))
    assert [m[2] for m in marks][:2] == ["SELECT", "FROM"] and "UNION ALL" not in [m[2] for m in marks], body[:200]
    return {word: body[end:(marks[i + 1][0] if i + 1 < len(marks) else len(body))].strip()
            for i, (_, end, word) in enumerate(marks)}


def _split(text: str) -> list[str]:
    """Comma-separated items at the top level."""
    masked, items, start = _masked(text), [], 0
    for i, ch in enumerate(masked):
        if ch == ",":
            items.append(text[start:i].strip())
            start = i + 1
    return [*items, text[start:].strip()]


def _columns(expression: str) -> set[str]:
    """The columns an expression reads: its lowercase words outside string literals (keywords and
    functions are uppercase, by the project's SQL style)."""
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", re.sub(r"'(?:[^']|'')*'", "''", expression)))


def _select_items(select: str) -> list[tuple[str, str]]:
    """(expression, output name) of each SELECT item; '*' passes every column through."""
    items = []
    for item in _split(select):
        m = re.fullmatch(r"(.*?)\s+AS\s+(\w+)", item, re.S)
        items.append((m.group(1).strip(), m.group(2)) if m else (item, item))
    return items


def _output_name(items: list[tuple[str, str]], expression: str, view: str) -> str:
    """The output column holding an input expression: the item that is exactly it, else the one
    computed from that column alone (a window bound turned into epoch ms)."""
    if items == [("*", "*")]:
        return expression
    exact = [name for expr, name in items if " ".join(expr.split()) == " ".join(expression.split())]
    derived = [name for expr, name in items if _columns(expr) == _columns(expression) and _columns(expr)]
    found = exact or derived
    assert len(found) == 1, f"{view}: the grain column {expression!r} is not one column of its output ({found})"
    return found[0]


def _grain_terms(terms: list[str]) -> list[str]:
    """A window's end and time follow from its start (every window has a fixed size)."""
    if {"window_end", "window_time"} & set(terms):
        assert "window_start" in terms, terms
    return [t for t in terms if t not in ("window_end", "window_time")]


def grain(views: dict[str, str], view: str) -> set[str]:
    """The output columns of `view` that identify one of its rows."""
    c = _clauses(views[view])
    items = _select_items(c["SELECT"])
    if "GROUP BY" in c:
        terms = []
        for term in _split(c["GROUP BY"]):
            terms += sorted(_columns(term)) if term.startswith("GROUPING SETS") else [term]
        return {_output_name(items, t, view) for t in _grain_terms(terms)}
    ranked = re.search(r"ROW_NUMBER\(\) OVER \(\s*PARTITION BY (.*?)\s+ORDER BY .*?\)\s+AS (\w+)", c["FROM"], re.S)
    if ranked:
        partition, rank = _split(ranked.group(1)), ranked.group(2)
        kept = re.fullmatch(rf"{rank} (=|<=) (\d+)", c.get("WHERE", ""))
        assert kept, f"{view}: a rank without a filter on it"
        dedup = kept.group(1) == "=" and kept.group(2) == "1"  # first per partition: the partition is the grain
        return {_output_name(items, t, view) for t in _grain_terms(partition + ([] if dedup else [rank]))}
    source = re.fullmatch(r"(?:TABLE\(\s*\w+\(TABLE )?(\w+).*", c["FROM"], re.S).group(1)
    return {_output_name(items, column, view) for column in grain(views, source)}


def _views(sql: str) -> dict[str, str]:
    out = {}
    for stmt in split_statements(sql):
        m = re.match(r"CREATE TEMPORARY VIEW (\w+) AS\n(.*)", stmt, re.S)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_grains_read_from_the_sql():
    views = _views(render("local"))
    assert grain(views, "int_ad_minute") == {"minute_start", "ad_id", "campaign_id", "advertiser_id", "vertical",
                                             "country", "device_type"}
    assert grain(views, "int_ad_scope_minute") == {"window_start", "country_scope", "ad_id"}
    assert grain(views, "int_events_enriched") == {"event_id"}
    assert grain(views, "int_events_billable") == {"billing_key"}
    assert grain(views, "mart_top_ads_minute") == {"window_start_ms", "country_scope", "ad_rank"}


@pytest.mark.parametrize("env_name", envs.names())
def test_every_sink_key_is_its_views_grain_and_the_pinot_primary_key(env_name):
    sql = render(env_name)
    views, sinks = _views(sql), sink_tables(sql)
    by_topic = {spec.table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
                ["stream.kafka.topic.name"]: spec for spec in tables(envs.load(env_name))}
    for mart in marts():
        sink = sinks[f"snk_{mart}"]
        want = grain(views, f"mart_{mart}")
        assert sink["key"] and len(set(sink["key"])) == len(sink["key"])
        assert set(sink["key"]) == want, f"snk_{mart}: record key {sink['key']}, but mart_{mart}'s grain is {sorted(want)}"
        spec = by_topic[sink["options"]["topic"]]
        if "upsertConfig" in spec.table_config:
            assert spec.schema["primaryKeyColumns"] == sink["key"], spec.name
        else:  # append-only: no key to lose rows under
            assert spec.schema.get("primaryKeyColumns") in (None, sink["key"]), spec.name
    # The late events are keyed by event_id, coarser than their grain (one delivery), on purpose:
    # their table is append-only, so every delivery stays a row.
    assert sinks["snk_late_events"]["key"] == ["event_id"]
    assert "upsertConfig" not in by_topic[sinks["snk_late_events"]["options"]["topic"]].table_config


def test_ids_and_the_billing_key_fit_pinots_string_limit():
    """Pinot 0.11 cuts a string longer than its column's maxLength (512 UTF-16 units unless the
    schema says otherwise) on ingestion: the longest id and billing key the contract allows fit."""
    from adagg.contract import billing_key_of, max_length

    def units(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    astral = "\U0001F680"
    longest = {name: astral * max_length(name) for name in ("event_id", "ad_id", "campaign_id", "advertiser_id",
                                                            "user_id")}
    key = billing_key_of("|" * max_length("ad_id"), "|" * max_length("user_id"), "conversion", 2**53,
                         {"conversion": 1})
    for spec in tables(envs.load("local")):
        for field in spec.schema["dimensionFieldSpecs"]:
            limit = field.get("maxLength", 512)
            if field["name"] in longest:
                assert units(longest[field["name"]]) <= limit, (spec.name, field["name"])
            if field["name"] == "billing_key":
                assert units(key) <= limit, (spec.name, units(key))
