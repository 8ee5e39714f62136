"""Soak: the whole local stack under steady traffic through the collector for a long time, with the
job's state growing far past what a TaskManager heap could hold (the job once died of its own heap
state at about 0.8 million unique events), optionally with TaskManager kills along the way.

It ends with every output compared with the oracle of what the raw topic holds, and reports what a
soak is for: whether the heap stays flat while the state grows, how long checkpoints take as it
grows, whether the job keeps up (consumer lag), the state per unique event of each stateful
operator (the memory model of docs/pipeline.md), and each fault's recovery times.

    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 1500 [--kills 0] [--seed 7] [--report soak]

Writes reports/<report>.json and reports/<report>.svg. Takes the stack lock and starts a fresh stack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from adagg import flink  # noqa: E402
from adagg.chaos import Chaos  # noqa: E402
from adagg.demo import next_start_ms  # noqa: E402
from adagg.env import bucket_ms, late_delay_ms, load  # noqa: E402
from adagg.kafka_io import consumer_lag, end_offsets, ensure_topics, phase_sender, read_deliveries, wait_until_consumed  # noqa: E402
from adagg.live_traffic import Sender, timeline  # noqa: E402
from adagg.oracle import derive_from_deliveries  # noqa: E402
from adagg.paths import REPO  # noqa: E402
from adagg.pinot import apply  # noqa: E402
from adagg.setup import fetch  # noqa: E402
from adagg.stack import live_heap_mb, rss_mb, start_fresh  # noqa: E402
from adagg.verify import wait_for_outputs  # noqa: E402
from benchmarks.common import line_chart, machine, say, stack_lock  # noqa: E402
from collector import dev_keys  # noqa: E402
from collector.client import collector_url  # noqa: E402

REPORTS = REPO / "reports"
SAMPLE_S = 10


class Sampler(threading.Thread):
    """Every SAMPLE_S: accepted events, consumer lag, each TaskManager's heap and RSS, the newest
    completed checkpoint (duration, full state size), the job's state."""

    def __init__(self, env, stack, job_id: str, sender: Sender):
        super().__init__(daemon=True, name="soak-sampler")
        self.env, self.stack, self.job_id, self.sender = env, stack, job_id, sender
        self.rest = env.flink.rest_url
        self.samples: list[dict] = []
        self.checkpoints: dict[int, dict] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        t0 = time.time()
        while not self.halt.wait(SAMPLE_S):
            try:
                self.samples.append({"t": round(time.time() - t0, 1), **self.sample()})
            except (requests.RequestException, KeyError, ValueError) as error:
                self.samples.append({"t": round(time.time() - t0, 1), "error": str(error)[:200]})

    def sample(self) -> dict:
        heap, rss = {}, {}
        for tm in requests.get(f"{self.rest}/taskmanagers", timeout=10).json()["taskmanagers"]:
            got = requests.get(f"{self.rest}/taskmanagers/{tm['id']}/metrics",
                               params={"get": "Status.JVM.Memory.Heap.Used"}, timeout=10).json()
            heap[tm["id"]] = round(int(got[0]["value"]) / 2**20, 1) if got else None
            pid = self.stack.pid(f"flink-{tm['id']}")
            rss[tm["id"]] = rss_mb(pid) if pid else None
        stats = requests.get(f"{self.rest}/jobs/{self.job_id}/checkpoints", timeout=10).json()
        for cp in stats.get("history", []):
            if cp["status"] == "COMPLETED":
                self.checkpoints[cp["id"]] = {"id": cp["id"], "at": cp["latest_ack_timestamp"],
                                              "duration_ms": cp["end_to_end_duration"],
                                              "full_mb": round(cp["state_size"] / 2**20, 2),
                                              "incremental_mb": round(cp.get("checkpointed_size", 0) / 2**20, 2)}
        return {"accepted": len(self.sender.stats.accepted), "behind_s": round(self.sender.stats.behind_s, 1),
                "lag": sum(consumer_lag(self.env).values()), "heap_mb": heap, "rss_mb": rss,
                "state": flink.job_detail(self.rest, self.job_id)["state"]}


def vertex_state(rest: str, job_id: str) -> dict[str, float]:
    """Full state size (MB) of each operator chain in the newest completed checkpoint."""
    stats = requests.get(f"{rest}/jobs/{job_id}/checkpoints", timeout=10).json()
    latest = stats["latest"]["completed"]
    detail = requests.get(f"{rest}/jobs/{job_id}/checkpoints/details/{latest['id']}", timeout=10).json()
    names = {v["id"]: v["name"] for v in flink.job_detail(rest, job_id)["vertices"]}
    return {names[vid][:80]: round(task["state_size"] / 2**20, 3) for vid, task in detail["tasks"].items()
            if task["state_size"]}


def heap_baselines(samples: list[dict], tm: str, minutes: int = 2) -> list[float]:
    """The lowest heap reading of each stretch of `minutes` (the live data after collections)."""
    per = max(1, int(minutes * 60 / SAMPLE_S))
    values = [s["heap_mb"].get(tm) for s in samples if "heap_mb" in s]
    values = [v for v in values if v is not None]
    return [min(values[i:i + per]) for i in range(0, len(values), per) if values[i:i + per]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1500, help="new events a second (duplicates on top)")
    parser.add_argument("--kills", type=int, default=0, help="TaskManager kills spread over the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ads", type=int, default=200)
    parser.add_argument("--report", default="soak", help="reports/<report>.json and .svg (default: soak)")
    args = parser.parse_args()

    env = load("local")
    delay_ms, buckets = late_delay_ms(env), bucket_ms(env)
    with stack_lock():
        fetch(say=lambda line: say("  " + line))
        say("[1/5] a fresh stack ...")
        stack = start_fresh(say=lambda line: say(line))
        ensure_topics(env, say=lambda *_: None)
        apply(env, say=lambda *_: None)
        job_id = flink.submit("local", say=lambda line: say(line))
        flink.wait_running(env.flink.rest_url, job_id)
        since = end_offsets(env, env.topics.raw.name)
        live_before = {tm: live_heap_mb(stack.pid(tm)) for tm in stack.taskmanager_names()}

        say(f"[2/5] {args.minutes:g} min at {args.rate:,.0f} new events/s through the collector ...")
        t0 = time.time()
        tl = timeline(seed=args.seed, seconds=args.minutes * 60, rate=args.rate, ads=args.ads,
                      partitions=env.topics.raw.partitions, start_ms=next_start_ms(env), bound_ms=delay_ms,
                      bucket_ms=buckets)
        say(f"  {len(tl.sends):,} sends built in {time.time() - t0:.0f} s")
        url = collector_url(env)
        sender = Sender(url, dev_keys.SDK, tl.sends)
        sampler = Sampler(env, stack, job_id, sender)
        chaos = Chaos(stack, env, job_id)
        sender.start()
        sampler.start()
        kill_at = [args.minutes * 60 * (i + 1) / (args.kills + 1) for i in range(args.kills)]
        while sender.is_alive():
            elapsed = time.time() - sender.started_at
            if kill_at and elapsed >= kill_at[0]:
                kill_at.pop(0)
                say(f"  {elapsed:.0f} s: {chaos.kill_taskmanager()}")
            last = sampler.samples[-1] if sampler.samples else {}
            if int(elapsed) % 60 < 2:
                say(f"  {elapsed:5.0f} s: {last.get('accepted', 0):,} accepted, lag {last.get('lag')}, "
                    f"heap {last.get('heap_mb')} MB")
            time.sleep(2)
        if sender.error:
            raise sender.error
        chaos.wait_taskmanagers()
        send, close = phase_sender(env, url)
        send(tl.close)
        close()
        # The traffic is sent: free it before the oracle reads millions of deliveries (a 30-minute
        # run at 1,500/s holds 3.5 M sends; with them, the oracle step took 17.5 GB and was killed).
        sends = len(tl.sends)
        sender.sends = tl = None

        say("[3/5] waiting for the job to read everything ...")
        # Up to the end offsets now: the collector's heartbeats keep the topic growing.
        if not wait_until_consumed(env, timeout_s=1800):
            raise SystemExit(f"the job did not read the raw topic to its end within 30 min (lag {sum(consumer_lag(env).values()):,})")
        sampler.halt.set()
        sampler.join()
        states = vertex_state(env.flink.rest_url, job_id)
        live_after = {tm: live_heap_mb(stack.pid(tm)) for tm in stack.taskmanager_names()}

        say("[4/5] the oracle of the raw topic, and every output against it ...")
        t1 = time.time()
        oracle = derive_from_deliveries(read_deliveries(env, since), env.topics.raw.partitions, delay_ms, buckets)
        results = wait_for_outputs(env, oracle, timeout_s=600, say=lambda *_: None)
        exact = all(r.exact for r in results)
        say(f"  {'EXACT' if exact else 'NOT EXACT'} ({time.time() - t1:.0f} s)")
        for r in results:
            say(f"    {r.summary()}")

    say("[5/5] report")
    samples = sampler.samples
    durations = [c["duration_ms"] for c in sorted(sampler.checkpoints.values(), key=lambda c: c["id"])]
    unique = oracle.stats["unique_events"]
    tms = sorted({tm for s in samples for tm in s.get("heap_mb", {})})
    report = {
        "benchmark": "soak", "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "parameters": vars(args),
        "exact": exact, "outputs": [r.summary() for r in results],
        "events": {"sends": sends, "accepted": len(sender.stats.accepted), "unique": unique,
                   "on_time": oracle.stats["on_time_events"], "late": oracle.stats["late_events"],
                   "resent_requests": sender.stats.resent, "max_behind_s": max((s.get("behind_s", 0) for s in samples), default=0)},
        "checkpoints": {"count": len(durations), "median_ms": statistics.median(durations) if durations else None,
                        "max_ms": max(durations, default=None),
                        "first_full_mb": min(sampler.checkpoints.values(), key=lambda c: c["id"])["full_mb"] if durations else None,
                        "last_full_mb": max(sampler.checkpoints.values(), key=lambda c: c["id"])["full_mb"] if durations else None},
        "heap_baselines_mb": {tm: heap_baselines(samples, tm) for tm in tms},
        "live_heap_mb": {"before": live_before, "after": live_after},
        "lag": {"max": max((s.get("lag", 0) for s in samples), default=0), "end": samples[-1].get("lag") if samples else None},
        "state_mb_by_operator": states,
        "state_bytes_per_unique_event": {name: round(mb * 2**20 / unique, 1) for name, mb in states.items()},
        "recoveries": [r.as_dict() for r in chaos.recoveries],
        "samples": samples, "checkpoint_history": sorted(sampler.checkpoints.values(), key=lambda c: c["id"]),
    }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{args.report}.json").write_text(json.dumps(report, indent=1) + "\n")
    series = {f"heap {tm} (MB)": [(s["t"] / 60, s["heap_mb"][tm]) for s in samples if s.get("heap_mb", {}).get(tm)]
              for tm in tms}
    first = min((c["at"] for c in sampler.checkpoints.values()), default=0)
    series["checkpoint (ms / 10)"] = [((c["at"] - first) / 60_000, c["duration_ms"] / 10)
                                      for c in report["checkpoint_history"]]
    series["state (MB)"] = [((c["at"] - first) / 60_000, c["full_mb"]) for c in report["checkpoint_history"]]
    (REPORTS / f"{args.report}.svg").write_text(line_chart(
        series, f"Soak: {args.minutes:g} min at {args.rate:,.0f} events/s, {unique:,} unique events",
        "minutes", "MB (checkpoint: ms / 10)", [f"exact: {exact}", f"{len(chaos.recoveries)} TaskManager kills"],
        marks=[(r.at - sender.started_at) / 60 for r in chaos.recoveries]))
    say(f"  unique events {unique:,}; checkpoints {len(durations)} (median {report['checkpoints']['median_ms']} ms, "
        f"max {report['checkpoints']['max_ms']} ms); state {report['checkpoints']['last_full_mb']} MB; "
        f"max lag {report['lag']['max']:,}")
    for tm, base in report["heap_baselines_mb"].items():
        say(f"  heap baseline {tm}: {base[:3]} ... {base[-3:]} MB")
    say(f"  live heap after a full GC (MB): before {live_before}, after {live_after}")
    say(f"  wrote reports/{args.report}.json and reports/{args.report}.svg")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
