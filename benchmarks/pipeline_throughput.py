"""Benchmark: throughput of the streaming job, as ratios measured in one run (GUIDE §4).

Measures the job as deployed: every variant runs on the local stack's Flink session cluster
(parallelism 4 on two TaskManagers, RocksDB, exactly-once Kafka sinks, the thread-mode Python
UDF: the job's own SET statements, as `adagg job submit` runs it), and reads the same backlog of
generated traffic from one Kafka topic:

* pipeline efficiency = the full job / the same Flink reading the same topic into a blackhole
  sink (the job's own source table: Kafka reads, JSON parsing and watermarks, no processing).
  Goal >= 0.5.
* Python UDF ratio = the full job / the same job rendered without its Python UDF
  (sql.render(..., python_udfs=False)). That baseline derives the UDF's values for the generated
  traffic's agents, networks and campaigns with plain SQL lookups (sql/macros/enrichment.sql,
  computed by the UDF's own code: adagg.sql.enrichment_lookup), so it writes the same rows as the
  full job. Goal >= 0.8.

Two rates per run:

* over the source's reading window (the ratios use these): records read by the source vertex
  (numRecordsIn, Flink's REST API every 0.5 s) between the first and the last sample in which it
  was reading (benchmarks/common.py reading_window, as job_profile.py). Job start, the embedded
  interpreter's start and the final commit (2-4 s of a blackhole run) are not in it;
* over the whole run: records / the finished job's duration (submission to the cluster to
  FINISHED, Flink's net runtime). Printed too, with the ratios they give.

Every run's output topics are its own; the records each holds (read_committed) are counted after
the run, and the enriched events' topic is compared between the full job and the baseline.

The generated traffic (adagg.demo.make_traffic: duplicates, billing repeats, bots, a hot ad,
contract v1/v2, a few late events) is produced once, with librdkafka, to a fresh topic
bench.<run-id>.ad-events.raw. Every run reads it from the earliest offset, bounded at the latest
(the job ends when it has read and processed every record). Variants run in interleaved rounds
(--repeat); the best and the median of each are kept. There is no warm-up run: the first full
job on the fresh TaskManagers reads slower than later ones (docs/benchmarks.md), so compare best
runs, or rounds after the first.

The local stack's ports are fixed and shared with the test tiers: the benchmark holds the
machine-wide lock /tmp/adagg-stack.lock for its whole run (waiting for a test tier or another
benchmark), starts a fresh stack with Kafka and Flink only (Pinot and the collector would take CPU
from the jobs measured), leaves it running, and deletes its topics at the end.

    .venv/bin/python benchmarks/pipeline_throughput.py            # 600,000 events, 2 rounds
    .venv/bin/python benchmarks/pipeline_throughput.py --events 300000 --repeat 1 --variants blackhole,full

Prints a table, the row counts and the ratios; writes reports/pipeline_throughput.json (every
run with its samples, figures, goals, parameters, machine) and reports/pipeline_throughput.svg.
With the defaults it holds the lock for about 12 minutes on the 2-core development machine (see
docs/benchmarks.md#pipeline-throughput). The full job reads 4,700-6,900 records/s there: 3 million
events would take 8-12 minutes a run, about 40 for two rounds of the three variants. Since the
rates are taken over the reading window, the fixed costs do not distort them at 600,000 events
(659,843 records: the blackhole reads for 4-7 s, good to about +-10% at 0.5 s samples; the full
job for 95-140 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths  # noqa: E402
from adagg.env import Namespace, load, override  # noqa: E402
from adagg.stack import StackError  # noqa: E402
from benchmarks.common import (SOURCE_RECORDS, bar_chart, machine, produce_backlog, reading_window,  # noqa: E402
                               say, source_vertex, stack_lock, vertex_metrics)

VARIANTS = ("blackhole", "full", "full_no_udf")
GOALS = {"pipeline_efficiency": 0.5, "python_udf_ratio": 0.8}
RATIOS = {"pipeline_efficiency": ("full", "blackhole"), "python_udf_ratio": ("full", "full_no_udf")}
DESCRIPTIONS = {
    "blackhole": "the job's source table -> blackhole (Kafka reads, JSON parsing, watermarks only)",
    "full": "the full streaming job with its Python UDF, exactly-once Kafka sinks",
    "full_no_udf": "the full streaming job rendered with python_udfs=False (the UDF's values by SQL lookups)",
}
SOURCE_TABLE = "src_ad_events_raw"
BLACKHOLE_TABLE = "bench_blackhole"
SAMPLE_S = 0.5
TERMINAL = ("FINISHED", "FAILED", "CANCELED")
ENRICHED = "ad-events.enriched"  # the short name of the enriched events' topic (variant_env)


# ---------------------------------------------------------------- environments

def base_env(run_id: str) -> Namespace:
    """The local environment reading the benchmark's raw topic from the start, bounded at its end."""
    env = load("local")
    env = override(env, {"topics.raw.name": f"bench.{run_id}.ad-events.raw",
                         "flink.raw_startup_mode": "earliest-offset"})
    env.flink["raw_source_options"] = Namespace({"scan.bounded.mode": "latest-offset"})
    return env


def run_prefix(run_id: str, variant: str, round_no: int) -> str:
    return f"bench.{run_id}.{variant.replace('_', '-')}-r{round_no}."


def variant_env(env: Namespace, run_id: str, variant: str, round_no: int) -> Namespace:
    """Own output topics, consumer group and transactional ids per run."""
    prefix = run_prefix(run_id, variant, round_no)
    return override(env, {
        "outputs.prefix": prefix,
        "topics.late.name": f"{prefix}ad-events.late",
        "topics.enriched.name": f"{prefix}{ENRICHED}",
        "flink.consumer_group": f"adagg-bench-{run_id}-{variant}-r{round_no}",
        "flink.transactional_id_prefix": f"adagg-bench-{run_id}-{variant}-r{round_no}",
        # The full job archives every delivery too: into a folder of the run's, not the stack's archive.
        "archive.path": f"/tmp/adagg-bench-{run_id}-archive/{variant}-r{round_no}",
    })


# ---------------------------------------------------------------- Kafka

def topic_records(env: Namespace, topic: str) -> int:
    """Records in a non-transactional topic: end offsets - beginning offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=env.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        begin, end = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
        return sum(end[tp] - begin[tp] for tp in parts)
    finally:
        consumer.close()


def count_records(env: Namespace, topics: list[str], digest: tuple[str, ...] = (),
                  idle_timeout_s: float = 3.0) -> tuple[dict[str, int], dict[str, str]]:
    """Committed records in each topic (read_committed, from the beginning to the end offsets
    taken first), and for the topics in `digest` an order-free digest of their values (a sum of
    per-record hashes): equal digests, equal records. An end offset also counts transaction
    markers, so the records are read, not taken from offsets."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition as TP

    from collector.config import kafka_client_config

    consumer = Consumer({**kafka_client_config(env), "group.id": "adagg-bench-count", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    counts, sums = {t: 0 for t in topics}, {t: 0 for t in digest}
    try:
        ends = {}
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=15).topics[topic]
            for p in meta.partitions:
                ends[(topic, p)] = consumer.get_watermark_offsets(TP(topic, p), timeout=15)[1]
        consumer.assign([TP(t, p, OFFSET_BEGINNING) for (t, p), end in ends.items() if end > 0])
        parts = [TP(t, p) for (t, p), end in ends.items() if end > 0]
        idle_since = time.monotonic()
        while parts:
            if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in consumer.position(parts)):
                break
            batch = consumer.consume(10_000, timeout=0.5)
            if batch:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_timeout_s:
                break  # what is left is a transaction marker after the last record
            for record in batch:
                if record.error() is None:
                    counts[record.topic()] += 1
                    if record.topic() in sums:
                        value = record.value() or b""
                        sums[record.topic()] += int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big")
    finally:
        consumer.close()
    return counts, {t: f"{v % 2**64:016x}" for t, v in sums.items()}


def create_raw_topic(env: Namespace) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=env.kafka.bootstrap_servers, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(env.topics.raw.name, env.topics.raw.partitions, env.kafka.replication_factor)])
    finally:
        admin.close()


def delete_topics(env: Namespace, run_id: str) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=env.kafka.bootstrap_servers, request_timeout_ms=30000)
    try:
        mine = sorted(t for t in admin.list_topics() if t.startswith(f"bench.{run_id}."))
        if mine:
            admin.delete_topics(mine)
        return mine
    finally:
        admin.close()


# ---------------------------------------------------------------- the variants

def _sets_and_source(script: str) -> tuple[list[str], str]:
    from adagg.sql import split_statements
    from pyflink_jobs.streaming_job import SET_RE

    statements = split_statements(script)
    sets = [s for s in statements if SET_RE.match(s.strip())]
    source = [s for s in statements if s.lstrip().upper().startswith(f"CREATE TABLE {SOURCE_TABLE.upper()} ")]
    if len(source) != 1:
        raise RuntimeError(f"the rendered job has {len(source)} CREATE TABLE {SOURCE_TABLE} statements, expected 1")
    return sets, source[0]


def physical_columns(t_env, source: str) -> list[str]:
    """The physical columns of a CREATE TABLE statement, as Flink resolves them (created under a
    scratch name, then dropped)."""
    scratch = f"bench_scratch_{uuid.uuid4().hex[:8]}"
    t_env.execute_sql(source.replace(f"CREATE TABLE {SOURCE_TABLE}", f"CREATE TEMPORARY TABLE {scratch}", 1))
    try:
        columns = t_env.from_path(scratch)._j_table.getResolvedSchema().getColumns()
        return [c.getName() for c in columns if c.isPhysical()]
    finally:
        t_env.execute_sql(f"DROP TEMPORARY TABLE {scratch}")


def blackhole_script(env: Namespace, columns: list[str]) -> str:
    """The job's SET statements and its source table, then every physical column into a blackhole:
    the same JSON parsing and watermarks (pushed into the source scan), no processing."""
    from adagg.sql import render

    sets, source = _sets_and_source(render(env))
    return "\n".join([
        *(s + ";" for s in sets),
        source + ";",
        f"CREATE TEMPORARY TABLE {BLACKHOLE_TABLE} WITH ('connector' = 'blackhole') "
        f"LIKE {SOURCE_TABLE} (EXCLUDING ALL);",
        f"INSERT INTO {BLACKHOLE_TABLE} SELECT {', '.join(f'`{c}`' for c in columns)} FROM {SOURCE_TABLE};",
    ]) + "\n"


def upsert_topics(script: str) -> list[str]:
    """The topics of a script's upsert-kafka sinks: changelogs whose length depends on timing."""
    from adagg.sql import split_statements

    return [m for s in split_statements(script) if "'connector' = 'upsert-kafka'" in s
            for m in re.findall(r"'topic' = '([^']+)'", s)]


def render_runs(env: Namespace, run_id: str, variants: list[str], repeat: int, jars: list[str],
                folder: Path) -> list[dict]:
    """Every run's environment and script, rendered up front into `folder`: all runs measure the
    same SQL even if sql/ changes while the benchmark runs."""
    from adagg.sql import render
    from pyflink_jobs.streaming_job import build_table_env

    columns = None
    if "blackhole" in variants:
        columns = physical_columns(build_table_env(jars), _sets_and_source(render(env))[1])
    runs = []
    for round_no in range(1, repeat + 1):
        for variant in variants:
            venv = variant_env(env, run_id, variant, round_no)
            script = (blackhole_script(venv, columns) if variant == "blackhole"
                      else render(venv, python_udfs=(variant == "full")))
            path = folder / f"{variant}-r{round_no}.sql"
            path.write_text(script)
            outputs = [t for t in re.findall(r"^  'topic' = '([^']+)'", script, re.M) if t != env.topics.raw.name]
            runs.append({"variant": variant, "round": round_no, "env": venv, "path": path, "outputs": outputs,
                         "prefix": run_prefix(run_id, variant, round_no), "upsert": upsert_topics(script)})
    return runs


def job_failure(rest: str, job_id: str) -> str:
    import requests

    try:
        root = requests.get(f"{rest}/jobs/{job_id}/exceptions", timeout=10).json().get("rootException") or ""
    except (requests.RequestException, ValueError):
        return ""
    return root.strip().splitlines()[0][:300] if root.strip() else ""


def run_variant(planned: dict, records: int, timeout_s: float) -> dict:
    """Submit one planned run to the session cluster and sample its source's records read every
    SAMPLE_S until the job ends; returns both rates and the samples."""
    import requests

    from adagg import flink

    env = planned["env"]
    rest = env.flink.rest_url
    t0 = time.monotonic()
    job_id = flink.submit("local", say=lambda *_: None, sql_file=planned["path"])
    submitted_s = time.monotonic() - t0
    samples: list[dict] = []
    source_id, next_note = None, 60
    while True:
        detail = flink.job_detail(rest, job_id)
        if source_id is None and detail.get("vertices"):
            source_id = source_vertex(detail["vertices"])["id"]
        if detail["state"] in TERMINAL:
            break
        if source_id is not None and detail["state"] == "RUNNING":
            try:
                metric = vertex_metrics(rest, job_id, source_id, [SOURCE_RECORDS]).get(SOURCE_RECORDS, {})
                samples.append({"t": round(time.monotonic() - t0, 3), "source_records": metric.get("sum")})
            except requests.RequestException:
                pass
        elapsed = time.monotonic() - t0
        if elapsed > timeout_s:
            requests.patch(f"{rest}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
            raise RuntimeError(f"{planned['variant']} did not finish within {timeout_s:.0f} s (--run-timeout)")
        if elapsed >= next_note:
            say(f"    ... {elapsed:.0f} s, {int((samples[-1]['source_records'] or 0) if samples else 0):,} records read")
            next_note += 60
        time.sleep(SAMPLE_S)
    wall_s = time.monotonic() - t0
    if detail["state"] != "FINISHED":
        raise RuntimeError(f"{planned['variant']} ended {detail['state']}: {job_failure(rest, job_id)}")
    duration_s = detail["duration"] / 1000
    window = reading_window(samples, records)
    return {"variant": planned["variant"], "round": planned["round"], "job_id": job_id, "records": records,
            "window_records_per_s": window.get("records_per_s"), "reading_window": window,
            "job_duration_s": round(duration_s, 2), "whole_run_records_per_s": round(records / duration_s),
            "client_submit_s": round(submitted_s, 1), "submit_to_end_s": round(wall_s, 1), "samples": samples}


# ---------------------------------------------------------------- figures

def _best_median(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    return (max(values), round(statistics.median(values))) if values else (None, None)


def summarize(runs: list[dict], variants: list[str]) -> dict:
    """Per variant: the best and the median of both rates over its runs."""
    out = {}
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        if not mine:
            continue
        window_best, window_median = _best_median([r["window_records_per_s"] for r in mine])
        whole_best, whole_median = _best_median([r["whole_run_records_per_s"] for r in mine])
        out[v] = {"runs": len(mine), "records": mine[0]["records"],
                  "window_best": window_best, "window_median": window_median,
                  "whole_run_best": whole_best, "whole_run_median": whole_median,
                  "window_seconds": [r["reading_window"].get("seconds") for r in mine],
                  "job_duration_s": [r["job_duration_s"] for r in mine],
                  "description": DESCRIPTIONS[v]}
    return out


def ratios(summary: dict) -> dict:
    """Both ratios from the reading-window rates (best to best, median to median), and the same
    from the whole-run rates."""
    out = {}
    for name, (num, den) in RATIOS.items():
        if num not in summary or den not in summary:
            continue
        row = {"definition": f"{num} / {den} (records/s)", "goal": GOALS[name]}
        for basis in ("window", "whole_run"):
            for stat in ("best", "median"):
                a, b = summary[num][f"{basis}_{stat}"], summary[den][f"{basis}_{stat}"]
                row[f"{basis}_{stat}"] = round(a / b, 3) if a and b else None
        row["meets_goal"] = row["window_best"] is not None and row["window_best"] >= GOALS[name]
        out[name] = row
    return out


def output_rows(runs: list[dict]) -> dict:
    """Records written per output topic (short name) by each variant's runs, and whether the full
    job and the baseline wrote the same: every topic but the upsert changelogs (their updates depend
    on timing), and the enriched events record for record (digest)."""
    by_variant: dict[str, list[dict]] = {}
    for r in runs:
        if "rows" in r:
            by_variant.setdefault(r["variant"], []).append(r)
    out: dict = {"per_variant": {v: [r["rows"] for r in rs] for v, rs in by_variant.items()}}
    if "full" in by_variant and "full_no_udf" in by_variant:
        full, base = by_variant["full"][0], by_variant["full_no_udf"][0]
        compared = {t: (n, base["rows"].get(t)) for t, n in full["rows"].items() if t not in full["timing_dependent"]}
        out["full_vs_full_no_udf"] = {
            "round": full["round"],
            "equal_topics": sorted(t for t, (a, b) in compared.items() if a == b),
            "different_topics": {t: {"full": a, "full_no_udf": b} for t, (a, b) in compared.items() if a != b},
            "not_compared": sorted(full["timing_dependent"]),
            "rows_full": sum(a for a, _ in compared.values()),
            "rows_full_no_udf": sum(b or 0 for _, b in compared.values()),
            "enriched_events_identical": (full.get("digest") is not None and full.get("digest") == base.get("digest")),
        }
    return out


def svg_chart(summary: dict, rates: dict, title: str) -> str:
    notes = [f"{k}: {v['window_best']:.2f} (goal &#8805; {v['goal']})" for k, v in rates.items()
             if v.get("window_best") is not None]
    notes.append("bar = best over the reading window, dashed = best over the whole run")
    bars = {v: (s["window_best"] or 0, s["whole_run_best"]) for v, s in summary.items()}
    return bar_chart(bars, title, "records/s", notes,
                     colours={"blackhole": "#8c8c8c", "full": "#1f77b4", "full_no_udf": "#ff7f0e"})


def _n(value) -> str:
    return "-" if value is None else f"{value:,}"


def print_report(report: dict) -> None:
    summary, rates, rows = report["summary"], report["ratios"], report["output_rows"]
    say("")
    say(f"{'variant':12} {'records':>9} | {'reading window: best':>21} {'median':>8} {'seconds':>14} | "
        f"{'whole run: best':>16} {'median':>8} {'job s':>14}")
    for v, s in summary.items():
        seconds = "/".join(f"{x:.0f}" for x in s["window_seconds"] if x is not None) or "-"
        durations = "/".join(f"{x:.0f}" for x in s["job_duration_s"])
        say(f"{v:12} {s['records']:9,} | {_n(s['window_best']):>21} {_n(s['window_median']):>8} {seconds:>14} | "
            f"{_n(s['whole_run_best']):>16} {_n(s['whole_run_median']):>8} {durations:>14}")
    produced = report["produce"]
    say(f"(records/s; producer: {produced['sends']:,} sends in {produced['seconds']:.1f} s = "
        f"{produced['sends_per_s']:,}/s)")
    if "full_vs_full_no_udf" in rows:
        cmp = rows["full_vs_full_no_udf"]
        say("")
        say(f"rows written (round {cmp['round']}):")
        full_rows = next(r for r in report["runs"] if r["variant"] == "full" and "rows" in r)["rows"]
        base_rows = next(r for r in report["runs"] if r["variant"] == "full_no_udf" and "rows" in r)["rows"]
        for topic in full_rows:
            mark = "(timing)" if topic in cmp["not_compared"] else ("equal" if full_rows[topic] == base_rows.get(topic)
                                                                     else "DIFFERENT")
            say(f"  {topic:24} full {full_rows[topic]:>10,}   full_no_udf {_n(base_rows.get(topic)):>10}   {mark}")
        say(f"  compared topics: full {cmp['rows_full']:,}, full_no_udf {cmp['rows_full_no_udf']:,}; "
            f"enriched events identical: {'yes' if cmp['enriched_events_identical'] else 'NO'}")
    say("")
    def ratio(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    for name, r in rates.items():
        verdict = "meets goal" if r["meets_goal"] else "BELOW GOAL"
        say(f"{name:20} reading window {ratio(r['window_best'])} (median {ratio(r['window_median'])})  "
            f"goal >= {r['goal']}  {verdict}   whole run {ratio(r['whole_run_best'])} "
            f"(median {ratio(r['whole_run_median'])})   [{r['definition']}]")


# ---------------------------------------------------------------- main

def short_error(exc: BaseException) -> str:
    """One line for an error: for a Java exception through Py4J, its innermost cause."""
    text = str(exc)
    causes = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("Caused by:")]
    if causes:
        return causes[-1].removeprefix("Caused by:").strip()[:500]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def flink_log() -> str:
    from adagg.stack import flink_home

    return str(flink_home() / "log")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=600_000, help="original events to generate (default 600000)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every variant (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="traffic generator seed (default 1)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma list of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--run-timeout", type=float, default=1800, help="seconds before a job run counts as hung")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the benchmark's topics")
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports", help="report directory (default reports/)")
    args = parser.parse_args(argv)
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variant_list if v not in VARIANTS]
    if unknown or not args.variant_list:
        parser.error(f"unknown variant(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(VARIANTS)}")
    if args.events < 1000 or args.repeat < 1:
        parser.error("--events must be >= 1000 and --repeat >= 1")
    return args


def benchmark(args: argparse.Namespace) -> dict:
    from adagg import flink
    from adagg.demo import make_traffic
    from adagg.kafka_io import ensure_topics
    from adagg.setup import connector_jars, fetch
    from adagg.sql import pipeline_version
    from adagg.stack import start_fresh

    t_start = time.monotonic()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    env = base_env(run_id)
    load_before = os.getloadavg()
    host = machine()  # now: the git commit is the one the run starts from
    report: dict = {"benchmark": "pipeline_throughput", "run_id": run_id,
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "parameters": {"events": args.events, "repeat": args.repeat, "seed": args.seed, "ads": 100,
                                   "variants": args.variant_list, "env": "local", "where": "the stack's session cluster",
                                   "raw_partitions": env.topics.raw.partitions,
                                   "parallelism": env.flink.parallelism,
                                   "taskmanagers": env.stack.flink_taskmanagers,
                                   "checkpoint_interval": env.flink.checkpoint_interval,
                                   "state_backend": env.flink.state_backend,
                                   "python_execution_mode": env.flink.python_execution_mode,
                                   "sample_s": SAMPLE_S, "raw_topic": env.topics.raw.name},
                    "goals": GOALS}
    folder = Path(tempfile.mkdtemp(prefix=f"adagg-bench-{run_id}-"))
    stack_up = False
    try:
        say("[1/5] a fresh stack: Kafka and Flink ...")
        fetch(say=lambda line: say("  " + line))
        jars = connector_jars()
        if not jars:
            raise StackError("the Flink Kafka connector jar is missing: run `adagg setup` first")
        start_fresh(["kafka", "flink"], say=lambda line: None)
        stack_up = True

        say("[2/5] the runs' scripts")
        report["parameters"]["pipeline_version"] = pipeline_version()
        plan = render_runs(env, run_id, args.variant_list, args.repeat, jars, folder)
        create_raw_topic(env)
        for planned in plan:
            if planned["variant"] != "blackhole":
                ensure_topics(planned["env"], say=lambda *_: None)
        say(f"  rendered {len(plan)} runs of sql/ at {report['parameters']['pipeline_version']}; "
            f"output topics bench.{run_id}.<variant>-r<round>.*")

        say(f"[3/5] traffic: generating {args.events:,} events (seed {args.seed}, 100 ads) ...")
        t0 = time.monotonic()
        traffic = make_traffic(env, seed=args.seed, events=args.events, ads=100)
        st = traffic.oracle.stats
        say(f"  {st['sends']:,} sends in {time.monotonic() - t0:.0f} s: {st['unique_events']:,} events + "
            f"{st['duplicates']:,} duplicates; {st['retries']:,} billing repeats, "
            f"{st['bots'] + st['blocked_ips']:,} invalid, {st['out_of_order']:,} out of order, "
            f"{st['late_events']:,} late, {st['v2_events']:,} on contract v2")
        report["traffic"] = {k: v for k, v in st.items() if isinstance(v, (int, float, str))}
        report["traffic"]["generate_s"] = round(time.monotonic() - t0, 1)
        sends = [s for phase in traffic.phases for s in phase]
        del traffic
        report["produce"] = produce_backlog(env, sends)
        del sends
        records = topic_records(env, env.topics.raw.name)
        if records != report["produce"]["sends"]:
            raise RuntimeError(f"{env.topics.raw.name} holds {records} records, {report['produce']['sends']} were sent")
        report["records"] = records
        say(f"  {records:,} records in {env.topics.raw.name} ({env.topics.raw.partitions} partitions), produced "
            f"at {report['produce']['sends_per_s']:,}/s")

        say(f"[4/5] {len(plan)} bounded job runs on the session cluster (parallelism {env.flink.parallelism}), "
            f"{args.repeat} round(s) of {', '.join(args.variant_list)}")
        report["machine_load_before_jobs"] = [round(x, 2) for x in os.getloadavg()]
        runs: list[dict] = []
        report["runs"] = runs
        for number, planned in enumerate(plan, 1):
            say(f"  run {number}/{len(plan)}: {planned['variant']} (round {planned['round']}) ...")
            row = run_variant(planned, records, args.run_timeout)
            runs.append(row)
            window = row["reading_window"]
            say(f"    reading window {_n(row['window_records_per_s'])} records/s ({window.get('seconds')} s, "
                f"{window.get('points')} points); whole run {row['whole_run_records_per_s']:,} records/s "
                f"({row['job_duration_s']:.1f} s; client {row['client_submit_s']:.0f} s)")
            if planned["outputs"]:
                digest = tuple(t for t in planned["outputs"] if t.endswith(ENRICHED))
                counts, digests = count_records(planned["env"], planned["outputs"], digest)
                short = {t.removeprefix(planned["prefix"]): n for t, n in counts.items()}
                row["rows"] = short
                row["timing_dependent"] = [t.removeprefix(planned["prefix"]) for t in planned["upsert"]]
                row["digest"] = next(iter(digests.values()), None)
                say(f"    rows written: {sum(short.values()):,} ({', '.join(f'{t} {n:,}' for t, n in short.items())})")
                if not sum(short.values()):
                    say(f"    WARNING: {planned['variant']} wrote nothing to its output topics")
        report["summary"] = summarize(runs, args.variant_list)
        report["ratios"] = ratios(report["summary"])
        report["output_rows"] = output_rows(runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(f"/tmp/adagg-bench-{run_id}-archive", ignore_errors=True)
        if stack_up:
            try:
                flink.cancel_all(env, say=lambda *_: None)  # a run left by an error
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
                say(f"could not cancel the benchmark's jobs: {exc}")
            if args.keep_topics:
                say(f"keeping the benchmark's topics (bench.{run_id}.*)")
            else:
                try:
                    deleted = delete_topics(env, run_id)
                    say(f"[5/5] deleted {len(deleted)} benchmark topics (bench.{run_id}.*)")
                except Exception as exc:  # noqa: BLE001
                    say(f"could not delete the benchmark topics bench.{run_id}.*: {exc}")
    report["machine"] = host
    report["machine"]["load_average_before"] = [round(x, 2) for x in load_before]
    if "machine_load_before_jobs" in report:
        report["machine"]["load_average_before_jobs"] = report.pop("machine_load_before_jobs")
    # 1, 5, 15 min; "after" includes the benchmark's own load.
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["total_s"] = round(time.monotonic() - t_start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with stack_lock():
            report = benchmark(args)
    except StackError as exc:
        print(f"pipeline_throughput: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pipeline_throughput: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line; Java traces go to the Flink log
        print(f"pipeline_throughput: error: {short_error(exc)}\n  (Flink log: {flink_log()})", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "pipeline_throughput.json"
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    svg = args.out / "pipeline_throughput.svg"
    svg.write_text(svg_chart(report["summary"], report["ratios"],
                             f"adagg pipeline throughput ({report['records']:,} records, "
                             f"{report['machine']['cpus']} CPUs, parallelism {report['parameters']['parallelism']})"))
    print_report(report)
    m = report["machine"]
    say(f"machine: {m['cpu_model']} x{m['cpus']}, {m['memory_gib']} GiB, load {m['load_average_before'][0]:.2f} "
        f"before / {m['load_average_after'][0]:.2f} after; took {report['total_s']:.0f} s")
    say("The stack (Kafka and Flink) is left running; stop it with `.venv/bin/adagg stack down`.")
    say(f"report: {out}\nplot:   {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
