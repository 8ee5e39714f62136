"""Can new SQL take over a running job's state? Compiled plans (FLIP-190) compared node by node.

A job run from a compiled plan (EXECUTE PLAN) names each operator `<node id>_<transformation>`
(Flink's table.exec.uid.format), and a savepoint's state is found again only under the same uid.
A plan compiled afresh numbers its nodes in the order the planner visits them, so adding one mart
shifts the ids of everything after it. `carry_over` gives the new plan's nodes the ids of the old
plan's nodes they equal (same content, same inputs, recursively), and new nodes ids above the old
ones. Every old node that keeps state must find its equal, or its state has nowhere to go: that
is what `adagg job upgrade --check` reports. Pure Python: plans are JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

# Node kinds that hold no state in a checkpoint; every other kind is treated as stateful (a kind
# this list does not know is assumed to keep state, which errs towards refusing an upgrade).
STATELESS = frozenset({
    "calc", "python-calc", "exchange", "union", "expand", "local-window-aggregate", "local-group-aggregate",
    "watermark-assigner", "correlate", "python-correlate", "values", "drop-update-before", "mini-batch-assigner",
})
SINK_TABLE = re.compile(r"^Sink\(table=\[(?:[^.\]]+\.){2}([^\],]+)\]")


def kind(node: dict) -> str:
    """'stream-exec-deduplicate_1' -> 'deduplicate'."""
    return re.sub(r"_\d+$", "", node["type"]).removeprefix("stream-exec-")


def stateful(node: dict) -> bool:
    return kind(node) not in STATELESS


def label(node: dict) -> str:
    """A node as a person reads it: its id and the start of Flink's description."""
    text = " ".join(node.get("description", node["type"]).split())
    return f"node {node['id']} {text[:110]}{'...' if len(text) > 110 else ''}"


class Graph:
    """A compiled plan's nodes with their inputs in order (edges list them in input order)."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.nodes = {n["id"]: n for n in plan["nodes"]}
        self.inputs: dict[int, list[int]] = {i: [] for i in self.nodes}
        self.outputs: dict[int, list[int]] = {i: [] for i in self.nodes}
        for edge in plan["edges"]:
            self.inputs[edge["target"]].append(edge["source"])
            self.outputs[edge["source"]].append(edge["target"])
        self.edges = {(e["source"], e["target"]): e for e in plan["edges"]}
        self._digests: dict[int, str] = {}

    def digest(self, node_id: int) -> str:
        """The node's content (without its id) and its inputs' digests and edges, hashed."""
        if node_id not in self._digests:
            node = {k: v for k, v in self.nodes[node_id].items() if k != "id"}
            edges = [{k: v for k, v in self.edges[(src, node_id)].items() if k not in ("source", "target")}
                     for src in self.inputs[node_id]]
            text = json.dumps([node, edges, [self.digest(src) for src in self.inputs[node_id]]], sort_keys=True)
            self._digests[node_id] = hashlib.sha256(text.encode()).hexdigest()
        return self._digests[node_id]

    def sinks_fed(self, node_id: int) -> list[str]:
        """The sink tables downstream of a node."""
        seen, stack, sinks = set(), [node_id], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            match = SINK_TABLE.match(self.nodes[current].get("description", ""))
            if match:
                sinks.add(match.group(1))
            stack.extend(self.outputs[current])
        return sorted(sinks)


@dataclass
class CarryOver:
    """The new plan renumbered to keep the old plan's ids, and what did not carry over."""
    plan: dict
    old: Graph
    new: Graph                                            # the renumbered new plan
    kept: list[dict] = field(default_factory=list)        # old stateful nodes whose state carries over
    lost: list[dict] = field(default_factory=list)        # old stateful nodes whose state cannot
    changed: list[tuple[dict, dict | None]] = field(default_factory=list)  # (old, new or None): first differences
    added: list[dict] = field(default_factory=list)       # new nodes without an old counterpart
    unchanged: set[int] = field(default_factory=set)      # old ids with an equal (node and upstream) in the new plan

    @property
    def compatible(self) -> bool:
        return not self.lost


def carry_over(old_plan: dict, new_plan: dict) -> CarryOver:
    """Pair the new plan's nodes with the old plan's, renumber it, and judge each old state.

    A node is paired with its equal (same content, same inputs, recursively), else by
    _pair_the_rest with what it most likely became. A wrong pairing can only refuse an upgrade,
    never pass one: a state is kept only by an equal node (or an unchanged sink). An operator's
    state carries over only if the operator and everything upstream of it is unchanged (a dedup
    whose key is now computed differently holds keys that no longer mean the same), except a sink:
    its state (open Kafka transactions, the rows it upserted) does not depend on how its input was
    computed, so a sink whose own definition is unchanged keeps it (every change to sql/ changes
    the pipeline_version column computed just before each sink)."""
    old, new = Graph(old_plan), Graph(new_plan)
    by_digest: dict[str, list[int]] = {}
    for node_id in sorted(old.nodes):
        by_digest.setdefault(old.digest(node_id), []).append(node_id)
    equal: dict[int, int] = {}  # new id -> old id
    for node in new_plan["nodes"]:  # equal twins are paired in plan order
        candidates = by_digest.get(new.digest(node["id"]))
        if candidates:
            equal[node["id"]] = candidates.pop(0)
    paired = _pair_the_rest(old, new, dict(equal))
    ids = dict(paired)
    next_id = max(old.nodes, default=0) + 1
    for node in new_plan["nodes"]:
        if node["id"] not in ids:
            ids[node["id"]], next_id = next_id, next_id + 1
    renumbered = {
        **new_plan,
        "nodes": [{**node, "id": ids[node["id"]]} for node in new_plan["nodes"]],
        "edges": [{**edge, "source": ids[edge["source"]], "target": ids[edge["target"]]} for edge in new_plan["edges"]],
    }
    result = CarryOver(plan=renumbered, old=old, new=Graph(renumbered), unchanged=set(equal.values()))
    old_to_new = {o: n for n, o in paired.items()}
    for old_id in sorted(old.nodes):
        node, twin_id = old.nodes[old_id], old_to_new.get(old_id)
        twin = new.nodes[twin_id] if twin_id is not None else None
        same = twin is not None and _content(twin) == _content(node)
        if not same:
            result.changed.append((node, twin and {**twin, "id": ids[twin_id]}))
        if not stateful(node):
            continue
        if twin_id in equal or (same and kind(node) == "sink"):
            result.kept.append(node)
        else:
            result.lost.append(node)
    result.added = [n for n in renumbered["nodes"] if n["id"] not in old_to_new]
    return result


def _pair_the_rest(old: Graph, new: Graph, paired: dict[int, int]) -> dict[int, int]:
    """Pair the nodes that have no equal, new id -> old id, in three moves until none pairs more:
    - a node whose content is found once on each side (a sink's table, a source) pairs with it;
    - the inputs of a pair pair in order, where their types agree (up from a sink to what feeds it);
    - a node whose inputs are paired pairs with an old node of its type reading the same inputs
      (an equal one first, else the first in plan order)."""
    def free_old() -> list[int]:
        taken = set(paired.values())
        return [i for i in sorted(old.nodes) if i not in taken]

    def free_new() -> list[int]:
        return [n["id"] for n in new.plan["nodes"] if n["id"] not in paired]

    progress = True
    while progress:
        progress = False
        contents = {}
        for side, ids in (("old", free_old()), ("new", free_new())):
            graph = old if side == "old" else new
            for i in ids:
                contents.setdefault(json.dumps(_content(graph.nodes[i]), sort_keys=True), {"old": [], "new": []})[
                    side].append(i)
        for found in contents.values():
            if len(found["old"]) == 1 and len(found["new"]) == 1:
                paired[found["new"][0]] = found["old"][0]
                progress = True
        for new_id, old_id in list(paired.items()):
            new_in, old_in = new.inputs[new_id], old.inputs[old_id]
            taken = set(paired.values())
            for n_src, o_src in zip(new_in, old_in):
                if (len(new_in) == len(old_in) and n_src not in paired and o_src not in taken
                        and new.nodes[n_src]["type"] == old.nodes[o_src]["type"]):
                    paired[n_src] = o_src
                    taken.add(o_src)
                    progress = True
        for node_id in free_new():
            if not all(src in paired for src in new.inputs[node_id]) or not new.inputs[node_id]:
                continue
            inputs = [paired[src] for src in new.inputs[node_id]]
            found = [i for i in free_old() if old.nodes[i]["type"] == new.nodes[node_id]["type"]
                     and old.inputs[i] == inputs]
            if found:
                pick = next((i for i in found if _content(old.nodes[i]) == _content(new.nodes[node_id])), found[0])
                paired[node_id] = pick
                progress = True
    return paired


def _content(node: dict) -> dict:
    return {k: v for k, v in node.items() if k != "id"}


def explain(result: CarryOver, most: int = 8) -> str:
    """What an upgrade keeps and what it cannot, in words for the person about to run it."""
    sinks = [m.group(1) for m in (SINK_TABLE.match(n.get("description", "")) for n in result.added) if m]
    if result.compatible:
        lines = [f"compatible: the state of all {len(result.kept)} stateful operators carries over; "
                 f"{len(result.added)} new operators start empty."]
        if sinks:
            lines.append(f"  new sinks: {', '.join(sinks)}")
        return "\n".join(lines)
    total = len(result.kept) + len(result.lost)
    lines = [f"incompatible: {len(result.lost)} of the running job's {total} stateful operators have no "
             f"unchanged counterpart in the new plan (the operator or something upstream of it changed), "
             f"so their state cannot be restored:"]
    for node in result.lost[:most]:
        lines.append(f"  - {label(node)}")
        lines.append(f"    feeds: {', '.join(result.old.sinks_fed(node['id'])) or '(no sink)'}")
    if len(result.lost) > most:
        lines.append(f"  ... and {len(result.lost) - most} more")
    # The first differences: changed nodes whose whole upstream is unchanged.
    first = [(node, twin) for node, twin in result.changed
             if all(src in result.unchanged for src in result.old.inputs[node["id"]])]
    lines.append(f"  where the plans first differ ({len(result.changed) - len(first)} operators downstream differ "
                 f"because of it; the running job's node, then what it became):")
    for node, twin in first[:most]:
        lines.append(f"  - {label(node)}")
        if twin is None:
            lines.append("    no counterpart in the new plan")
            continue
        keys = sorted(k for k in set(node) | set(twin) if k != "id" and node.get(k) != twin.get(k))
        lines.append(f"    now {label(twin)}")
        lines.append(f"    differs in: {', '.join(keys)}")
    if len(first) > most:
        lines.append(f"  ... and {len(first) - most} more")
    lines.append("  Keep that part of the SQL as it is, or take the path for an incompatible change: a new job "
                 "from the running job's offsets, then a backfill of the affected windows from the archive "
                 "(docs/deploy.md#an-incompatible-change).")
    return "\n".join(lines)
