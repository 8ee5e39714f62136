"""Where Flink puts a key: its key group and the subtask that owns it, for the one kind of key the
job needs it for, a single INT column (the planner's keys are BinaryRowData).

Why: the partition-watermark guard (sql/views/stg_deliveries.sql) is keyed by the Kafka partition,
a key with as few values as the raw topic has partitions. Flink hashes keys into key groups, so a
handful of keys lands wherever the hash puts them: 4 partitions at parallelism 2 all on one subtask,
48 at parallelism 12 as 9 on one subtask and none on another. That chain carries the late split and
the Python UDF: on a cluster, where it can be the limit, the job runs at the pace of its busiest
subtask (on the 2-core machine, where it is not, the spread measured slower: docs/benchmarks.md,
"Where the streaming job's time goes"). spread_keys() picks, for
each partition, a distinct INT key in evenly spaced key groups. A subtask owns a contiguous range
of key groups, so at any parallelism each subtask gets its share of partitions (give or take one
where the parallelism divides the max parallelism, two otherwise), and the keys depend only on the
partitions and the job's max parallelism: a job rescaled from a savepoint is rendered with the same
keys.

A port of Flink 2.2's BinaryRowData.hashCode (MurmurHashUtil.hashBytesByWords, seed 42) and
KeyGroupRangeAssignment (MathUtils.murmurHash); tests/integration/test_keygroups.py checks it
against Flink's own classes.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_C1, _C2 = 0xCC9E2D51, 0x1B873593
_SEED = 42
_UPPER_BOUND_MAX_PARALLELISM = 1 << 15


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def _mix(h1: int, k1: int) -> int:
    k1 = _rotl((k1 * _C1) & _MASK, 15)
    h1 ^= (k1 * _C2) & _MASK
    return (_rotl(h1, 13) * 5 + 0xE6546B64) & _MASK


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def int_row_hash(value: int) -> int:
    """BinaryRowData.hashCode() of a one-INT-column row: an 8-byte header (row kind, null bits) and
    one 8-byte slot holding the int, hashed as four little-endian words."""
    h1 = _SEED
    for word in (0, 0, value & _MASK, 0):
        h1 = _mix(h1, word)
    return _signed(_fmix(h1 ^ 16))


def _murmur(code: int) -> int:
    """MathUtils.murmurHash: the key group hash of a key's hashCode()."""
    h = _mix(0, code & _MASK) ^ 4  # one murmur3 round from 0, then the length (4 bytes)
    h = _signed(_fmix(h))
    return h if h >= 0 else (-h if h != -(1 << 31) else 0)


def default_max_parallelism(parallelism: int) -> int:
    """KeyGroupRangeAssignment.computeDefaultMaxParallelism: what a job gets unless it sets one."""
    rounded = 1
    while rounded < parallelism + parallelism // 2:
        rounded <<= 1
    return min(max(rounded, 128), _UPPER_BOUND_MAX_PARALLELISM)


def key_group_of_int_key(value: int, max_parallelism: int) -> int:
    """KeyGroupRangeAssignment.assignToKeyGroup of a one-INT key."""
    return _murmur(int_row_hash(value)) % max_parallelism


def subtask_of_int_key(value: int, parallelism: int, max_parallelism: int | None = None) -> int:
    """The subtask of a keyed operator at `parallelism` that owns this one-INT key (its key group's
    range: KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup)."""
    max_parallelism = max_parallelism or default_max_parallelism(parallelism)
    return key_group_of_int_key(value, max_parallelism) * parallelism // max_parallelism


def spread_keys(partitions: int, max_parallelism: int) -> list[int]:
    """A distinct non-negative INT key per partition, partition i's in key group
    (2i + 1) * max_parallelism // (2 * partitions): evenly spaced over the key groups."""
    keys: list[int] = []
    used: set[int] = set()
    for partition in range(partitions):
        target = (2 * partition + 1) * max_parallelism // (2 * partitions)
        candidate = 0
        while candidate in used or key_group_of_int_key(candidate, max_parallelism) != target:
            candidate += 1
        keys.append(candidate)
        used.add(candidate)
    return keys
