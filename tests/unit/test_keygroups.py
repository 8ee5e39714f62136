"""Where Flink puts a one-INT key (adagg/keygroups.py), without a JVM: the placements Flink 2.2
itself printed for partition numbers used as keys (tests/integration/test_keygroups.py checks the
port against Flink's classes for many more), and the spread keys the job's guard is keyed by."""

from __future__ import annotations

import re

import pytest

from adagg import sql
from adagg.env import load, names
from adagg.keygroups import default_max_parallelism, spread_keys, subtask_of_int_key

# Printed by KeyGroupRangeAssignment.assignKeyToParallelOperator on BinaryRowData keys 0..n-1.
FLINK = {(4, 2): "1111", (4, 4): "3223", (12, 2): "111100100100", (12, 12): "98810219051024",
         (48, 12): "98810219051024438576281023251010705101092601427206107462"}


@pytest.mark.parametrize("partitions,parallelism", sorted(FLINK))
def test_partition_numbers_as_keys_land_where_flink_put_them(partitions, parallelism):
    assert "".join(str(subtask_of_int_key(k, parallelism)) for k in range(partitions)) == FLINK[partitions, parallelism]


def test_partition_numbers_as_keys_were_skewed():
    """Why the guard is not keyed by the partition number: 4 partitions at parallelism 2 all on one
    subtask, 48 at parallelism 12 up to 9 on one and none on another."""
    assert {subtask_of_int_key(k, 2) for k in range(4)} == {1}
    counts = [0] * 12
    for k in range(48):
        counts[subtask_of_int_key(k, 12)] += 1
    assert max(counts) == 9 and min(counts) == 0


@pytest.mark.parametrize("partitions", [1, 2, 4, 7, 12, 48, 128])
def test_spread_keys_give_every_subtask_its_share_at_any_parallelism(partitions):
    """Give or take one where the parallelism divides the key groups (every subtask owns as many);
    at most two apart at any other (ranges of 5 and 6 key groups at parallelism 23)."""
    keys = spread_keys(partitions, 128)
    assert len(set(keys)) == partitions and min(keys) >= 0
    for parallelism in range(1, 129):
        counts = [0] * parallelism
        for key in keys:
            counts[subtask_of_int_key(key, parallelism, 128)] += 1
        assert max(counts) - min(counts) <= (1 if 128 % parallelism == 0 else 2), (partitions, parallelism, counts)


def test_default_max_parallelism_is_flinks():
    assert [default_max_parallelism(p) for p in (1, 4, 12, 85, 86, 200, 30000)] == [128, 128, 128, 128, 256, 512, 32768]


@pytest.mark.parametrize("env_name", names())
def test_the_rendered_guard_is_keyed_by_the_spread_keys(env_name):
    env = load(env_name)
    script = sql.render(env_name, "streaming")
    whens = re.findall(r"WHEN (\d+) THEN (\d+)", script.split("CREATE TEMPORARY VIEW stg_deliveries", 1)[1])
    assert [int(k) for _, k in whens] == spread_keys(env.topics.raw.partitions, env.flink.max_parallelism)
    assert [int(i) for i, _ in whens] == list(range(env.topics.raw.partitions))
    assert "PARTITION BY partition_key ORDER BY proc_time" in script
    assert f"SET 'pipeline.max-parallelism' = '{env.flink.max_parallelism}';" in script
