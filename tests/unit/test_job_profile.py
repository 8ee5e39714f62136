"""The job profile's arithmetic (benchmarks/job_profile.py): flame graph samples cut into costs,
collapsed stacks, and the read rate over the source's reading window only."""

from __future__ import annotations

from benchmarks.common import reading_window
from benchmarks.job_profile import OTHER, attribute, collapsed, cost_of

TREE = {"name": "root", "value": 10, "children": [
    {"name": "org.apache.flink.runtime.taskmanager.Task.run:569", "value": 10, "children": [
        {"name": "org.apache.flink.table.runtime.operators.deduplicate.ProcTimeDeduplicateKeepFirstRowFunction.processElement:50",
         "value": 7, "children": [
             {"name": "org.rocksdb.RocksDB.get:-2", "value": 4, "children": []},
             {"name": "java.lang.String.hashCode:100", "value": 1, "children": []},
         ]},
        {"name": "pemja.core.PythonInterpreter.invokeMethodOneArgString:-2", "value": 2, "children": []},
    ]},
]}


def test_each_sample_goes_to_the_first_named_cost_from_the_leaf():
    assert cost_of(["Task.run", "ProcTimeDeduplicateKeepFirstRowFunction.processElement", "org.rocksdb.RocksDB.get"]) \
        == "RocksDB state"
    assert cost_of(["Task.run", "ProcTimeDeduplicateKeepFirstRowFunction.processElement", "String.hashCode"]) \
        == "SQL operators and generated code"
    assert cost_of(["java.lang.Thread.run", "jdk.internal.misc.Unsafe.park"]) == OTHER


def test_self_time_is_split_by_cost_and_by_leaf():
    costs, leaves = attribute(TREE)
    assert costs == {"RocksDB state": 4, "SQL operators and generated code": 2 + 1,
                     "Python UDF (pemja, embedded CPython)": 2, OTHER: 1}
    assert sum(costs.values()) == TREE["value"]
    assert leaves["org.rocksdb.RocksDB.get:-2"] == 4 and leaves["java.lang.String.hashCode:100"] == 1


def test_collapsed_stacks_start_at_the_vertex_and_add_up_to_the_samples():
    lines = collapsed(TREE, "Deduplicate[11]")
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == TREE["value"]
    assert all(line.startswith("Deduplicate[11];") for line in lines)
    assert any(line.endswith("org.rocksdb.RocksDB.get:-2 4") for line in lines)
    assert not any(";root;" in line for line in lines)


def test_the_read_rate_leaves_out_the_start_and_the_end():
    samples = [{"t": 0, "source_records": 0}, {"t": 2, "source_records": 1_000},
               {"t": 4, "source_records": 11_000}, {"t": 6, "source_records": 21_000},
               {"t": 8, "source_records": 25_000}, {"t": 10, "source_records": 25_000}]
    assert reading_window(samples, total=25_000) == {"records_per_s": 5_000, "seconds": 4, "records": 20_000,
                                                     "points": 3}
    assert reading_window(samples[:2], total=25_000)["records_per_s"] is None


def test_a_value_counts_when_it_first_appears_not_when_the_metric_store_repeats_it():
    """The REST API's metric store is refreshed every few seconds: the same value in later samples
    is stale. At 1,000 records/s, refreshed every 3 s and sampled every second, the rate over first
    appearances is the true rate; over the last samples before the end it would not be."""
    truth = [{"t": t, "source_records": min(1_000 * (t - t % 3), 20_000)} for t in range(0, 30)]
    window = reading_window(truth, total=20_000)
    assert window["records_per_s"] == 1_000 and window["records"] == 15_000 and window["points"] == 6
    # Samples without a value are skipped; the window starts at the first value above zero.
    assert reading_window([{"t": 0}, {"t": 1, "source_records": 0}, {"t": 2, "source_records": 10},
                           {"t": 3, "source_records": 10}, {"t": 4, "source_records": 30}], total=100) == \
        {"records_per_s": 10, "seconds": 2, "records": 20, "points": 2}
