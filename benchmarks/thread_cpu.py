"""CPU time of every thread of the local stack's Flink TaskManagers, by kind (Linux, /proc).

Flink's flame graphs sample task threads only: the JIT compiler, the garbage collector, RocksDB's
flush and compaction threads and the Kafka producers' I/O threads are not in them. This counts
every TaskManager thread's CPU, so that a benchmark can say how many cores each kind took over a
window. Thread names are the kernel's (15 characters).
"""
from __future__ import annotations

import re
from collections import Counter

from adagg import procstat
from adagg.stack import Stack

# Thread kind by name, first match wins; what matches none is "other" (RPC, metrics, timers).
KINDS = [
    ("JIT compiler", re.compile(r"^C\d CompilerThre")),
    ("garbage collector", re.compile(r"^(GC Thread|G1 |VM Thread)")),
    ("RocksDB flush and compaction", re.compile(r"^rocksdb:")),
    ("Kafka producer I/O", re.compile(r"^kafka-producer")),
    ("Kafka source fetcher", re.compile(r"^Source Data Fet")),
    ("network (Netty)", re.compile(r"^Flink Netty")),
    ("checkpoint upload", re.compile(r"^AsyncOperation")),
    # A task thread is named after its vertex's first operator (a sink by its table's name).
    ("task threads (operators)", re.compile(r"\[\d|^(Source: |Sink|snk_|Calc|GlobalWindow|LocalWindow|Deduplicate|"
                                            r"OverAggregate|GroupAggregate|WindowRank|PartitionCommi|StreamingFile)")),
]


def taskmanager_jvms() -> list[int]:
    """The TaskManagers' JVMs: taskmanager.sh start-foreground execs Java in the service's own process."""
    stack = Stack()
    return [pid for pid in map(stack.pid, stack.taskmanager_names()) if pid]


def snapshot() -> dict[str, tuple[str, float]]:
    """{"pid/tid": (thread name, CPU seconds so far)} for every TaskManager thread."""
    return {f"{pid}/{tid}": named for pid in taskmanager_jvms() for tid, named in procstat.threads(pid).items()}


def kind_of(name: str) -> str:
    return next((kind for kind, pattern in KINDS if pattern.search(name)), "other")


def task_thread(name: str) -> str:
    """A task thread's name without its subtask suffix, so that a vertex's subtasks add up."""
    return re.sub(r"\s*\(\d+/\d+\).*$", "", name)


def cores_by(before: dict, after: dict, seconds: float, key=kind_of) -> dict[str, float]:
    """Cores used between two snapshots, by key(thread name), busiest first; a thread started in
    between counts from zero."""
    used = Counter()
    for tid, (name, cpu) in after.items():
        used[key(name)] += cpu - before.get(tid, (name, 0.0))[1]
    return {k: round(v / seconds, 3) for k, v in used.most_common() if v > 0}
