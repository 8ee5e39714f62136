"""Benchmark: collector ingest rate against a bare producer loop on the same broker (GUIDE §4).

Measures, with the local Kafka broker (started if it is not running):

* bare producer loops: the same pre-encoded events and keys, produced as fast as the client
  goes with the collector's producer settings (idempotent, acks=all, linger 5 ms, murmur2), then
  flushed: with confluent-kafka (what the collector uses), once with the collector's three
  record headers (the same records it writes; the goal's baseline) and once without; and with
  kafka-python (the named client; the figure that justified the switch).
* the collector (`adagg collect`, its own process, uvloop + httptools), fed by a load generator
  process on the same machine:
  - batched: NDJSON requests of --batch events over --connections keep-alive connections;
  - single: one event per request over --single-connections connections.
  Accepted events/s counts only events the collector answered "accepted" for (i.e. Kafka had
  acknowledged them); the run then checks the topic holds that many records.
* ratio = batched collector / bare confluent-kafka loop of the same records (goal >= 0.5), and
  the same over the header-less loop.

Every variant writes its own fresh topics (3 partitions, like ad-events.raw), deleted at the end.
The 2-core machine hosts the broker, the collector and the load generator at once, so the
figures are for that whole setup. Holds the machine-wide stack lock for its run (~2 minutes).

    .venv/bin/python benchmarks/collector_throughput.py
    .venv/bin/python benchmarks/collector_throughput.py --events 100000 --workers 2

Prints a table; writes reports/collector_throughput.json and .svg. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from adagg import paths  # noqa: E402
from adagg.env import load  # noqa: E402
from benchmarks.common import bar_chart, create_topics, delete_topics, kafka_up, machine, say, stack_lock  # noqa: E402

GOAL = 0.5
PORT = 8079  # not the stack collector's port: the benchmark runs its own


def events(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(billing key, JSON value) of generated events around now, duplicates and fences dropped."""
    from adagg.demo import make_traffic

    env = load("local")
    traffic = make_traffic(env, seed=seed, events=count, ads=100, start_ms=int(time.time() * 1000) - 3_600_000)
    seen, out = set(), []
    for phase in traffic.phases:
        for send in phase:
            if send.value not in seen and send.partition is None:
                seen.add(send.value)
                out.append((send.key, send.value))
    return out


def topic_records(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        consumer.close()


# What the collector adds to every record (collector.app: received-at, collector id, source key).
COLLECTOR_HEADERS = [("adagg-received-at", b"1795871936576"), ("adagg-collector", b"local-1"),
                     ("adagg-source", b"local-sdk")]


def bare_confluent(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], headers=None) -> dict:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "partitioner": "murmur2_random"})
    t0 = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(60)
    seconds = time.perf_counter() - t0
    return {"events": len(records) - left, "seconds": round(seconds, 2),
            "events_per_s": round((len(records) - left) / seconds)}


def bare_kafka_python(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> dict:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=True)
    t0 = time.perf_counter()
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    seconds = time.perf_counter() - t0
    producer.close()
    return {"events": len(records), "seconds": round(seconds, 2), "events_per_s": round(len(records) / seconds)}


def start_collector(run_id: str, workers: int) -> tuple[subprocess.Popen, str]:
    sets = [f"topics.raw.name=bench.{run_id}.collector", f"topics.dlq.name=bench.{run_id}.dlq"]
    cmd = [sys.executable, "-m", "adagg.cli", "collect", "--port", str(PORT), "--workers", str(workers),
           "--log-level", "warning", *[a for s in sets for a in ("--set", s)]]
    log = open(paths.logs() / "bench-collector.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=paths.REPO)
    url = f"http://127.0.0.1:{PORT}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the collector did not become ready; see {paths.logs() / 'bench-collector.log'}")


async def _load(url: str, bodies: list[bytes], connections: int, content_type: str) -> dict:
    """Send every body once over `connections` keep-alive connections; count accepted events.
    aiohttp, not httpx: httpx's async pool managed ~100 requests/s over 32 connections here."""
    import aiohttp

    from collector import dev_keys

    queue = list(reversed(bodies))
    accepted = refused = 0
    statuses: dict[int, int] = {}
    rejected: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {dev_keys.SDK}", "Content-Type": content_type}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def worker() -> None:
            nonlocal accepted, refused
            while queue:
                body = queue.pop()
                async with session.post("/v1/events", data=body) as response:
                    if response.status == 200:
                        answer = await response.json()
                        accepted += answer["accepted"]
                        for result in answer["results"] if answer["rejected"] else []:
                            if result["status"] == "rejected":
                                rejected[result["reason"]] = rejected.get(result["reason"], 0) + 1
                    else:
                        await response.read()
                        refused += 1
                        statuses[response.status] = statuses.get(response.status, 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - t0
    return {"events": accepted, "refused_requests": refused, "refused_by_status": statuses,
            "rejected_by_reason": rejected, "seconds": round(seconds, 2),
            "events_per_s": round(accepted / seconds)}


def collector_run(url: str, records: list[tuple[bytes, bytes]], batch: int, connections: int) -> dict:
    values = [value for _, value in records]
    bodies = [b"\n".join(values[i:i + batch]) for i in range(0, len(values), batch)]
    return asyncio.run(_load(url, bodies, connections, "application/x-ndjson"))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events per variant (default 200000)")
    parser.add_argument("--single-events", type=int, default=20_000, help="events sent one per request")
    parser.add_argument("--kafka-python-events", type=int, default=30_000, help="events for the kafka-python loop")
    parser.add_argument("--batch", type=int, default=1000, help="events per batched request (default 1000)")
    parser.add_argument("--connections", type=int, default=8, help="connections for batched requests")
    parser.add_argument("--single-connections", type=int, default=32, help="connections for single-event requests")
    parser.add_argument("--workers", type=int, default=2, help="collector worker processes (default 2: one per core)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of bare loop + batched collector; best kept")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=paths.REPO / "reports")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = load("local")
    bootstrap = env.kafka.bootstrap_servers
    run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:4]
    host = machine()
    say(f"generating {args.events:,} events ...")
    records = events(int(args.events * 1.05), args.seed)[:args.events]
    topics = {v: f"bench.{run_id}.{v}" for v in ("bare-confluent", "bare-kafka-python")}
    collector_topic = f"bench.{run_id}.collector"
    results: dict = {}
    with stack_lock():
        kafka_up()
        create_topics(bootstrap, [*topics.values(), collector_topic, f"bench.{run_id}.dlq"], partitions=3)
        try:
            say("bare producer loop, kafka-python ...")
            results["bare_kafka_python"] = bare_kafka_python(bootstrap, topics["bare-kafka-python"],
                                                             records[:args.kafka_python_events])
            proc, url = start_collector(run_id, args.workers)
            try:
                rounds: dict[str, list[dict]] = {"bare_confluent_kafka": [], "bare_confluent_kafka_plain": [],
                                                 "collector_batched": []}
                for round_no in range(1, args.rounds + 1):
                    say(f"round {round_no}/{args.rounds}: bare producer loops, confluent-kafka ...")
                    rounds["bare_confluent_kafka"].append(
                        bare_confluent(bootstrap, topics["bare-confluent"], records, COLLECTOR_HEADERS))
                    rounds["bare_confluent_kafka_plain"].append(
                        bare_confluent(bootstrap, topics["bare-confluent"], records))
                    say(f"round {round_no}/{args.rounds}: collector, batched ({args.batch} events per request, "
                        f"{args.connections} connections) ...")
                    rounds["collector_batched"].append(collector_run(url, records, args.batch, args.connections))
                for name, runs in rounds.items():
                    results[name] = {**max(runs, key=lambda r: r["events_per_s"]),
                                     "rounds_events_per_s": [r["events_per_s"] for r in runs]}
                say(f"collector, single events ({args.single_connections} connections) ...")
                results["collector_single"] = collector_run(url, records[:args.single_events], 1,
                                                            args.single_connections)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            in_topic = topic_records(bootstrap, collector_topic)
            sent = sum(r["events"] for r in rounds["collector_batched"]) + results["collector_single"]["events"]
            if in_topic != sent:
                say(f"WARNING: the collector accepted {sent:,} events but its topic holds {in_topic:,} records")
            results["collector_topic_records"] = in_topic
        finally:
            delete_topics(bootstrap, [*topics.values(), collector_topic, f"bench.{run_id}.dlq"])
    ratio = results["collector_batched"]["events_per_s"] / results["bare_confluent_kafka"]["events_per_s"]
    ratio_plain = results["collector_batched"]["events_per_s"] / results["bare_confluent_kafka_plain"]["events_per_s"]
    switch = results["bare_confluent_kafka"]["events_per_s"] / results["bare_kafka_python"]["events_per_s"]
    report = {"benchmark": "collector_throughput", "run_id": run_id,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": host,
              "parameters": {k: v for k, v in vars(args).items() if k != "out"},
              "results": results,
              "ratios": {"collector_batched_over_bare_producer": {
                  "value": round(ratio, 3), "goal": GOAL, "meets_goal": ratio >= GOAL,
                  "definition": "accepted events/s of batched collector requests / bare confluent-kafka loop "
                                "producing the same records (key, value and the collector's three headers)"},
                  "collector_batched_over_bare_producer_plain": {
                      "value": round(ratio_plain, 3),
                      "definition": "the same over a bare loop of key + value only (no headers)"},
                  "confluent_over_kafka_python": {"value": round(switch, 1),
                                                  "definition": "bare loop events/s, confluent-kafka / kafka-python"}}}
    say("")
    say(f"{'variant':24} {'events':>9} {'seconds':>8} {'events/s':>10}  (best of rounds for the first two)")
    for name in ("bare_confluent_kafka", "bare_confluent_kafka_plain", "bare_kafka_python", "collector_batched",
                 "collector_single"):
        r = results[name]
        say(f"{name:24} {r['events']:9,} {r['seconds']:8.2f} {r['events_per_s']:10,}")
    say(f"batched collector / bare producer: {ratio:.3f} (goal >= {GOAL}) "
        f"{'meets goal' if ratio >= GOAL else 'BELOW GOAL'}")
    say(f"batched collector / bare producer without headers: {ratio_plain:.3f}")
    say(f"confluent-kafka / kafka-python bare loops: {switch:.1f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "collector_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    bars = {name.replace("_", " "): (results[name]["events_per_s"], None)
            for name in ("bare_confluent_kafka_plain", "bare_confluent_kafka", "collector_batched", "collector_single",
                         "bare_kafka_python")}
    (args.out / "collector_throughput.svg").write_text(bar_chart(
        bars, f"Collector ingest, {os.cpu_count()} cores (broker, collector and load on one machine)",
        "accepted events/s", [f"batched / bare producer: {ratio:.2f} (goal &#8805; {GOAL})"]))
    say(f"report: {args.out / 'collector_throughput.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
