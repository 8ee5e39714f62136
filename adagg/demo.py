"""The demo: stack up, tables, streaming job, generated traffic, and results read back from Pinot."""

from __future__ import annotations

import time

from adagg import env as envs
from adagg.traffic import WINDOW_MS, Oracle, Traffic, generate

CLICKS_SQL = (
    "SELECT ad_id, window_start_ms, clicks FROM ad_clicks_minute "
    "WHERE window_start_ms >= %(start)s AND window_start_ms < %(end)s LIMIT 1000000"
)


def _hour_ago_ms() -> int:
    return (int(time.time() * 1000) // WINDOW_MS - 60) * WINDOW_MS


def make_traffic(env, seed: int, events: int, ads: int = 25, start_ms: int | None = None) -> Traffic:
    """Traffic for an environment's raw topic; event times start at start_ms (default: an hour ago)."""
    if start_ms is None:
        start_ms = _hour_ago_ms()
    return generate(seed=seed, events=events, ads=ads, partitions=env.topics.raw.partitions, start_ms=start_ms,
                    bound_ms=env.flink.watermark_bound_seconds * 1000)


def next_start_ms(env) -> int:
    """Where a new run's event time starts: an hour ago, but clear of what the raw topic already holds.

    A running job's watermark follows the newest event it has read (the previous run's last
    fence), so a run starting before that would be entirely late; 15 minutes past it is safe.
    """
    from adagg.kafka_io import newest_event_time

    start = _hour_ago_ms()
    newest = newest_event_time(env)
    if newest is not None:
        start = max(start, (newest // WINDOW_MS + 15) * WINDOW_MS)
    return start


def oracle_range(oracle: Oracle) -> tuple[int, int]:
    """[first expected window, final watermark]: the windows this run's on-time events fill."""
    return min(start for _, start in oracle.clicks), oracle.final_watermark_ms + 1


def pinot_clicks(env, start_ms: int, end_ms: int) -> dict[tuple[str, int], int]:
    from adagg.pinot import query

    rows = query(env, CLICKS_SQL, {"start": start_ms, "end": end_ms})
    return {(r["ad_id"], int(r["window_start_ms"])): int(r["clicks"]) for r in rows}


def wait_for_oracle(env, oracle: Oracle, timeout_s: float = 180, whole_table: bool = False,
                    say=print) -> dict[tuple[str, int], int]:
    """Poll Pinot until its windows equal the oracle, or time out; returns Pinot's.

    Compares the run's range, or the whole table (for a stack that holds only this run).
    """
    start, end = (0, 2**62) if whole_table else oracle_range(oracle)
    deadline, got = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        try:
            got = pinot_clicks(env, start, end)
        except Exception as exc:  # noqa: BLE001 - table may still be loading; report the last state
            say(f"  waiting for Pinot ({exc.__class__.__name__})")
        if got == oracle.clicks:
            return got
        time.sleep(2)
    return got


def print_clicks(env, ad: str | None = None, limit: int = 50) -> None:
    from adagg.pinot import query

    sql = "SELECT ad_id, window_start_ms, clicks, tier FROM ad_clicks_minute"
    params = {}
    if ad:
        sql += " WHERE ad_id = %(ad)s"
        params["ad"] = ad
    sql += " ORDER BY window_start_ms DESC, clicks DESC LIMIT %(limit)s"
    params["limit"] = int(limit)
    rows = query(env, sql, params)
    print(f"{'ad_id':10} {'minute (UTC)':17} {'clicks':>7}  tier")
    for r in rows:
        minute = time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(r["window_start_ms"]) / 1000))
        print(f"{r['ad_id']:10} {minute:17} {int(r['clicks']):7}  {r['tier']}")
    if not rows:
        print("(no rows yet: is the job running and has traffic been sent?)")


def summary_table(clicks: dict[tuple[str, int], int], top: int = 10) -> str:
    """Per-ad totals and the first minutes, for the demo's closing table."""
    minutes = sorted({start for _, start in clicks})
    per_ad: dict[str, dict[int, int]] = {}
    for (ad, start), n in clicks.items():
        per_ad.setdefault(ad, {})[start] = n
    ranked = sorted(per_ad, key=lambda a: (-sum(per_ad[a].values()), a))[:top]
    shown = minutes[:6]
    head = f"{'ad_id':10}" + "".join(f"{time.strftime('%H:%M', time.gmtime(m / 1000)):>7}" for m in shown)
    lines = [head + f"{'...':>5}{'total':>8}"]
    for ad in ranked:
        cells = "".join(f"{per_ad[ad].get(m, 0):7}" for m in shown)
        lines.append(f"{ad:10}{cells}{'':5}{sum(per_ad[ad].values()):8}")
    return "\n".join(lines)


def run_demo(env_name: str = "local", events: int = 20_000, seed: int = 42) -> None:
    from adagg import flink
    from adagg.kafka_io import ensure_topics, send_traffic
    from adagg.pinot import apply
    from adagg.setup import fetch_jvm
    from adagg.stack import Stack

    env = envs.load(env_name)
    t0 = time.monotonic()
    print("[1/5] JVM artifacts")
    fetch_jvm()
    print("[2/5] Local stack")
    stack = Stack(env_name)
    stack.up()
    print("[3/5] Kafka topics and Pinot tables")
    ensure_topics(env)
    apply(env)
    print("[4/5] Streaming job")
    jobs = flink.running_jobs(env)
    if jobs:
        print(f"  reusing running Flink job {jobs[0]['jid']}")
    else:
        flink.wait_running(env.flink.rest_url, flink.submit(env_name))
    traffic = make_traffic(env, seed=seed, events=events, start_ms=next_start_ms(env))
    st = traffic.oracle.stats
    print(f"[5/5] Traffic: {st['sends']} sends = {st['unique_events']} events + {st['duplicates']} duplicates; "
          f"{st['out_of_order']} out of order, {st['late_events']} late")
    send_traffic(env, traffic)
    print("  waiting for the final windows to reach Pinot (watermark + checkpoint commit) ...")
    got = wait_for_oracle(env, traffic.oracle)
    print()
    print("Clicks per ad and minute, read from Pinot (top 10 ads; first minutes):")
    print(summary_table(got))
    exact = got == traffic.oracle.clicks
    print()
    print(f"Pinot windows: {len(got)}, clicks: {sum(got.values())}; oracle windows: {len(traffic.oracle.clicks)}, "
          f"clicks: {sum(traffic.oracle.clicks.values())} -> {'EXACT MATCH' if exact else 'MISMATCH'}")
    print(f"Late events: {st['late_sends']} deliveries sent late; they are in topic {env.topics.late.name}.")
    print(f"Demo took {time.monotonic() - t0:.0f} s. Stack stays up; stop it with `adagg stack down`.")
    print("\n".join(stack.urls()))
    if not exact:
        raise ValueError("Pinot does not match the oracle; see `adagg stack logs` for the services' logs")
