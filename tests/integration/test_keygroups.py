"""adagg/keygroups.py against Flink's own classes in a real JVM: the subtask it computes for a
one-INT key is the one Flink's KeyGroupRangeAssignment gives the planner's key (a BinaryRowData),
so the partition-watermark guard's keys really spread over the subtasks."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from adagg.env import load, names
from adagg.keygroups import default_max_parallelism, spread_keys, subtask_of_int_key
from adagg.stack import Stack, require_java

pytestmark = pytest.mark.integration

# Prints "<key> <parallelism> <max parallelism> <subtask>" for each "<key> <parallelism>" argument pair.
ASSIGN = """
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.table.data.binary.BinaryRowData;
import org.apache.flink.table.data.writer.BinaryRowWriter;
public class Assign {
  public static void main(String[] a) {
    for (int i = 0; i < a.length; i += 2) {
      int key = Integer.parseInt(a[i]), p = Integer.parseInt(a[i + 1]);
      BinaryRowData row = new BinaryRowData(1);
      BinaryRowWriter writer = new BinaryRowWriter(row);
      writer.writeInt(0, key);
      writer.complete();
      int max = KeyGroupRangeAssignment.computeDefaultMaxParallelism(p);
      System.out.println(key + " " + p + " " + max + " " + KeyGroupRangeAssignment.assignKeyToParallelOperator(row, max, p));
    }
  }
}
"""


@pytest.fixture(scope="module")
def flink_assign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keygroups")
    (folder / "Assign.java").write_text(ASSIGN)
    java = Path(require_java()).resolve()
    classpath = os.pathsep.join([str(folder), *map(str, Stack("local").flink_lib_dir().glob("*.jar"))])
    subprocess.run([str(java.parent / "javac"), "-cp", classpath, "-d", str(folder), str(folder / "Assign.java")],
                   check=True)

    def assign(pairs: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
        args = [str(x) for pair in pairs for x in pair]
        out = subprocess.run([str(java), "-cp", classpath, "Assign", *args], check=True, capture_output=True,
                             text=True).stdout
        return [tuple(int(x) for x in line.split()) for line in out.splitlines()]
    return assign


def test_the_port_places_keys_where_flink_does(flink_assign):
    rng = random.Random(5)
    pairs = [(k, p) for p in (1, 2, 3, 4, 12, 100, 200) for k in [*range(20), *rng.sample(range(-10**6, 10**6), 30)]]
    for key, p, max_p, subtask in flink_assign(pairs):
        assert max_p == default_max_parallelism(p), (p, max_p)
        assert subtask == subtask_of_int_key(key, p), (key, p)


def test_every_environments_partition_keys_spread_evenly_over_its_subtasks(flink_assign):
    for name in names():
        env = load(name)
        p, partitions = env.flink.parallelism, env.topics.raw.partitions
        assert default_max_parallelism(p) == env.flink.max_parallelism  # existing state keeps its key groups
        counts = [0] * p
        for _, _, _, subtask in flink_assign([(k, p) for k in spread_keys(partitions, env.flink.max_parallelism)]):
            counts[subtask] += 1
        assert max(counts) - min(counts) <= 1, (name, counts)
