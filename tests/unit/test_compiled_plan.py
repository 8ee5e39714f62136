"""adagg/compiled_plan.py on small plans shaped like Flink's (COMPILE PLAN JSON): which state an
upgrade carries over, and the ids the new plan gets."""

from __future__ import annotations

import copy

import pytest

from adagg.compiled_plan import carry_over, explain, kind

pytestmark = pytest.mark.unit


def node(id_: int, type_: str, description: str, **content) -> dict:
    return {"id": id_, "type": f"stream-exec-{type_}_1", **content, "description": description}


def edge(src: int, dst: int) -> dict:
    return {"source": src, "target": dst, "shuffle": {"type": "FORWARD"}, "shuffleMode": "PIPELINED"}


def sink(id_: int, table: str) -> dict:
    return node(id_, "sink", f"Sink(table=[default_catalog.default_database.{table}], fields=[a])",
                dynamicTableSink={"table": table})


def base_plan() -> dict:
    """source -> calc -> dedup(key) -> window agg -> calc('v1' lineage) -> sink_a
                                    \\-> calc('v1') -> sink_b"""
    return {"flinkVersion": "2.2", "nodes": [
        node(1, "table-source-scan", "TableSourceScan(table=[raw])", scanTableSource={"table": "raw"}),
        node(2, "calc", "Calc(select=[key])", projection=["key"]),
        node(3, "exchange", "Exchange(distribution=[hash[key]])", inputProperties=[{"hash": [0]}]),
        node(4, "deduplicate", "Deduplicate(key=[key])", uniqueKeys=[0]),
        node(5, "global-window-aggregate", "GlobalWindowAggregate(groupBy=[ad])", grouping=[1]),
        node(6, "calc", "Calc(select=['v1' AS version])", projection=["v1"]),
        sink(7, "snk_a"),
        node(8, "calc", "Calc(select=['v1' AS version, b])", projection=["v1", "b"]),
        sink(9, "snk_b"),
    ], "edges": [edge(1, 2), edge(2, 3), edge(3, 4), edge(4, 5), edge(5, 6), edge(6, 7), edge(4, 8), edge(8, 9)]}


def with_version(plan: dict, version: str) -> dict:
    """Every change to sql/ changes the lineage literal computed just before each sink."""
    out = copy.deepcopy(plan)
    for n in out["nodes"]:
        if n["type"] == "stream-exec-calc_1" and "v1" in n.get("projection", []):
            n["projection"] = [version if p == "v1" else p for p in n["projection"]]
            n["description"] = n["description"].replace("'v1'", f"'{version}'")
    return out


def test_an_unchanged_plan_keeps_every_state_and_every_id():
    result = carry_over(base_plan(), base_plan())
    assert result.compatible and not result.added and not result.changed
    assert [kind(n) for n in result.kept] == ["table-source-scan", "deduplicate", "global-window-aggregate",
                                              "sink", "sink"]
    assert result.plan == base_plan()


def test_a_new_sink_numbered_in_the_middle_gets_new_ids_and_the_old_nodes_keep_theirs():
    """A fresh compile numbers a new mart's nodes where the planner meets them (here 6-7), pushing
    the old ones up: restoring would find none of their state. Carried over, the old nodes get
    their ids back and the new ones ids above every old one."""
    old = base_plan()
    fresh = with_version(base_plan(), "v2")
    shift = {i: i + 2 if i >= 6 else i for i in range(1, 10)}
    for n in fresh["nodes"]:
        n["id"] = shift[n["id"]]
    for e in fresh["edges"]:
        e["source"], e["target"] = shift[e["source"]], shift[e["target"]]
    fresh["nodes"][5:5] = [node(6, "calc", "Calc(select=['v2' AS version, c])", projection=["v2", "c"]),
                           sink(7, "snk_new")]
    fresh["edges"] += [edge(5, 6), edge(6, 7)]

    result = carry_over(old, fresh)
    assert result.compatible, explain(result)
    assert sorted(n["id"] for n in result.added) == [10, 11]
    by_desc = {n["description"]: n["id"] for n in result.plan["nodes"]}
    assert by_desc["Deduplicate(key=[key])"] == 4 and by_desc["GlobalWindowAggregate(groupBy=[ad])"] == 5
    assert by_desc["Sink(table=[default_catalog.default_database.snk_a], fields=[a])"] == 7
    assert by_desc["Sink(table=[default_catalog.default_database.snk_b], fields=[a])"] == 9
    assert by_desc["Sink(table=[default_catalog.default_database.snk_new], fields=[a])"] == 11
    assert {(e["source"], e["target"]) for e in result.plan["edges"]} == {
        (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (4, 8), (8, 9), (5, 10), (10, 11)}
    text = explain(result)
    assert "compatible: the state of all 5 stateful operators carries over" in text and "snk_new" in text


def test_a_changed_key_upstream_of_a_dedup_loses_its_state_and_everything_after_it():
    """The dedup itself reads the same (field 0), but what field 0 holds changed: its state holds
    keys of the old meaning. Refused, naming the dedup and where the plans first differ."""
    new = with_version(base_plan(), "v2")
    new["nodes"][1]["projection"] = ["CONCAT(key, type)"]
    new["nodes"][1]["description"] = "Calc(select=[CONCAT(key, type)])"
    result = carry_over(base_plan(), new)
    assert not result.compatible
    assert [kind(n) for n in result.lost] == ["deduplicate", "global-window-aggregate"]
    assert [kind(n) for n in result.kept] == ["table-source-scan", "sink", "sink"]  # a sink's own state is kept
    text = explain(result)
    assert text.startswith("incompatible: 2 of the running job's 5 stateful operators")
    assert "node 4 Deduplicate(key=[key])" in text and "feeds: snk_a, snk_b" in text
    first = text.split("first differ")[1]
    assert "node 2 Calc(select=[key])" in first and "now node 2 Calc(select=[CONCAT(key, type)])" in first
    assert "differs in: description, projection" in first
    assert "Calc(select=['v1'" not in first  # the lineage literal is downstream of the change, not a cause


def test_a_changed_sink_definition_loses_the_sinks_state():
    new = base_plan()
    new["nodes"][6]["dynamicTableSink"] = {"table": "snk_a", "options": {"topic": "other"}}
    result = carry_over(base_plan(), new)
    assert [n["id"] for n in result.lost] == [7]
    assert "differs in: dynamicTableSink" in explain(result)


def test_a_removed_sink_is_reported_lost():
    """Flink refuses a savepoint with state for an operator the new job lacks."""
    new = base_plan()
    new["nodes"] = [n for n in new["nodes"] if n["id"] not in (8, 9)]
    new["edges"] = [e for e in new["edges"] if e["target"] not in (8, 9)]
    result = carry_over(base_plan(), new)
    assert [n["id"] for n in result.lost] == [9]
    assert "no counterpart in the new plan" in explain(result)


def test_twin_nodes_are_paired_in_plan_order():
    old = base_plan()
    old["nodes"].append(node(10, "calc", "Calc(select=['v1' AS version, b])", projection=["v1", "b"]))
    old["nodes"].append(sink(11, "snk_b2"))
    old["edges"] += [edge(4, 10), edge(10, 11)]
    result = carry_over(old, copy.deepcopy(old))
    assert result.compatible and result.plan == old


def test_an_unknown_node_kind_counts_as_stateful():
    old = base_plan()
    old["nodes"][1]["type"] = "stream-exec-some-future-operator_1"
    new = copy.deepcopy(old)
    new["nodes"][1]["description"] = "changed"
    result = carry_over(old, new)
    assert 2 in [n["id"] for n in result.lost]
