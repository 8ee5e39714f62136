"""The job profile's arithmetic (benchmarks/job_profile.py): flame graph samples cut into costs,
collapsed stacks, and the read rate over the source's reading window only."""

from __future__ import annotations

from benchmarks import thread_cpu
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
                                                     "points": 3, "t0": 2, "t1": 6, "second_half_records_per_s": 5_000}
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
        {"records_per_s": 10, "seconds": 2, "records": 20, "points": 2, "t0": 2, "t1": 4,
         "second_half_records_per_s": 10}


def test_the_second_half_of_the_window_leaves_out_a_slow_warm_up():
    """A fresh JVM compiles (JIT) for its first minutes on the same cores: the second half of the
    reading window is the steadier rate."""
    samples = [{"t": t, "source_records": n} for t, n in
               [(0, 0), (10, 1_000), (20, 11_000), (30, 21_000), (40, 41_000), (50, 61_000), (60, 70_000), (70, 70_000)]]
    window = reading_window(samples, total=70_000)
    assert window["records_per_s"] == 1_500 and window["second_half_records_per_s"] == 2_000


def test_threads_are_counted_by_kind_and_a_vertex_by_its_subtasks_together():
    before = {"1/10": ("C2 CompilerThre", 5.0), "1/11": ("Deduplicate[11]", 1.0), "2/20": ("Deduplicate[11]", 2.0),
              "1/12": ("rocksdb:low", 0.0), "1/13": ("flink-pekko.rem", 0.0)}
    after = {"1/10": ("C2 CompilerThre", 9.0), "1/11": ("Deduplicate[11]", 3.0), "2/20": ("Deduplicate[11]", 4.0),
             "1/12": ("rocksdb:low", 0.5), "1/13": ("flink-pekko.rem", 0.0),
             "2/21": ("GlobalWindowAgg", 1.0)}  # started in between: counts from zero
    assert thread_cpu.cores_by(before, after, 2.0) == {"JIT compiler": 2.0, "task threads (operators)": 2.5,
                                                      "RocksDB flush and compaction": 0.25}
    assert thread_cpu.cores_by(before, after, 2.0, key=lambda name: name) == {
        "C2 CompilerThre": 2.0, "Deduplicate[11]": 2.0, "GlobalWindowAgg": 0.5, "rocksdb:low": 0.25}
    assert thread_cpu.task_thread("Deduplicate[11] (2/4)#0") == "Deduplicate[11]"
    assert [thread_cpu.kind_of(n) for n in ["snk_ad_minute[4", "Source: src_ad_", "GC Thread#0", "kafka-producer-",
                                             "Flink Netty Ser", "Time Trigger fo"]] == [
        "task threads (operators)", "task threads (operators)", "garbage collector", "Kafka producer I/O",
        "network (Netty)", "other"]


def test_procstat_reads_each_thread_of_a_process_with_its_name_and_cpu():
    import os
    import threading

    from adagg import procstat

    ready, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (ready.set(), stop.wait()), name="adagg-probe")
    worker.start()
    ready.wait()
    try:
        threads = procstat.threads(os.getpid())
        assert os.getpid() in threads and len(threads) >= 2
        assert all(isinstance(name, str) and cpu >= 0 for name, cpu in threads.values())
    finally:
        stop.set()
        worker.join()
    assert procstat.threads(2 ** 22 + 1) == {}


def test_a_sql_variant_is_rendered_from_its_own_folder(tmp_path):
    """--sql-dir: the job the benchmark submits comes from the changed copy of sql/, and only then."""
    import shutil

    from adagg.env import load
    from adagg.paths import REPO
    from benchmarks.common import render_job

    env = load("local")
    assert render_job(env, {}) is None  # nothing changed: the deployed job is submitted as is
    variant = tmp_path / "sql"
    shutil.copytree(REPO / "sql", variant)
    jobs = variant / "jobs" / "streaming.sql"
    jobs.write_text(jobs.read_text().replace("INSERT INTO snk_raw_archive SELECT * FROM stg_raw_archive;\n", ""))
    rendered = render_job(env, {}, variant).read_text()
    assert "INSERT INTO snk_late_events" in rendered and "INSERT INTO snk_raw_archive" not in rendered
    assert "INSERT INTO snk_raw_archive" in render_job(env, {"flink.parallelism": "2"}).read_text()
