"""Properties of the streaming job's plan (EXPLAIN JSON_EXECUTION_PLAN) that exact parallel runs rest on.

Three operators decide by arrival order: the partition watermark (stg_deliveries, a running maximum
per Kafka partition) and both dedups (first delivery per event, first valid delivery per billing
key). Their results are deterministic only if each key's records reach them in the order of its
raw-topic partition, and a Kafka partition is ordered while a shuffle between two keyed operators
is not: records of one key that pass different subtasks of an upstream keyed operator race. So each
of them must read the partition watermark's output over exactly one hash exchange (its own), and the
partition watermark must read the source over exactly one (by partition: its partition_key, one
distinct number per partition, adagg/keygroups.py). The plan is made locally; nothing is submitted.
"""

from __future__ import annotations

import re

import pytest

from adagg.env import load
from adagg.paths import REPO
from adagg.plan import Node, job_graph, upstream


@pytest.fixture(scope="module")
def graph() -> dict[int, Node]:
    return job_graph(load("local"))


# The partition watermark: the job's one OverAggregate (the planner names its computed key $n).
OVER = "OverAggregate(partitionBy=["


def one(graph: dict[int, Node], prefix: str) -> Node:
    """The one operator whose description (without its "[id]:" label) starts with prefix."""
    [node] = [n for n in graph.values() if re.sub(r"^\[\d+\]:", "", n.contents).startswith(prefix)]
    return node


def exchanges_up_to(graph: dict[int, Node], node: Node, stop: Node) -> list[str]:
    """The ship strategies on the one path from `stop` down to `node`, nearest first."""
    path, current = [], node
    while current.id != stop.id:
        assert len(current.inputs) == 1, f"{current.name} reads {len(current.inputs)} inputs"
        parent, strategy = current.inputs[0]
        path.append(strategy)
        current = graph[parent]
    return path


def test_the_partition_watermark_reads_the_source_by_partition(graph):
    over = one(graph, OVER)
    source = one(graph, "TableSourceScan(table=[[default_catalog, default_database, src_ad_events_raw")
    strategies = exchanges_up_to(graph, over, source)
    assert strategies[0] == "HASH" and set(strategies[1:]) == {"FORWARD"}, strategies


@pytest.mark.parametrize("key", ["event_id", "billing_key"])
def test_each_dedup_reads_deliveries_in_the_order_of_their_partition(graph, key):
    """Failed before the billing dedup read deliveries: it read the exact dedup's output, one more
    shuffle (by event_id) away, so two events of one billing key raced and either could bill."""
    dedup = one(graph, f"Deduplicate(keep=[FirstRow], key=[{key}]")
    over = one(graph, OVER)
    strategies = exchanges_up_to(graph, dedup, over)
    assert strategies[0] == "HASH" and set(strategies[1:]) == {"FORWARD"}, strategies


def test_the_late_split_follows_the_partition_watermark(graph):
    """Both halves of the split test the partition watermark, so they read the running maximum."""
    splits = [n for n in graph.values() if "CURRENT_WATERMARK" in n.contents]
    over = one(graph, OVER)
    assert len(splits) >= 2
    for split in splits:
        assert "partition_watermark" in split.contents
        assert over.id in {n.id for n, _ in upstream(graph, split.id)}


def test_every_operator_runs_at_the_environments_parallelism(graph):
    """All but the raw archive's partition committer, which the filesystem sink runs once, and the
    exactly-once writers of the aggregate outputs, which run at outputs.sink_parallelism."""
    env = load("local")
    outputs = {f.stem for f in (REPO / "sql" / "sinks").glob("*.sql")
               if re.search(r"exactly_once_sink\(output_topic\(", f.read_text())}
    aggregate_sinks = {n.name for n in graph.values() if n.name.split("[")[0] in outputs}
    assert len(outputs) == 7 and len(aggregate_sinks) == 2 * len(outputs)  # a Writer and a Committer each
    assert {n.parallelism for n in graph.values() if n.name in aggregate_sinks} == {env.outputs.sink_parallelism}
    single = {n.name for n in graph.values() if n.parallelism == 1} - aggregate_sinks
    assert single == {"PartitionCommitter", "end: Writer"}
    rest = aggregate_sinks | single
    assert {n.parallelism for n in graph.values() if n.name not in rest} == {env.flink.parallelism}


def test_the_live_tier_needs_no_upsert_materializer(graph):
    """Its GROUP BY is its sink's primary key (the grain), so the planner adds no
    SinkUpsertMaterializer (keyed state and -U/+U pairs for every update) in front of the sink."""
    assert not [n.name for n in graph.values() if "Materializer" in n.name or "Materializer" in n.contents]
