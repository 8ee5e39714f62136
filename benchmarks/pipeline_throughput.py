"""Benchmark: throughput of the streaming job, as ratios measured in one run (GUIDE §4).

Measures, on a local PyFlink mini-cluster reading a real Kafka topic:

* pipeline efficiency = full streaming job throughput / the same Flink reading the same topic into
  a blackhole sink (same source table: JSON parsing and watermarks, no processing). Goal >= 0.5.
* Python UDF overhead  = the full job / the same job rendered without its Python UDFs
  (sql.render(..., python_udfs=False): constant enrichment). Goal >= 0.8.
* the absolute events/s of each variant.

The generated traffic (adagg.demo.make_traffic: duplicates, billing repeats, bots, a hot ad,
contract v1/v2, a few late events) is produced once to a fresh topic bench.<run-id>.ad-events.raw.
Every variant then reads that topic from the earliest offset, bounded at the latest offset, in
streaming mode with the job's own SET statements (parallelism 1, checkpoints, thread-mode UDFs),
and writes to its own topics (full variants: the job's real exactly-once Kafka sinks). The
mini-cluster's JVM runs with the stack TaskManager's options (stack.flink_taskmanager.jvm_opts;
JVM_ARGS overrides them).
Throughput = Kafka records in the topic / the finished job's net runtime. Variants run in
interleaved rounds (--repeat); the best and the median of each are kept. The ratios use the best.

The local stack's ports are fixed and shared with the test tiers: the benchmark holds the
machine-wide lock /tmp/adagg-stack.lock for its whole run (waiting for a running test tier), starts
Kafka only if it is not running (and leaves it running), and deletes its topics at the end.

    .venv/bin/python benchmarks/pipeline_throughput.py            # 300,000 events, 2 rounds
    .venv/bin/python benchmarks/pipeline_throughput.py --events 50000 --repeat 1 --variants blackhole,full

Prints a table and the ratios; writes reports/pipeline_throughput.json (figures, goals,
parameters, machine) and reports/pipeline_throughput.svg. With the defaults it holds the lock
for about 8 minutes on the 2-core development machine: generating ~45 s, producing ~70 s
(kafka-python tops out near 5,000 sends/s here), then 6 job runs of 5 s to 2 min each plus
~10 s of planning and deployment around each. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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
from benchmarks.common import bar_chart, kafka_up, machine, say, stack_lock  # noqa: E402

VARIANTS = ("blackhole", "full", "full_no_udf")
GOALS = {"pipeline_efficiency": 0.5, "python_udf_ratio": 0.8}
DESCRIPTIONS = {
    "blackhole": "the job's source table -> blackhole (JSON parsing + watermarks only)",
    "full": "the full streaming job with its Python UDFs, exactly-once Kafka sinks",
    "full_no_udf": "the full streaming job rendered with python_udfs=False",
}
SOURCE_TABLE = "src_ad_events_raw"
BLACKHOLE_TABLE = "bench_blackhole"


# ---------------------------------------------------------------- environments

def base_env(run_id: str) -> Namespace:
    """The local environment reading the benchmark's raw topic from the start, bounded at its end."""
    env = load("local")
    env = override(env, {"topics.raw.name": f"bench.{run_id}.ad-events.raw",
                         "flink.raw_startup_mode": "earliest-offset"})
    env.flink["raw_source_options"] = Namespace({"scan.bounded.mode": "latest-offset"})
    return env


def variant_env(env: Namespace, run_id: str, variant: str, round_no: int) -> Namespace:
    """Own output topics per variant; own consumer group and transactional ids per run."""
    ns = f"bench.{run_id}.{variant.replace('_', '-')}"
    return override(env, {
        "outputs.prefix": f"{ns}.",
        "topics.late.name": f"{ns}.ad-events.late",
        "topics.enriched.name": f"{ns}.ad-events.enriched",
        "flink.consumer_group": f"adagg-bench-{run_id}-{variant}-r{round_no}",
        "flink.transactional_id_prefix": f"adagg-bench-{run_id}-{variant}-r{round_no}",
        # The full job archives every delivery too: into a folder of the run's, not the stack's archive.
        "archive.path": f"/tmp/adagg-bench-{run_id}-archive/{variant}-r{round_no}",
    })


# ---------------------------------------------------------------- traffic

def produce(env: Namespace, traffic) -> dict:
    """Every send of every phase, in order, to the raw topic; as fast as the client goes."""
    from kafka import KafkaProducer

    sends = [s for phase in traffic.phases for s in phase]
    topic, total = env.topics.raw.name, len(sends)
    producer = KafkaProducer(bootstrap_servers=env.kafka.bootstrap_servers, acks="all",
                             linger_ms=50, batch_size=512 * 1024)
    step = max(total // 10, 1)
    t0 = time.monotonic()
    try:
        for i, send in enumerate(sends, 1):
            producer.send(topic, key=send.key, value=send.value, partition=send.partition)
            if i % step == 0 and i // step < 10:
                say(f"  produced {i:>9,} / {total:,} ({100 * i / total:3.0f}%)  "
                    f"{i / max(time.monotonic() - t0, 1e-3):,.0f} sends/s")
        producer.flush()
        seconds = time.monotonic() - t0
        say(f"  produced {total:>9,} / {total:,} (100%)  {total / seconds:,.0f} sends/s (all acknowledged)")
    finally:
        producer.close()
    return {"sends": total, "bytes": sum(len(s.key) + len(s.value) for s in sends),
            "seconds": round(seconds, 2), "sends_per_s": round(total / seconds)}


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


def output_offsets(env: Namespace, topics: list[str]) -> int:
    """Sum of the end offsets of a variant's output topics (records + transaction markers); the
    difference over a run is a sanity check that the job wrote something."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=env.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


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


def render_runs(env: Namespace, run_id: str, variants: list[str], repeat: int, jars: list[str]) -> list[dict]:
    """Every run's environment and script, rendered up front: all runs measure the same SQL even
    if sql/ changes while the benchmark runs."""
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
            outputs = [t for t in re.findall(r"^  'topic' = '([^']+)'", script, re.M) if t != env.topics.raw.name]
            runs.append({"variant": variant, "round": round_no, "env": venv, "script": script, "outputs": outputs})
    return runs


def mini_cluster_conf(checkpoint_dir: Path) -> list[str]:
    """Settings of the mini-cluster itself, not of the job (the job's own SET statements follow).

    Checkpoints go to files, as on the session cluster (infra/stack/flink): the default
    JobManager-memory storage caps each task's state at 5 MB, which the job exceeds at this size.
    No restarts: a failed run is an error, not a slower run.
    """
    from adagg.env import load
    from adagg.flink import mini_cluster_conf as managed  # RocksDB and the window buffers share it

    return [f"execution.checkpointing.dir={checkpoint_dir.resolve().as_uri()}",
            "execution.checkpointing.storage=filesystem",
            "restart-strategy.type=none", *managed(load("local"))]


def run_variant(planned: dict, jars: list[str], records: int, conf: list[str], timeout_s: float) -> dict:
    """Run one planned variant's script to its end on a fresh TableEnvironment (sharing the gateway
    JVM); returns its net runtime and throughput."""
    from pyflink_jobs.streaming_job import build_table_env, run_script

    variant, env, script, outputs = planned["variant"], planned["env"], planned["script"], planned["outputs"]
    t_env = build_table_env(jars, conf)
    offsets_before = output_offsets(env, outputs) if outputs else 0
    t0 = time.monotonic()
    result = run_script(t_env, script)
    client = result.get_job_client()
    future = client.get_job_execution_result()
    try:
        next_note = 60
        while not future.done():
            elapsed = time.monotonic() - t0
            if elapsed > timeout_s:
                raise RuntimeError(f"{variant} did not finish within {timeout_s:.0f} s (--run-timeout)")
            if elapsed >= next_note:
                say(f"    ... {elapsed:.0f} s")
                next_note += 60
            time.sleep(0.5)
    except BaseException:
        client.cancel()
        raise
    job_result = future.result()
    wall_s = time.monotonic() - t0
    net_ms = job_result.get_net_runtime()
    row = {"variant": variant, "job_id": str(client.get_job_id()), "records": records,
           "net_runtime_s": round(net_ms / 1000, 3), "wall_s": round(wall_s, 2),
           "events_per_s": round(records / max(net_ms / 1000, 1e-3))}
    if outputs:
        row["output_offsets"] = output_offsets(env, outputs) - offsets_before
    return row


# ---------------------------------------------------------------- report

def summarize(runs: list[dict], variants: list[str]) -> dict:
    out = {}
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        if not mine:
            continue
        rates = [r["events_per_s"] for r in mine]
        seconds = [r["net_runtime_s"] for r in mine]
        out[v] = {"runs": len(mine), "records": mine[0]["records"],
                  "best_events_per_s": max(rates), "median_events_per_s": round(statistics.median(rates)),
                  "best_net_runtime_s": min(seconds), "median_net_runtime_s": round(statistics.median(seconds), 3),
                  "description": DESCRIPTIONS[v]}
    return out


def ratios(summary: dict) -> dict:
    out = {}
    for name, (num, den) in {"pipeline_efficiency": ("full", "blackhole"),
                             "python_udf_ratio": ("full", "full_no_udf")}.items():
        if num in summary and den in summary:
            best = summary[num]["best_events_per_s"] / summary[den]["best_events_per_s"]
            median = summary[num]["median_events_per_s"] / summary[den]["median_events_per_s"]
            out[name] = {"best": round(best, 3), "median": round(median, 3), "goal": GOALS[name],
                         "meets_goal": best >= GOALS[name], "definition": f"{num} / {den} (events/s)"}
    return out


def svg_chart(summary: dict, rates: dict, title: str) -> str:
    notes = [f"{k}: {v['best']:.2f} (goal &#8805; {v['goal']})" for k, v in rates.items()]
    notes.append("bar = best run, dashed = median")
    bars = {v: (s["best_events_per_s"], s["median_events_per_s"]) for v, s in summary.items()}
    return bar_chart(bars, title, "events/s (net runtime)", notes,
                     colours={"blackhole": "#8c8c8c", "full": "#1f77b4", "full_no_udf": "#ff7f0e"})


def print_report(summary: dict, rates: dict, produced: dict) -> None:
    say("")
    say(f"{'variant':12} {'records':>9} {'best s':>8} {'median s':>9} {'best ev/s':>10} {'median ev/s':>12}")
    for v, s in summary.items():
        say(f"{v:12} {s['records']:9,} {s['best_net_runtime_s']:8.2f} {s['median_net_runtime_s']:9.2f} "
            f"{s['best_events_per_s']:10,} {s['median_events_per_s']:12,}")
    say(f"(producer: {produced['sends']:,} sends in {produced['seconds']:.1f} s = {produced['sends_per_s']:,}/s)")
    for name, r in rates.items():
        verdict = "meets goal" if r["meets_goal"] else "BELOW GOAL"
        say(f"{name:20} {r['best']:.3f} (median {r['median']:.3f})  goal >= {r['goal']}  {verdict}   "
            f"[{r['definition']}]")


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
    parser.add_argument("--events", type=int, default=300_000, help="original events to generate (default 300000)")
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
    from adagg.demo import make_traffic
    from adagg.kafka_io import ensure_topics
    from adagg.setup import connector_jars
    from adagg.sql import pipeline_version

    t_start = time.monotonic()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    env = base_env(run_id)
    # The mini-cluster's JVM gets the stack TaskManager's options (its garbage collector): the
    # figure is the streaming job's as deployed. PyFlink reads JVM_ARGS when it starts that JVM.
    os.environ.setdefault("JVM_ARGS", env.stack.flink_taskmanager.jvm_opts)
    load_before = os.getloadavg()
    host = machine()  # now: the git commit is the one the run starts from
    report: dict = {"benchmark": "pipeline_throughput", "run_id": run_id,
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "parameters": {"events": args.events, "repeat": args.repeat, "seed": args.seed, "ads": 100,
                                   "variants": args.variant_list, "env": "local",
                                   "raw_partitions": env.topics.raw.partitions,
                                   "parallelism": env.flink.parallelism,
                                   "checkpoint_interval": env.flink.checkpoint_interval,
                                   "python_execution_mode": env.flink.python_execution_mode,
                                   "jvm_args": os.environ["JVM_ARGS"],
                                   "raw_topic": env.topics.raw.name},
                    "goals": GOALS}
    checkpoint_dir = None
    try:
        say("[1/4] Kafka and the rendered job")
        started_kafka = kafka_up()
        report["started_kafka"] = started_kafka
        jars = connector_jars()
        if not jars:
            raise StackError("the Flink Kafka connector jar is missing: run `adagg setup` first")
        report["parameters"]["pipeline_version"] = pipeline_version()
        plan = render_runs(env, run_id, args.variant_list, args.repeat, jars)
        create_raw_topic(env)
        for variant in args.variant_list:
            if variant != "blackhole":
                ensure_topics(next(p["env"] for p in plan if p["variant"] == variant), say=lambda *_: None)
        say(f"  rendered {len(plan)} runs of sql/ at {report['parameters']['pipeline_version']}; "
            f"output topics bench.{run_id}.<variant>.*")

        say(f"[2/4] Traffic: generating {args.events:,} events (seed {args.seed}, 100 ads) ...")
        t0 = time.monotonic()
        traffic = make_traffic(env, seed=args.seed, events=args.events, ads=100)
        st = traffic.oracle.stats
        say(f"  {st['sends']:,} sends in {time.monotonic() - t0:.0f} s: {st['unique_events']:,} events + "
            f"{st['duplicates']:,} duplicates; {st['retries']:,} billing repeats, "
            f"{st['bots'] + st['blocked_ips']:,} invalid, {st['out_of_order']:,} out of order, "
            f"{st['late_events']:,} late, {st['v2_events']:,} on contract v2")
        report["traffic"] = {k: v for k, v in st.items() if isinstance(v, (int, float, str))}
        report["traffic"]["generate_s"] = round(time.monotonic() - t0, 1)

        say(f"[3/4] Producing to {env.topics.raw.name} ({env.topics.raw.partitions} partitions, acks=all)")
        report["produce"] = produce(env, traffic)
        del traffic
        records = topic_records(env, env.topics.raw.name)
        if records != report["produce"]["sends"]:
            raise RuntimeError(f"{env.topics.raw.name} holds {records} records, {report['produce']['sends']} were sent")
        report["records"] = records

        say(f"[4/4] {len(plan)} bounded job runs on a local mini-cluster (parallelism {env.flink.parallelism}), "
            f"{args.repeat} round(s) of {', '.join(args.variant_list)}")
        report["load_average_before_jobs"] = [round(x, 2) for x in os.getloadavg()]
        checkpoint_dir = Path(tempfile.mkdtemp(prefix=f"adagg-bench-{run_id}-checkpoints-"))
        conf = mini_cluster_conf(checkpoint_dir)
        report["parameters"]["mini_cluster_conf"] = conf
        runs: list[dict] = []
        for number, planned in enumerate(plan, 1):
            variant = planned["variant"]
            say(f"  run {number}/{len(plan)}: {variant} (round {planned['round']}) ...")
            row = run_variant(planned, jars, records, conf, args.run_timeout)
            row["round"] = planned["round"]
            runs.append(row)
            extra = f", {row['output_offsets']:,} output offsets" if "output_offsets" in row else ""
            say(f"    net runtime {row['net_runtime_s']:.2f} s, {row['events_per_s']:,} events/s "
                f"(submit-to-end {row['wall_s']:.1f} s{extra})")
            if variant != "blackhole" and not row.get("output_offsets"):
                say(f"    WARNING: {variant} wrote nothing to its output topics")
        report["runs"] = runs
        report["summary"] = summarize(runs, args.variant_list)
        report["ratios"] = ratios(report["summary"])
    finally:
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        shutil.rmtree(f"/tmp/adagg-bench-{run_id}-archive", ignore_errors=True)
        if report.get("produce") or report.get("started_kafka") is not None:
            if args.keep_topics:
                say(f"keeping the benchmark's topics (bench.{run_id}.*)")
            else:
                try:
                    deleted = delete_topics(env, run_id)
                    say(f"deleted {len(deleted)} benchmark topics (bench.{run_id}.*)")
                except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
                    say(f"could not delete the benchmark topics bench.{run_id}.*: {exc}")
    report["machine"] = host
    report["machine"]["load_average_before"] = [round(x, 2) for x in load_before]
    if "load_average_before_jobs" in report:
        report["machine"]["load_average_before_jobs"] = report.pop("load_average_before_jobs")
    # 1, 5, 15 min; "after" includes the benchmark's own load (the mini-cluster runs ~15 threads).
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
    out.write_text(json.dumps(report, indent=2) + "\n")
    svg = args.out / "pipeline_throughput.svg"
    svg.write_text(svg_chart(report["summary"], report["ratios"],
                             f"adagg pipeline throughput ({report['records']:,} records, "
                             f"{report['machine']['cpus']} CPUs, parallelism {report['parameters']['parallelism']})"))
    print_report(report["summary"], report["ratios"], report["produce"])
    m = report["machine"]
    say(f"machine: {m['cpu_model']} x{m['cpus']}, {m['memory_gib']} GiB, load {m['load_average_before'][0]:.2f} "
        f"before / {m['load_average_after'][0]:.2f} after; took {report['total_s']:.0f} s")
    if report.get("started_kafka"):
        say("Kafka was started by this benchmark and is left running; stop it with `.venv/bin/adagg stack down`.")
    say(f"report: {out}\nplot:   {svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
