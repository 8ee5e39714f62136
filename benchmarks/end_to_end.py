"""End to end under load: the whole local stack (collector, Kafka, Flink, Pinot) driven through the
collector by an open-loop load generator, with the lag a dashboard user sees measured by probes.

For each job parallelism (--parallelism, default 1 and 2: the stack's two TaskManagers share the
slots, taskmanager.load-balance), on a fresh stack:

1. **Rate steps** (--rates): after --warmup-phase-seconds at the first rate (not counted: a fresh
   job's first minute is slower), each offered rate for --step-seconds. The generator sends on a fixed
   clock and never waits for answers before it sends more (open loop): every tick it posts what is
   due as one NDJSON request per --batch events over --connections connections; what the
   collector refuses (503, "retry") is sent again after a backoff, as an SDK does. Stepping stops
   after the first rate whose live p95 is over --live-slo seconds.
2. Per step: the accepted rate, the job's consumer lag (raw-topic records not yet committed by
   the job), CPU per component (cores used, from /proc), and the probe lags.
3. **Probes**: every --probe-interval a marked event (its own ad, its own connection) goes through
   the real collector. Live lag = from its send until the live Pinot table (ad_minute_live) counts
   it; final lag = until the final table (ad_minute) does. Polled every 0.25 s.
4. At the last parallelism: a **hot ad** (--hot-share of all events on one ad) at the highest
   sustainable rate, against the uniform step; then a **burst** (--burst x that rate for
   --burst-seconds) after a minute at that rate, then that rate until the probes' live lag is back
   under the SLO (recovery time) or --recovery-max-seconds have passed (then the backlog's drain
   rate gives an extrapolated recovery time).
5. **Nothing lost**: once the job has read everything, every accepted event id must be in the
   enriched topic (unique on-time events, exactly once) or the late topic, none twice in the
   enriched topic; and the final table's counts must sum to the enriched topic's.

    .venv/bin/python benchmarks/end_to_end.py                      # ~35 min (the burst's backlog adds minutes)
    .venv/bin/python benchmarks/end_to_end.py --parallelism 2 --rates 1000,2000 --step-seconds 30 --no-burst

Writes reports/end_to_end.json (after each parallelism) and reports/end_to_end_p<N>.svg (live lag,
accepted rate and consumer lag over time). Takes the stack lock and starts a fresh stack for each
parallelism, and leaves the last one running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adagg import flink, procstat  # noqa: E402
from adagg.env import load  # noqa: E402
from adagg.kafka_io import consumer_lag, ensure_topics, read_topic, wait_until_consumed  # noqa: E402
from adagg.paths import REPO  # noqa: E402
from adagg.pinot import apply, query  # noqa: E402
from adagg.setup import fetch  # noqa: E402
from adagg.stack import start_fresh  # noqa: E402
from adagg.traffic_catalog import COUNTRY_NETWORKS, USER_AGENTS, campaign_id, advertiser_id  # noqa: E402
from benchmarks.common import line_chart, machine, render_job, say, stack_lock  # noqa: E402
from collector import dev_keys  # noqa: E402
from collector.client import collector_url  # noqa: E402

REPORTS = REPO / "reports"
TICK_S = 0.1
POLL_S = 0.25
TYPES = (("impression", 0.9), ("click", 0.09), ("conversion", 0.01))
COSTS = {"impression": (500, 5000), "click": (100_000, 2_000_000), "conversion": (0, 0)}


# ---------------------------------------------------------------- pure arithmetic (unit-tested)

def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values. An unseen probe counts as +inf."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def lag_summary(lags: list[float]) -> dict:
    """p50/p95/p99/max of probe lags in seconds (inf: not visible yet when summarized)."""
    finite = [x for x in lags if x != float("inf")]
    out = {"probes": len(lags), "unseen": len(lags) - len(finite)}
    for q in (50, 95, 99):
        value = percentile(lags, q)
        out[f"p{q}_s"] = None if value is None or value == float("inf") else round(value, 2)
    out["max_s"] = round(max(finite), 2) if finite else None
    return out


def recovery_s(probes: list[tuple[float, float]], after: float, slo_s: float, streak: int = 10) -> float | None:
    """Seconds from `after` until the first of `streak` consecutive probes (send time, live lag)
    sent after it all had a lag within slo_s; None if that never happened."""
    run = []
    for sent, lag in sorted(p for p in probes if p[0] >= after):
        run = run + [sent] if lag <= slo_s else []
        if len(run) >= streak:
            return round(run[0] - after, 1)
    return None


def sustainable(steps: list[dict], slo_s: float) -> int | None:
    """The highest offered rate of an unbroken run of passing steps from the lowest: live p95 within
    the SLO, no probe unseen, and accepted within 5% of offered."""
    best = None
    for step in sorted(steps, key=lambda s: s["offered_per_s"]):
        live = step["live_lag"]
        ok = (live["p95_s"] is not None and live["p95_s"] <= slo_s and live["unseen"] == 0
              and step["accepted_per_s"] >= 0.95 * step["offered_per_s"])
        if not ok:
            break
        best = step["offered_per_s"]
    return best


def drain_estimate(lags: list[tuple[float, int]]) -> dict:
    """From consumer lag samples (epoch s, records) after a burst: how fast the backlog shrank
    (records/s, least squares) and when it would reach zero at that pace (s after the last sample)."""
    if len(lags) < 2:
        return {"drain_per_s": None, "zero_in_s": None}
    n = len(lags)
    mt, ml = sum(t for t, _ in lags) / n, sum(v for _, v in lags) / n
    var = sum((t - mt) ** 2 for t, _ in lags)
    slope = sum((t - mt) * (v - ml) for t, v in lags) / var if var else 0.0
    drain = -slope
    return {"drain_per_s": round(drain), "zero_in_s": round(lags[-1][1] / drain) if drain > 0 else None}


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """CPU seconds (user + system) of a process and (by default) all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for stat in procstat.every():
        children.setdefault(stat.ppid, []).append(stat.pid)
        stats[stat.pid] = stat.cpu_seconds
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, []) if descendants else []
    return total


# ---------------------------------------------------------------- the open-loop load generator

@dataclass
class Probe:
    n: int
    sent: float  # epoch s, when posted
    minute_ms: int  # the window it counts in
    ordinal: int  # its rank among the probes of that minute (1-based)
    live_at: float | None = None
    final_at: float | None = None


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    hot_share: float = 0.0
    started: float = 0.0
    ended: float = 0.0
    offered: int = 0
    accepted: int = 0  # unique events accepted, counting answers that come after the phase ended
    accepted_by_end: int = 0  # ... by its end
    last_accepted: float = 0.0  # when its last event was accepted (epoch s)
    refused_requests: int = 0
    max_slip_s: float = 0.0
    samples: list[dict] = field(default_factory=list)


class Load:
    """Events of this run: ids `<run>-<n>` (a bitmap of accepted n), 1,000 ads over 300 campaigns,
    the catalog's countries and agents (bots included), event time = the moment it is due."""

    def __init__(self, run: str, seed: int, batch: int, ads: int = 1000, duplicate_rate: float = 0.02):
        self.run, self.batch = run, batch
        self.rng = random.Random(seed)
        self.ads, self.duplicate_rate = ads, duplicate_rate
        self.next_n = 0
        self.accepted = bytearray()
        self.recent: list[bytes] = []  # lines for duplicate resends
        self.tasks: set[asyncio.Task] = set()
        self.phase: Phase | None = None
        self.nets = [(c, ".".join(n.split(".")[:2])) for c, n in COUNTRY_NETWORKS.items()]
        self.agents = [a.user_agent for a in USER_AGENTS]
        self.agent_weights = [a.weight for a in USER_AGENTS]

    def line(self, now_ms: int, hot: bool) -> bytes:
        rng, n = self.rng, self.next_n
        self.next_n += 1
        ad = 0 if hot else rng.randrange(self.ads)
        campaign = ad * 300 // self.ads + 1
        etype = rng.choices([t for t, _ in TYPES], [w for _, w in TYPES])[0]
        _, net = rng.choice(self.nets)
        event = {"schema_version": 1, "event_id": f"{self.run}-{n}", "event_type": etype, "event_time": now_ms,
                 "ad_id": f"ad-{ad:04d}", "campaign_id": campaign_id(campaign), "advertiser_id": advertiser_id(campaign),
                 "user_id": f"user-{rng.randrange(1_000_000):06d}",
                 "user_agent": rng.choices(self.agents, self.agent_weights)[0],
                 "ip": f"{net}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                 "placement_id": f"plc-{rng.randint(1, 50):03d}", "publisher_id": f"pub-{rng.randint(1, 20):02d}",
                 "cost_micros": rng.randint(*COSTS[etype])}
        if etype == "conversion":
            event["conversion_value_micros"] = rng.randint(1_000_000, 100_000_000)
        return json.dumps(event, separators=(",", ":")).encode()

    async def run_phase(self, session, phase: Phase) -> None:
        loop = asyncio.get_running_loop()
        self.phase = phase
        phase.started = time.time()
        start, tick, carry = loop.time(), 0, 0.0
        while tick * TICK_S < phase.seconds:
            due = start + tick * TICK_S
            await asyncio.sleep(max(0.0, due - loop.time()))
            phase.max_slip_s = max(phase.max_slip_s, loop.time() - due)
            carry += phase.rate * TICK_S
            count, carry = int(carry), carry - int(carry)
            now_ms = int(time.time() * 1000)
            lines = []
            for _ in range(count):
                if self.recent and self.rng.random() < self.duplicate_rate:
                    lines.append(self.rng.choice(self.recent))
                else:
                    lines.append(self.line(now_ms, self.rng.random() < phase.hot_share))
            self.recent = (self.recent + lines[-20:])[-1000:]
            phase.offered += count
            for i in range(0, len(lines), self.batch):
                task = asyncio.create_task(self.post(session, lines[i:i + self.batch], phase))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            tick += 1
        phase.ended = time.time()
        phase.accepted_by_end = phase.accepted

    async def post(self, session, lines: list[bytes], phase: Phase) -> None:
        """Until every line is accepted (a refused or unanswered request is sent again)."""
        import aiohttp

        backoff = 0.25
        while lines:
            again = lines
            try:
                async with session.post("/v1/events", data=b"\n".join(lines)) as response:
                    if response.status in (200, 503) and response.content_type == "application/json":
                        results = (await response.json())["results"]
                        again = []
                        for line, result in zip(lines, results, strict=True):
                            if result["status"] == "accepted":
                                self.mark(line, phase)
                            elif result["status"] != "rejected":
                                again.append(line)
                    else:
                        await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if again:
                phase.refused_requests += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 4.0)
            lines = again

    def mark(self, line: bytes, phase: Phase) -> None:
        n = int(re.search(rb'"event_id":"[^"]*-(\d+)"', line).group(1))
        if n >= len(self.accepted):
            self.accepted.extend(b"\0" * max(n + 1 - len(self.accepted), 1 << 16))
        if not self.accepted[n]:
            self.accepted[n] = 1
            phase.accepted += 1
            phase.last_accepted = time.time()


class Probes:
    """A marked event every interval through the collector (own connection), and a poller that
    times its appearance in the live and the final Pinot table."""

    def __init__(self, env, run: str, interval_s: float):
        self.env, self.run, self.interval_s = env, run, interval_s
        self.ad = f"probe-{run}"
        self.sent: list[Probe] = []
        self.per_minute: dict[int, int] = {}
        self.halt = asyncio.Event()

    def event(self, n: int, now_ms: int) -> bytes:
        return json.dumps({"schema_version": 1, "event_id": f"{self.run}-probe-{n}", "event_type": "impression",
                           "event_time": now_ms, "ad_id": self.ad, "campaign_id": campaign_id(1),
                           "advertiser_id": advertiser_id(1), "user_id": f"probe-user-{n}",
                           "user_agent": USER_AGENTS[0].user_agent, "ip": "23.32.1.1", "placement_id": "plc-001",
                           "publisher_id": "pub-01", "cost_micros": 1000}, separators=(",", ":")).encode()

    async def send(self, session) -> None:
        import aiohttp

        n = 0
        while not self.halt.is_set():
            now = time.time()
            now_ms = int(now * 1000)
            minute = now_ms - now_ms % 60_000
            try:
                async with session.post("/v1/events", data=self.event(n, now_ms)) as response:
                    body = await response.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                body = None  # not accepted: this probe is skipped (the collector closed an idle connection)
            if body and body.get("results") and body["results"][0]["status"] == "accepted":
                self.per_minute[minute] = self.per_minute.get(minute, 0) + 1
                self.sent.append(Probe(n, now, minute, self.per_minute[minute]))
            n += 1
            await asyncio.sleep(max(0.0, self.interval_s - (time.time() - now)))

    async def poll(self, session) -> None:
        broker = self.env.pinot.broker_url
        while not self.halt.is_set():
            pending = [p for p in self.sent if p.live_at is None or p.final_at is None]
            if pending:
                for table, attr in (("ad_minute_live", "live_at"), ("ad_minute", "final_at")):
                    counts = await self._counts(session, broker, table)
                    seen = time.time()
                    for p in pending:
                        if getattr(p, attr) is None and counts.get(p.minute_ms, 0) >= p.ordinal:
                            setattr(p, attr, seen)
            await asyncio.sleep(POLL_S)

    async def _counts(self, session, broker: str, table: str) -> dict[int, int]:
        sql = f"SELECT window_start_ms, impressions FROM {table} WHERE ad_id = '{self.ad}' LIMIT 100000"
        try:
            async with session.post(f"{broker}/query/sql", json={"sql": sql}) as response:
                body = await response.json(content_type=None)
            return {int(r[0]): int(r[1]) for r in body.get("resultTable", {}).get("rows", [])}
        except Exception:  # noqa: BLE001 - a failed poll is retried on the next tick
            return {}

    def stop(self) -> None:
        self.halt.set()

    def lags(self, kind: str, since: float, until: float) -> list[float]:
        """Lags of the probes sent in [since, until); inf for one not visible (yet)."""
        return [getattr(p, f"{kind}_at") - p.sent if getattr(p, f"{kind}_at") is not None else float("inf")
                for p in self.sent if since <= p.sent < until]


# ---------------------------------------------------------------- one parallelism on a fresh stack

class Sampler:
    """Every 2 s during a phase: accepted so far, consumer lag, cores used per component."""

    def __init__(self, env, stack):
        self.env, self.stack = env, stack
        self.last: tuple[float, dict[str, float]] | None = None

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name in [svc.name for svc in self.stack.services] if (pid := self.stack.pid(name))}
        # Not its descendants: the stack's services are this process's children.
        out["load generator"] = cpu_seconds(os.getpid(), descendants=False)
        return out

    async def run(self, phase: Phase, halt: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not halt.is_set():
            now = time.time()
            cpu = await loop.run_in_executor(None, self.cpu)
            lag = await loop.run_in_executor(None, lambda: sum(consumer_lag(self.env).values()))
            sample = {"t": round(now - phase.started, 1), "accepted": phase.accepted, "lag": lag}
            if self.last:
                dt = now - self.last[0]
                sample["cores"] = {k: round((v - self.last[1].get(k, v)) / dt, 2) for k, v in cpu.items()}
            self.last = (now, cpu)
            phase.samples.append(sample)
            try:
                await asyncio.wait_for(halt.wait(), 2.0)
            except asyncio.TimeoutError:
                pass


def step_report(phase: Phase, probes: Probes, warmup_s: float) -> dict:
    since, until = phase.started + warmup_s, phase.ended
    cores: dict[str, list[float]] = {}
    for s in phase.samples:
        for k, v in s.get("cores", {}).items():
            cores.setdefault(k, []).append(v)
    lags = [s["lag"] for s in phase.samples if s.get("lag") is not None]
    return {"phase": phase.name, "offered_per_s": round(phase.rate), "hot_share": phase.hot_share,
            "seconds": round(phase.ended - phase.started, 1), "offered": phase.offered,
            "accepted_per_s": round(phase.accepted_by_end / max(phase.ended - phase.started, 1e-9)),
            "all_accepted_after_s": round(max(phase.last_accepted - phase.ended, 0.0), 1),
            "refused_requests": phase.refused_requests, "max_send_slip_s": round(phase.max_slip_s, 2),
            "live_lag": lag_summary(probes.lags("live", since, until)),
            "final_lag": lag_summary(probes.lags("final", since, until)),
            "consumer_lag": {"max": max(lags, default=None), "end": lags[-1] if lags else None},
            "cores": {k: round(statistics.mean(v), 2) for k, v in sorted(cores.items())}}


async def drive(env, stack, args, parallelism: int, final: bool) -> dict:
    import aiohttp

    url = collector_url(env)
    run_id = f"e2e{parallelism}x{int(time.time()) % 100000}"
    load = Load(run_id, args.seed, args.batch)
    probes = Probes(env, run_id, args.probe_interval)
    sampler = Sampler(env, stack)
    headers = {"Authorization": f"Bearer {dev_keys.SDK}", "Content-Type": "application/x-ndjson"}
    timeout = aiohttp.ClientTimeout(total=30)
    result: dict = {"parallelism": parallelism, "steps": [], "phases": []}
    async with aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(limit=args.connections),
                                     timeout=timeout) as session, \
            aiohttp.ClientSession(url, headers=headers, timeout=timeout) as probe_session, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as pinot_session:
        tasks = [asyncio.create_task(probes.send(probe_session)), asyncio.create_task(probes.poll(pinot_session))]
        phases: list[Phase] = []

        async def run(phase: Phase, grace_s: float = 0.0) -> Phase:
            halt = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(phase, halt))
            await load.run_phase(session, phase)
            await asyncio.sleep(grace_s)  # let the last probes of the phase show (they count as unseen otherwise)
            halt.set()
            await sampling
            phases.append(phase)
            return phase

        # A fresh job is slow for its first minute (JIT, the first checkpoints, RocksDB warming up):
        # the first step measured that, not the rate.
        say(f"  warming up: {args.warmup_phase_seconds:g} s at {args.rates[0]:,}/s, not counted ...")
        await run(Phase("warm-up", args.rates[0], args.warmup_phase_seconds))
        await settle(run, probes, args)
        steps: list[Phase] = []
        for rate in args.rates:
            phase = await run(Phase(f"step {rate}", rate, args.step_seconds), grace_s=args.live_slo + 1)
            steps.append(phase)
            step = step_report(phase, probes, args.warmup_seconds)
            result["steps"].append(step)
            say(f"  p={parallelism} {rate:>6,}/s: accepted {step['accepted_per_s']:,}/s, live p50/p95/p99 "
                f"{step['live_lag']['p50_s']}/{step['live_lag']['p95_s']}/{step['live_lag']['p99_s']} s "
                f"({step['live_lag']['unseen']} unseen), consumer lag max {step['consumer_lag']['max']}, "
                f"cores {step['cores']}")
            if sustainable([step], args.live_slo) is None:
                break
        best = sustainable(result["steps"], args.live_slo)
        result["sustainable_per_s"] = best
        say(f"  p={parallelism}: highest sustainable rate {best} events/s (live p95 <= {args.live_slo:g} s)")
        base = best or args.rates[0]
        if final and args.hot_share:
            await settle(run, probes, args)
            hot = await run(Phase("hot ad", base, args.step_seconds, hot_share=args.hot_share), grace_s=args.live_slo + 1)
            steps.append(hot)
            result["hot_ad"] = step_report(hot, probes, args.warmup_seconds)
            uniform = next((s for s in result["steps"] if s["offered_per_s"] == base), None)
            result["hot_ad"]["uniform_live_lag"] = uniform["live_lag"] if uniform else None
            say(f"  hot ad ({args.hot_share:.0%}) at {base:,}/s: live p95 {result['hot_ad']['live_lag']['p95_s']} s "
                f"(uniform {uniform['live_lag']['p95_s'] if uniform else None} s)")
        if final and args.burst:
            say(f"  settling at {base:,}/s, then a {args.burst:g}x burst for {args.burst_seconds:g} s ...")
            await settle(run, probes, args)
            await run(Phase("before burst", base, 60))
            burst = await run(Phase("burst", base * args.burst, args.burst_seconds))
            rec, after = None, []
            while rec is None and time.time() - burst.ended < args.recovery_max_seconds:
                after.append(await run(Phase("after burst", base, 15)))
                rec = recovery_s([(p.sent, p.live_at - p.sent if p.live_at else float("inf")) for p in probes.sent],
                                 burst.ended, args.live_slo)
            lags = [(ph.started + s["t"], s["lag"]) for ph in after for s in ph.samples if s.get("lag") is not None]
            drain = drain_estimate(lags)
            result["burst"] = {"base_per_s": base, "burst_per_s": base * args.burst, "seconds": args.burst_seconds,
                               "recovery_s": rec, "observed_s": round(time.time() - burst.ended),
                               "drain": drain,
                               "extrapolated_recovery_s": None if rec is not None or drain["zero_in_s"] is None
                               else round(time.time() - burst.ended + drain["zero_in_s"]),
                               "burst": step_report(burst, probes, 0),
                               "after": [step_report(ph, probes, 0) for ph in after]}
            say(f"  burst: accepted {result['burst']['burst']['accepted_per_s']:,}/s while offered, all accepted "
                f"{result['burst']['burst']['all_accepted_after_s']} s after it; live lag back under "
                f"{args.live_slo:g} s after {rec} s (watched {result['burst']['observed_s']} s); backlog drained at "
                f"{drain['drain_per_s']} records/s, extrapolated recovery {result['burst']['extrapolated_recovery_s']} s")
        await asyncio.gather(*list(load.tasks))
        # The probes go on meanwhile: the collector's heartbeats repeat the newest event time, so
        # only new events move the watermark past the run's last windows.
        say(f"[p={parallelism}] waiting for the job to read everything, then counting ...")
        result["nothing_lost"] = await asyncio.get_running_loop().run_in_executor(
            None, count_when_final, env, run_id, load.accepted, probes.ad)
        probes.stop()
        await asyncio.gather(*tasks)
    # Again, now that the final rows of every step are in (they show a window + lateness later).
    final_lags = {ph.name: step_report(ph, probes, args.warmup_seconds)["final_lag"] for ph in steps}
    for report in result["steps"] + ([result["hot_ad"]] if "hot_ad" in result else []):
        report["final_lag"] = final_lags[report["phase"]]
    if "burst" in result:
        result["burst"]["burst"]["final_lag"] = lag_summary(probes.lags("final", burst.started, burst.ended))
    result["storage"] = storage(env, result["nothing_lost"]["accepted"])
    result["phases"] = [{"name": p.name, "rate": p.rate, "started": p.started, "ended": p.ended,
                         "samples": p.samples} for p in phases]
    result["probes"] = [{"sent": p.sent, "live_s": p.live_at - p.sent if p.live_at else None,
                         "final_s": p.final_at - p.sent if p.final_at else None} for p in probes.sent]
    result["accepted_events"] = sum(load.accepted)
    result["probe_events"] = len(probes.sent)
    result["run"] = run_id
    return result


async def settle(run, probes: Probes, args) -> None:
    """Only probes until their live lag is within the SLO again (after an unsustainable step)."""
    start = time.time()
    while time.time() - start < args.recovery_max_seconds:
        await run(Phase("settle", 0, 15))
        recent = [p for p in probes.sent if p.sent >= time.time() - 25 and p.sent <= time.time() - args.live_slo - 1]
        if recent and all(p.live_at and p.live_at - p.sent <= args.live_slo for p in recent):
            return


def nothing_lost(env, run: str, accepted: bytearray, probe_ad: str) -> dict:
    """Every accepted id in the enriched topic (once) or the late topic; the final table's counts
    of the load's ads (not the probes', still coming) equal the enriched topic's."""
    pattern = re.compile(rf"^{re.escape(run)}-(\d+)$")
    enriched = bytearray(len(accepted))
    doubles = late = probes_enriched = 0
    for _, value in read_topic(env, env.topics.enriched.name, idle_timeout_s=10):
        found = pattern.match(value["event_id"]) if value else None
        if found:
            n = int(found.group(1))
            doubles += enriched[n]
            enriched[n] = 1
        elif value and "-probe-" in value["event_id"]:
            probes_enriched += 1
    late_seen = bytearray(len(accepted))
    for _, value in read_topic(env, env.topics.late.name, idle_timeout_s=10):
        found = pattern.match(value["event_id"]) if value else None
        if found:
            late_seen[int(found.group(1))] = 1
    lost = sum(1 for n, a in enumerate(accepted) if a and not enriched[n] and not late_seen[n])
    late = sum(1 for n, a in enumerate(accepted) if a and late_seen[n] and not enriched[n])
    counted = sum(enriched)
    rows = query(env, "SELECT SUM(impressions) AS i, SUM(clicks) AS c, SUM(conversions) AS v FROM ad_minute "
                      "WHERE ad_id <> %(probe)s", {"probe": probe_ad})
    final_sum = sum(int(rows[0][k] or 0) for k in ("i", "c", "v")) if rows else 0
    return {"accepted": sum(accepted), "in_enriched": counted, "late_only": late, "lost": lost,
            "counted_twice": doubles, "probes_in_enriched": probes_enriched,
            "final_table_events": final_sum, "final_equals_enriched": final_sum == counted}


def storage(env, unique_events: int) -> dict:
    """Bytes on disk per event: each event topic's log segments (all partitions, no index files,
    which Kafka preallocates; offsets include the raw topic's heartbeats and the exactly-once
    topics' transaction markers) and the raw archive."""
    from adagg import paths
    from adagg.kafka_io import end_offsets

    def size(folder: Path, pattern: str = "*") -> int:
        return sum(f.stat().st_size for f in folder.rglob(pattern) if f.is_file()) if folder.exists() else 0

    out = {"unique_events": unique_events, "topics": {}}
    for topic in (env.topics.raw.name, env.topics.enriched.name, env.topics.late.name):
        folders = [d for d in (paths.data() / "kafka").glob(f"{topic}-*") if d.name.rsplit("-", 1)[1].isdigit()]
        on_disk = sum(size(d, "*.log") for d in folders)
        records = sum(end_offsets(env, topic).values())
        out["topics"][topic] = {"bytes": on_disk, "offsets": records,
                                "bytes_per_offset": round(on_disk / records, 1) if records else None,
                                "bytes_per_unique_event": round(on_disk / unique_events, 1) if unique_events else None}
    archive = paths.env_dir(env.archive.path)
    files = list(archive.rglob("*.parquet")) + [f for f in archive.rglob(".part-*") if f.is_file()]
    total = size(archive)
    out["archive"] = {"bytes": total, "files": len(files),
                      "bytes_per_unique_event": round(total / unique_events, 1) if unique_events else None}
    out["pinot_rows"] = {}
    for table in ("ad_minute", "ad_minute_live", "ad_hour", "ad_sliding_5m", "top_ads_minute", "publisher_minute",
                  "events_enriched", "late_events"):
        rows = query(env, f"SELECT COUNT(*) AS n FROM {table}")
        out["pinot_rows"][table] = int(rows[0]["n"]) if rows else None
    return out


def count_when_final(env, run_id: str, accepted: bytearray, probe_ad: str) -> dict:
    """nothing_lost() once the job has read everything and the run's last windows are final."""
    if not wait_until_consumed(env, timeout_s=1800):
        raise SystemExit("the job did not read the raw topic to its end within 30 min")
    deadline = time.time() + 240
    while True:
        check = nothing_lost(env, run_id, accepted, probe_ad)
        if check["final_equals_enriched"] or time.time() > deadline:
            break
        time.sleep(15)  # the last windows close when the watermark passes them
    say(f"  accepted {check['accepted']:,}; counted {check['in_enriched']:,} + late {check['late_only']:,}; "
        f"lost {check['lost']}, counted twice {check['counted_twice']}; final table = enriched: "
        f"{check['final_equals_enriched']}")
    return check


def one_parallelism(env, args, parallelism: int, final: bool) -> dict:
    say(f"[p={parallelism}] a fresh stack ...")
    stack = start_fresh(say=lambda line: say(line))
    ensure_topics(env, say=lambda *_: None)
    apply(env, say=lambda *_: None)
    job_id = flink.submit("local", say=say, sql_file=render_job(env, {"flink.parallelism": str(parallelism)}))
    flink.wait_running(env.flink.rest_url, job_id)
    time.sleep(10)  # the job's first checkpoint; the live sink's first flush
    return asyncio.run(drive(env, stack, args, parallelism, final))


def chart(result: dict, slo_s: float) -> str:
    t0 = result["phases"][0]["started"] if result["phases"] else 0
    live = [((p["sent"] - t0) / 60, p["live_s"]) for p in result["probes"] if p["live_s"] is not None and p["sent"] >= t0]
    rate, lag = [], []
    for ph in result["phases"]:
        prev = None
        for s in ph["samples"]:
            x = (ph["started"] + s["t"] - t0) / 60
            if prev is not None and s["t"] > prev[0]:
                rate.append((x, (s["accepted"] - prev[1]) / (s["t"] - prev[0]) / 1000))
            prev = (s["t"], s["accepted"])
            if s.get("lag") is not None:
                lag.append((x, s["lag"] / 10_000))
    return line_chart({"live lag (s)": live, "accepted (k events/s)": rate, "consumer lag (10k records)": lag},
                      f"End to end, parallelism {result['parallelism']}", "minutes", "s / k events/s / 10k records",
                      [f"sustainable {result['sustainable_per_s']} events/s at live p95 <= {slo_s:g} s"],
                      marks=[(ph["started"] - t0) / 60 for ph in result["phases"] if ph["name"] != "settle"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--parallelism", type=ints, default=[1, 2], help="job parallelisms, comma-separated")
    parser.add_argument("--rates", type=ints, default=[1000, 2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000],
                        help="offered rates (events/s), ascending; stops after the first that fails the SLO")
    parser.add_argument("--step-seconds", type=float, default=60)
    parser.add_argument("--warmup-seconds", type=float, default=15, help="probes of a step's first seconds not counted")
    parser.add_argument("--warmup-phase-seconds", type=float, default=90,
                        help="traffic at the first rate before the steps, not counted (a fresh job's first minute)")
    parser.add_argument("--live-slo", type=float, default=5.0, help="live p95 lag that still counts as sustainable (s)")
    parser.add_argument("--probe-interval", type=float, default=0.5)
    parser.add_argument("--burst", type=float, default=10, help="burst multiple of the sustainable rate (0: none)")
    parser.add_argument("--no-burst", dest="burst", action="store_const", const=0)
    parser.add_argument("--burst-seconds", type=float, default=60)
    parser.add_argument("--recovery-max-seconds", type=float, default=300)
    parser.add_argument("--hot-share", type=float, default=0.5, help="share of events on one ad in the hot-ad run (0: none)")
    parser.add_argument("--batch", type=int, default=500, help="events per request")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--report", default="end_to_end")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = load("local")
    results = []
    with stack_lock():
        fetch(say=lambda line: say("  " + line))
        for i, p in enumerate(args.parallelism):
            results.append(one_parallelism(env, args, p, final=i == len(args.parallelism) - 1))
            # After each parallelism, so that a failure in a later one keeps what was measured.
            report = {"benchmark": "end_to_end", "machine": machine(),
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "parameters": vars(args), "runs": results}
            REPORTS.mkdir(exist_ok=True)
            (REPORTS / f"{args.report}.json").write_text(json.dumps(report, indent=1) + "\n")
    for r in results:
        (REPORTS / f"{args.report}_p{r['parallelism']}.svg").write_text(chart(r, args.live_slo))
    say("summary:")
    for r in results:
        say(f"  p={r['parallelism']}: sustainable {r['sustainable_per_s']} events/s; lost {r['nothing_lost']['lost']}, "
            f"counted twice {r['nothing_lost']['counted_twice']}")
        for s in r["steps"] + ([r["hot_ad"]] if "hot_ad" in r else []):
            live, final = s["live_lag"], s["final_lag"]
            say(f"    {s['phase']:>12}: accepted {s['accepted_per_s']:>6,}/s  live p50/p95/p99 {live['p50_s']}/"
                f"{live['p95_s']}/{live['p99_s']} s  final p50/p95/p99 {final['p50_s']}/{final['p95_s']}/"
                f"{final['p99_s']} s  consumer lag max {s['consumer_lag']['max']}")
        if "burst" in r:
            say(f"    burst {r['burst']['burst_per_s']:,}/s for {r['burst']['seconds']:g} s: recovery {r['burst']['recovery_s']} s")
    say(f"  wrote reports/{args.report}.json and reports/{args.report}_p*.svg")
    return 0 if all(r["nothing_lost"]["lost"] == 0 and r["nothing_lost"]["counted_twice"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
