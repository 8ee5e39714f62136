"""Benchmark: dashboard query latency over 10 million aggregate rows, idle and while ingesting.

1. Starts Kafka and Pinot (not Flink) if they are not running, with the Pinot server's heap at
   --server-heap: the upsert table keeps every primary key on the heap (10 M keys need ~3 GB).
   If the server runs with another heap, it is restarted; it is left running at the end.
2. Creates two tables, bench_ad_minute and bench_ad_minute_live, from the very table configs of
   ad_minute and ad_minute_live (pinot/), on topics of their own.
3. Produces --rows final minute rows (2,000 ads x 10 countries x 5 devices per minute, newest
   minutes last) and waits until Pinot holds them all, then until the Pinot server is idle
   (under 10% of a core over 5 s): after a load or a restart it may still be building or
   loading segments. --no-settle measures at once; the wait is reported (settle_seconds).
4. Makes each dashboard query --warmup times untimed (JIT warm-up of a server that has just
   started or loaded), then times the queries in turns, --samples calls of each, idle, then again
   while a producer writes new minutes to the live table at --ingest-rate rows/s (default 8,000:
   about what the pipeline writes to Pinot at its peak on this machine). The queries are
   serving.queries' own functions, i.e. everything the API does but the HTTP framing. Each call
   makes several Pinot queries (tier boundaries, final and live sums, freshness); the figure is
   the whole call, with the API's BoundaryCache (whole-table statements refreshed every second
   in the background).

    .venv/bin/python benchmarks/serving_latency.py                 # 10,000,000 rows
    .venv/bin/python benchmarks/serving_latency.py --rows 1000000 --samples 100
    .venv/bin/python benchmarks/serving_latency.py --keep ; ... --reuse   # load once, measure again

Prints a table; writes reports/serving_latency.json and .svg; drops its tables and topics unless
--keep. Holds the stack lock (~10 min).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths, procstat  # noqa: E402
from adagg.env import load, override  # noqa: E402
from benchmarks.common import bar_chart, create_topics, delete_topics, machine, say, stack_lock  # noqa: E402

GOAL_P95_MS = 50
ADS, COUNTRIES, DEVICES = 2000, ("US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "ZZ"), \
    ("desktop", "mobile", "tablet", "bot", "other")
PREFIX = "bench_"


def start_services(server_heap: str):
    from adagg.setup import fetch
    from adagg.stack import Stack

    fetch(say=lambda line: say("  " + line))
    env = override(load("local"), {"stack.pinot_server.heap": server_heap})
    stack = Stack("local", env=env)
    pid = stack.pid("pinot-server")
    if pid and f"-Xmx{server_heap}".encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
        say(f"  restarting pinot-server with a {server_heap} heap")
        stack.down(["pinot-server"], say=lambda line: say(line))
    stack.up(["kafka", "pinot"], say=lambda line: say(line))
    return env


def server_pid(env) -> int | None:
    from adagg.stack import Stack

    return Stack("local", env=env).pid("pinot-server")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/<pid>/stat, fields 14 and 15)."""
    return procstat.read(pid).cpu_seconds


def settle(pid: int | None, share: float = 0.10, window_s: float = 5.0, cap_s: float = 900.0) -> float:
    """Wait until the Pinot server uses under `share` of a core over `window_s`; the seconds waited.
    After a load or a restart it may still be building segments or rebuilding upsert metadata,
    and a run measured meanwhile says more about that than about the queries. (The heap a bulk
    load leaves behind is not seen here: docs/benchmarks.md#serving-latency.)"""
    t0 = time.monotonic()
    while pid:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        used = (cpu_seconds(pid) - before) / window_s
        waited = time.monotonic() - t0
        if used < share:
            say(f"  the Pinot server is idle ({used:.0%} of a core) after {waited:.0f} s")
            break
        if waited > cap_s:
            say(f"  the Pinot server is still busy ({used:.0%} of a core) after {waited:.0f} s: measuring anyway")
            break
        say(f"  waiting for the Pinot server to settle: {used:.0%} of a core over the last {window_s:.0f} s")
    return round(time.monotonic() - t0)


def restart_server(env) -> None:
    """Pinot 0.11's server keeps a dropped table's data manager, and with it the table's old
    upsert settings (e.g. its key hash function), until it restarts: restart it between dropping
    the bench tables and creating them again, so that the load runs on the current configs."""
    from adagg.stack import Stack

    stack = Stack("local", env=env)
    if stack.pid("pinot-server"):
        say("  restarting pinot-server, so that it reads the bench tables' configs afresh")
        stack.down(["pinot-server"], say=lambda line: say(line))
        stack.up(["pinot"], say=lambda line: say(line))


def bench_specs(env, run_id: str):
    """ad_minute and ad_minute_live as rendered for this environment, renamed, on their own topics."""
    from adagg.pinot import TableSpec, tables

    out = []
    for spec in tables(override(env, {"outputs.prefix": f"bench.{run_id}."})):
        if spec.name in ("ad_minute", "ad_minute_live"):
            name = PREFIX + spec.name
            config = json.loads(json.dumps(spec.table_config).replace(f'"{spec.name}"', f'"{name}"'))
            out.append(TableSpec(name, {**spec.schema, "schemaName": name}, config))
    return out


def topic_of(table_config: dict) -> str:
    return table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]["stream.kafka.topic.name"]


def rows(minute_starts, seed: int = 0):
    """(key, value) JSON bytes for every ad x country x device of each minute."""
    import random

    rng = random.Random(seed)
    for start in minute_starts:
        for a in range(ADS):
            ad = f"ad-{a:05d}"
            campaign, advertiser = f"camp-{a // 10:04d}", f"adv-{a // 100:03d}"
            for country in COUNTRIES:
                for device in DEVICES:
                    imp = rng.randint(0, 50)
                    clk = rng.randint(0, imp // 5 + 1)
                    key = f'{{"window_start_ms":{start},"ad_id":"{ad}","country":"{country}","device_type":"{device}"}}'
                    value = (f'{{"window_start_ms":{start},"window_end_ms":{start + 60000},"ad_id":"{ad}",'
                             f'"campaign_id":"{campaign}","advertiser_id":"{advertiser}","vertical":"retail",'
                             f'"country":"{country}","device_type":"{device}","impressions":{imp},"clicks":{clk},'
                             f'"conversions":0,"invalid_events":0,"billable_impressions":{imp},'
                             f'"billable_clicks":{clk},"billable_conversions":0,"spend_micros":{clk * 500000},'
                             f'"conversion_value_micros":0,"tier":"final","version":1,'
                             f'"pipeline_version":"bench","computed_at_ms":{start + 75000}}}')
                    yield key.encode(), value.encode()


def produce(bootstrap: str, topic: str, records, rate: float | None = None, stop=None) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "compression.type": "lz4", "partitioner": "murmur2_random"})
    sent, t0 = 0, time.monotonic()
    for key, value in records:
        if stop is not None and stop.is_set():
            break
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if rate and sent % 500 == 0:
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        if sent % 1_000_000 == 0 and not rate:
            say(f"  produced {sent:,} rows ({sent / (time.monotonic() - t0):,.0f}/s)")
    producer.flush(120)
    return sent


def renaming(run, seen: list):
    """The serving queries name the real tables; point them at the bench copies. Remembers the
    statements of the latest call in `seen`."""
    def bench_run(sql: str, bound: dict) -> list[dict]:
        sql = re.sub(r"\bFROM (ad_minute(?:_live)?)\b", rf"FROM {PREFIX}\1", sql)
        seen.append((sql, bound))
        return run(sql, bound)
    return bench_run


def pinot_stats(broker_url: str, statements: list) -> list[dict]:
    """Pinot's own cost figures for each statement: 0 entries scanned in the filter means the
    filter was answered by an index (inverted, range or sorted), not by scanning values."""
    import requests

    from serving.runner import bind

    out = []
    for sql, bound in statements:
        literal = bind(sql, dict(bound))  # as the API's runner sends it
        body = requests.post(f"{broker_url}/query/sql", json={"sql": literal}, timeout=60).json()
        out.append({"sql": literal[:160], "timeUsedMs": body.get("timeUsedMs"),
                    "numDocsScanned": body.get("numDocsScanned"),
                    "numEntriesScannedInFilter": body.get("numEntriesScannedInFilter"),
                    "numEntriesScannedPostFilter": body.get("numEntriesScannedPostFilter"),
                    "totalDocs": body.get("totalDocs")})
    return out


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(pick(0.50), 1), "p95_ms": round(pick(0.95), 1), "p99_ms": round(pick(0.99), 1),
            "mean_ms": round(statistics.fmean(ordered), 1), "samples": len(ordered)}


def dashboard_queries(run, newest_minute: int) -> dict:
    from serving import queries
    from serving.params import Filters

    hi = newest_minute + 60_000
    return {
        "ad X, last 60 min by minute": lambda i: queries.ad_metrics(run, f"ad-{(i * 37) % ADS:05d}", "minute",
                                                                   hi - 3_600_000, hi, Filters()),
        "ad X, last 60 min, country+device": lambda i: queries.ad_metrics(
            run, f"ad-{(i * 41) % ADS:05d}", "minute", hi - 3_600_000, hi, Filters(country="US", device_type="mobile")),
        "top 100 ads, last minute": lambda i: queries.top_ads(run, 100, 1, Filters()),
        "top 100 ads, last minute, country=DE": lambda i: queries.top_ads(run, 100, 1, Filters(country="DE")),
        "campaign summary, last 60 min": lambda i: queries.summary(run, "campaign", f"camp-{(i * 7) % (ADS // 10):04d}",
                                                                 hi - 3_600_000, hi, Filters()),
    }


def warm_up(run, calls: int, newest_minute: int) -> None:
    """Make each dashboard query `calls` times, untimed. A server that has just started or loaded
    runs its query path interpreted until the JIT has compiled it (after a load, idle p50 17-34 ms
    against 10-13 ms warmed: docs/benchmarks.md); a serving cluster has long compiled it."""
    for call in dashboard_queries(run, newest_minute).values():
        for i in range(calls):
            call(i)


def measure(run, samples: int, newest_minute: int, stats_run=None, seen: list | None = None,
            broker_url: str = "", interleaved: bool = False) -> dict:
    """Time each dashboard query `samples` times: one query after the other, or with `interleaved`
    in turns (query 1, 2, ... 5, 1, 2, ...), so that every query's samples span the whole phase
    and a background burst (a segment commit) slows a share of each query's samples instead of
    all of one query's. With stats_run, also record Pinot's own figures for every statement one
    call makes (through stats_run, which records into `seen`)."""
    cases = dashboard_queries(run, newest_minute)
    for call in cases.values():
        call(0)  # each query's statements are in the BoundaryCache before timing starts
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = ([(name, i) for i in range(samples) for name in cases] if interleaved
             else [(name, i) for name in cases for i in range(samples)])
    started = time.monotonic()
    for name, i in order:
        t0 = time.perf_counter()
        cases[name](i)
        times[name].append((time.perf_counter() - t0) * 1000)
    say(f"  ({len(order):,} calls in {time.monotonic() - started:.0f} s{', in turns' if interleaved else ''})")
    out = {}
    stats_cases = dashboard_queries(stats_run, newest_minute) if stats_run else {}
    for name in cases:
        out[name] = percentiles(times[name])
        if stats_run:
            seen.clear()
            stats_cases[name](samples)
            out[name]["pinot_queries_per_call"] = len(seen)
            out[name]["pinot_stats"] = pinot_stats(broker_url, list(dict.fromkeys(
                (sql, tuple(sorted(bound.items()))) for sql, bound in seen)))
        say(f"  {name:40} p50 {out[name]['p50_ms']:6.1f}  p95 {out[name]['p95_ms']:6.1f}  "
            f"p99 {out[name]['p99_ms']:6.1f} ms")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    # In turns, 800 calls of each query take about a minute while ingesting: a whole cycle of the
    # live table's segment commits at 8,000 rows/s, so the figures include one.
    parser.add_argument("--samples", type=int, default=800, help="timed calls of each query per phase")
    # What the pipeline writes to Pinot at its peak on this machine: ~3,600 events/s (the full
    # streaming job, reports/pipeline_throughput.json), each a live and an events_enriched row,
    # plus the final rows. docs/benchmarks.md also reports 4,000 and 20,000.
    parser.add_argument("--ingest-rate", type=int, default=8_000, help="rows/s written while measuring")
    parser.add_argument("--server-heap", default="4g")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=100,
                        help="untimed calls of each query before the idle timing (JIT warm-up)")
    parser.add_argument("--sequential", action="store_true",
                        help="time one query after the other instead of in turns (each query's samples then "
                             "span a few seconds, and one background burst can take all of one query's)")
    parser.add_argument("--keep", action="store_true", help="keep the bench tables and topics afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="measure on the tables a --keep run left, if they hold --rows rows (no loading)")
    parser.add_argument("--no-settle", action="store_true",
                        help="measure at once, without waiting for the Pinot server to go idle after a load or restart")
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports")
    args = parser.parse_args(argv)

    from serving import queries
    from serving.runner import BoundaryCache, PinotRunner

    run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:4]
    host = machine()
    per_minute = ADS * len(COUNTRIES) * len(DEVICES)
    minutes = -(-args.rows // per_minute)
    start = (int(time.time() * 1000) // 60_000 - minutes - 5) * 60_000
    with stack_lock():
        env = start_services(args.server_heap)
        specs = bench_specs(env, run_id)
        run = PinotRunner(env.pinot.broker_url, timeout_s=60)
        kept = kept_tables(env, run, args.rows) if args.reuse else None
        if kept:
            topics, n, newest = kept
            ingest_s = None
            say(f"reusing the kept bench tables: {n:,} rows")
        else:
            topics, n, ingest_s = load_tables(env, run, specs, args, start, minutes, per_minute)
            newest = start + minutes * 60_000
        settled_s = None if args.no_settle else settle(server_pid(env))
        seen: list = []
        # What the API does: whole-table statements (tier boundaries, freshness) refreshed in the background.
        bench = BoundaryCache(renaming(run, []), ttl_s=1.0, background=True)
        if args.warmup:
            say(f"warming up: {args.warmup} untimed calls of each query")
            warm_up(bench, args.warmup, newest)
        say("idle:")
        idle = measure(bench, args.samples, newest, renaming(run, seen), seen, env.pinot.broker_url,
                       interleaved=not args.sequential)
        # The writer is a process of its own: in this one it would hold the GIL the timed calls need.
        forked = multiprocessing.get_context("fork")
        stop = forked.Event()
        # New minutes after any a previous run wrote: rewriting the same minutes run after run
        # would pile up versions of every key in them, which the top-ads statement then filters.
        live_newest = queries.newest(run, PREFIX + "ad_minute_live")
        first = max(newest, live_newest or newest) + 60_000
        writer = forked.Process(target=produce, args=(
            env.kafka.bootstrap_servers, topics[PREFIX + "ad_minute_live"],
            rows([first + m * 60_000 for m in range(1000)], 2), args.ingest_rate, stop), daemon=True)
        writer.start()
        time.sleep(5)
        say(f"while ingesting {args.ingest_rate:,} rows/s into {PREFIX}ad_minute_live:")
        before, t0 = consumed_offsets(env, PREFIX + "ad_minute_live"), time.monotonic()
        busy = measure(bench, args.samples, newest, interleaved=not args.sequential)
        after = consumed_offsets(env, PREFIX + "ad_minute_live", before)
        ingested = round(sum(after[p] - before[p] for p in before) / (time.monotonic() - t0))
        say(f"  Pinot consumed {ingested:,} rows/s meanwhile")
        stop.set()
        writer.join(timeout=120)
        bench.close()
        run.close()
        if not args.keep:
            drop_tables(env, specs)
            delete_topics(env.kafka.bootstrap_servers, list(topics.values()))
    worst_busy = max(v["p95_ms"] for v in busy.values())
    worst_idle = max(v["p95_ms"] for v in idle.values())
    meets = max(worst_busy, worst_idle) <= GOAL_P95_MS  # the goal holds for both phases
    report = {"benchmark": "serving_latency", "run_id": run_id, "machine": host,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "parameters": {k: v for k, v in vars(args).items() if k != "out"},
              "rows": n, "ingest_seconds": ingest_s and round(ingest_s), "settle_seconds": settled_s, "idle": idle, "while_ingesting": busy,
              "ingested_rows_per_s_while_measuring": ingested,
              "goal_p95_ms": GOAL_P95_MS, "worst_p95_idle_ms": worst_idle, "worst_p95_while_ingesting_ms": worst_busy,
              "meets_goal": meets}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    bars = {f"{name[:18]} ({tag})": (v[name]["p95_ms"], v[name]["p50_ms"])
            for tag, v in (("idle", idle), ("busy", busy)) for name in list(v)[:3:2]}
    (args.out / "serving_latency.svg").write_text(bar_chart(
        bars, f"Dashboard queries over {n:,} rows", "p95 ms (tick: p50)", [f"goal p95 &#8804; {GOAL_P95_MS} ms"]))
    say(f"worst p95: idle {worst_idle} ms, while ingesting {worst_busy} ms (goal <= {GOAL_P95_MS} for both): "
        f"{'meets goal' if meets else 'ABOVE GOAL'}")
    say(f"report: {args.out / 'serving_latency.json'}")
    return 0


def load_tables(env, run, specs, args, start: int, minutes: int, per_minute: int):
    """Create the bench tables on topics of their own and fill them: (topics, rows, seconds)."""
    from adagg.pinot import apply

    old_topics = bench_topics(env)  # a previous run's, if it was interrupted or kept
    drop_tables(env, specs)
    if old_topics:
        delete_topics(env.kafka.bootstrap_servers, list(old_topics.values()))
    restart_server(env)
    topics = {spec.name: topic_of(spec.table_config) for spec in specs}
    create_topics(env.kafka.bootstrap_servers, list(topics.values()), args.partitions)
    apply(env, specs=specs, say=lambda line: say(line))
    say(f"loading {minutes * per_minute:,} rows ({minutes} minutes x {per_minute:,} keys) ...")
    t0 = time.monotonic()
    loaded = produce(env.kafka.bootstrap_servers, topics[PREFIX + "ad_minute"],
                     rows([start + m * 60_000 for m in range(minutes)]))
    # The live table: the newest minute (what dashboards show before it closes).
    produce(env.kafka.bootstrap_servers, topics[PREFIX + "ad_minute_live"], rows([start + minutes * 60_000], 1))
    say(f"  produced in {time.monotonic() - t0:.0f} s; waiting for Pinot to ingest ...")
    while True:
        n = int(run(f"SELECT COUNT(*) AS n FROM {PREFIX}ad_minute", {})[0]["n"])
        if n >= loaded:
            break
        say(f"  Pinot holds {n:,} of {loaded:,} rows")
        time.sleep(15)
    ingest_s = time.monotonic() - t0
    say(f"  {n:,} rows queryable after {ingest_s:.0f} s ({n / ingest_s:,.0f} rows/s end to end)")
    return topics, n, ingest_s


def consumed_offsets(env, table: str, partitions=()) -> dict[str, int]:
    """{partition: the Kafka offset its consuming segment has reached}, listing at least
    `partitions` (a row count would miss upserts of keys the table already holds)."""
    import requests

    for _ in range(30):
        info = requests.get(f"{env.pinot.controller_url.rstrip('/')}/tables/{table}/consumingSegmentsInfo",
                            timeout=30).json()["_segmentToConsumingInfoMap"]
        offsets: dict[str, int] = {}
        for replicas in info.values():
            for partition, offset in replicas[0]["partitionToOffsetMap"].items():
                offsets[partition] = max(offsets.get(partition, 0), int(offset))
        if offsets and set(partitions) <= set(offsets):
            return offsets
        time.sleep(1)  # a partition between two consuming segments (a commit) is not listed
    raise RuntimeError(f"{table}: no consuming segment for partitions {sorted(set(partitions) - set(offsets))}")


def bench_topics(env) -> dict[str, str]:
    """{table: topic} of the bench tables Pinot has now (a --keep run's)."""
    import requests

    ctl = env.pinot.controller_url.rstrip("/")
    topics = {}
    for name in (PREFIX + "ad_minute", PREFIX + "ad_minute_live"):
        config = requests.get(f"{ctl}/tables/{name}", timeout=30).json().get("REALTIME")
        if config:
            topics[name] = topic_of(config)
    return topics


def kept_tables(env, run, rows_wanted: int):
    """(topics, rows, newest final minute + 1 minute) of the tables a --keep run left, or None."""
    topics = bench_topics(env)
    if len(topics) < 2:
        return None
    sql = f"SELECT MAX(window_start_ms) AS newest, COUNT(*) AS n FROM {PREFIX}ad_minute"
    stats, counted, since = loaded(run, sql), -1, time.monotonic()
    # A restarted server answers from the segments it has loaded so far: wait while the count grows.
    while int(stats["n"]) < rows_wanted:
        if int(stats["n"]) > counted:
            counted, since = int(stats["n"]), time.monotonic()
        elif time.monotonic() - since > 60:
            say(f"  the kept tables hold {counted:,} rows, not {rows_wanted:,}: loading afresh")
            return None
        say(f"  waiting for the Pinot server to load the kept segments ({int(stats['n']):,} rows so far)")
        time.sleep(10)
        stats = loaded(run, sql)
    return topics, int(stats["n"]), int(stats["newest"]) + 60_000


def loaded(run, sql: str, timeout_s: float = 600) -> dict:
    """The first row of `sql`, once the server has loaded the table's segments: a server that
    has just started answers with an error until then (10 M upsert rows take a minute or two)."""
    from serving.runner import PinotUnavailable

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return run(sql, {})[0]
        except PinotUnavailable as error:
            if time.monotonic() > deadline:
                raise
            say(f"  waiting for the Pinot server to load the kept segments ({str(error)[:60]}...)")
            time.sleep(10)


def drop_tables(env, specs) -> None:
    import requests

    ctl = env.pinot.controller_url.rstrip("/")
    for spec in specs:
        requests.delete(f"{ctl}/tables/{spec.name}", params={"type": "realtime"}, timeout=120)
        requests.delete(f"{ctl}/schemas/{spec.name}", timeout=60)


if __name__ == "__main__":
    raise SystemExit(main())
