"""A job's plan as Flink's planner makes it: the EXPLAIN text and the operator graph.

What the guide asks to read before and after every change to the SQL (the shuffles, the operators
that keep state), and what the integration tier checks properties of: the job's rendered script is
planned by a local table environment, never submitted. Needs the JVM (PyFlink).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from adagg.sql import render, split_statements

EXECUTE = re.compile(r"^EXECUTE STATEMENT SET", re.I)


def explain(env, job: str = "streaming", details: tuple[str, ...] = (), **params) -> str:
    """EXPLAIN [details] of the job's statement set, for an environment (name or loaded env)."""
    from adagg.setup import connector_jars
    from pyflink_jobs.streaming_job import build_table_env, run_statement

    statements = split_statements(render(env, job, **params))
    *setup, final = statements
    batch = any(re.match(r"SET 'execution.runtime-mode' = 'batch'", s, re.I) for s in setup)
    t_env = build_table_env(connector_jars(), batch=batch)
    for statement in setup:
        run_statement(t_env, statement)
    what = " ".join(details)
    final = EXECUTE.sub(f"EXPLAIN {what} STATEMENT SET", final) if EXECUTE.match(final) else f"EXPLAIN {what} {final}"
    return next(iter(t_env.execute_sql(final).collect()))[0]


@dataclass
class Node:
    id: int
    name: str  # e.g. "Deduplicate[12]"
    contents: str  # the operator's description, e.g. "[12]:Deduplicate(keep=[FirstRow], key=[event_id], ...)"
    parallelism: int
    inputs: list[tuple[int, str]] = field(default_factory=list)  # (node id, ship strategy: FORWARD, HASH, ...)


def job_graph(env, job: str = "streaming", **params) -> dict[int, Node]:
    """The job's operators (before chaining) with their inputs, from EXPLAIN JSON_EXECUTION_PLAN."""
    text = explain(env, job, ("JSON_EXECUTION_PLAN",), **params)
    doc = json.loads(text[text.index("{", text.index("== Physical Execution Plan ==")):])
    return {n["id"]: Node(n["id"], n["type"], n["contents"], n["parallelism"],
                          [(p["id"], p["ship_strategy"]) for p in n.get("predecessors", [])])
            for n in doc["nodes"]}


def upstream(graph: dict[int, Node], node_id: int) -> list[tuple[Node, str]]:
    """Every operator a node reads from, directly or not, each with the ship strategy of the edge
    it feeds on; nearest first (breadth first)."""
    out, seen, frontier = [], {node_id}, [node_id]
    while frontier:
        nxt = []
        for nid in frontier:
            for pid, strategy in graph[nid].inputs:
                if pid not in seen:
                    seen.add(pid)
                    out.append((graph[pid], strategy))
                    nxt.append(pid)
        frontier = nxt
    return out
