"""The demo: stack up, tables, streaming job, generated traffic, and results read back from Pinot."""

from __future__ import annotations

import time

from adagg import env as envs
from adagg.oracle import AGG_KEY, COUNT_COLUMNS
from adagg.traffic import WINDOW_MS, Oracle, Traffic, generate
from adagg.verify import wait_for_outputs

MINUTE_COLUMNS = ("window_end_ms", "campaign_id", "advertiser_id", "vertical") + COUNT_COLUMNS
MINUTE_SQL = (
    "SELECT " + ", ".join(dict.fromkeys(AGG_KEY + MINUTE_COLUMNS)) +
    " FROM ad_minute WHERE window_start_ms >= %(since)s LIMIT 10000000"
)
# Aliases differ from the column names: Pinot 0.11 resolves ORDER BY SUM(x) to an alias named x.
TOP_ADS_SQL = (
    "SELECT ad_id, SUM(impressions) AS n_impressions, SUM(clicks) AS n_clicks, "
    "SUM(billable_clicks) AS n_billable, SUM(invalid_events) AS n_invalid, "
    "SUM(spend_micros) AS n_spend FROM ad_minute WHERE window_start_ms >= %(since)s "
    "GROUP BY ad_id ORDER BY SUM(billable_clicks) DESC, ad_id LIMIT %(limit)s"
)


def _hour_ago_ms() -> int:
    return (int(time.time() * 1000) // WINDOW_MS - 60) * WINDOW_MS


def make_traffic(env, seed: int, events: int, ads: int = 25, start_ms: int | None = None,
                 close_day: bool = False) -> Traffic:
    """Traffic for an environment: its raw partitions, watermark delay and billing buckets.

    Event times start at start_ms (default: an hour ago). close_day ends with a fence past the
    next UTC midnight, so hour and day windows close too.
    """
    if start_ms is None:
        start_ms = _hour_ago_ms()
    return generate(seed=seed, events=events, ads=ads, partitions=env.topics.raw.partitions, start_ms=start_ms,
                    bound_ms=envs.late_delay_ms(env), bucket_ms=envs.bucket_ms(env), close_day=close_day)


def next_start_ms(env) -> int:
    """Where a new run's event time starts: an hour ago, but clear of what the raw topic already holds.

    A running job's watermark follows the newest event it has read (the previous run's last
    fence), so a run starting before that would be entirely late; 15 minutes past it is safe.
    The start is also rounded up to the largest billing bucket, so a run never shares a billing
    bucket with an earlier one (runs with the same seed repeat the same users and ads).
    """
    from adagg.kafka_io import newest_event_time

    start = _hour_ago_ms()
    newest = newest_event_time(env)
    if newest is not None:
        bucket = max(env.billing.bucket_seconds.values()) * 1000
        after = newest + 15 * WINDOW_MS
        start = max(start, after + (-after) % bucket)
    return start


def run_since_ms(oracle: Oracle) -> int:
    """The first window start that belongs to a run: 5-minute sliding windows reach 4 minutes
    before its first event (earlier runs end at least 15 minutes before, see next_start_ms)."""
    first = oracle.stats["min_event_time_ms"]
    return first - first % WINDOW_MS - 4 * WINDOW_MS


def pinot_minute(env, since_ms: int = 0) -> dict[tuple, dict]:
    """The final-tier minute rows in Pinot from since_ms on, keyed like the oracle."""
    from adagg.pinot import query

    rows = query(env, MINUTE_SQL, {"since": since_ms})
    return {(int(r["window_start_ms"]), *(r[c] for c in AGG_KEY[1:])):
            {c: (r[c] if isinstance(r[c], str) else int(r[c])) for c in MINUTE_COLUMNS} for r in rows}


def wait_for_pinot(env, oracle: Oracle, since_ms: int = 0, timeout_s: float = 180, say=print) -> dict:
    """Poll Pinot's ad_minute until it equals the oracle's final minute rows (from since_ms)."""
    expected = {k: v for k, v in oracle.minute.items() if k[0] >= since_ms}
    deadline, got = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        try:
            got = pinot_minute(env, since_ms)
        except Exception as exc:  # noqa: BLE001 - table may still be loading; report the last state
            say(f"  waiting for Pinot ({exc.__class__.__name__})")
        if got == expected:
            break
        time.sleep(2)
    return got


def print_top_ads(env, since_ms: int = 0, limit: int = 10) -> None:
    from adagg.pinot import query

    rows = query(env, TOP_ADS_SQL, {"since": since_ms, "limit": int(limit)})
    print(f"{'ad_id':10} {'impressions':>11} {'clicks':>7} {'billable':>8} {'invalid':>8} {'spend':>12}")
    for r in rows:
        print(f"{r['ad_id']:10} {int(r['n_impressions']):11} {int(r['n_clicks']):7} {int(r['n_billable']):8} "
              f"{int(r['n_invalid']):8} {int(r['n_spend']) / 1e6:12,.2f}")
    if not rows:
        print("(no rows yet: is the job running and has traffic been sent?)")


def run_demo(env_name: str = "local", events: int = 20_000, seed: int = 42) -> None:
    from adagg import flink
    from adagg.kafka_io import ensure_topics, send_traffic
    from adagg.pinot import apply
    from adagg.setup import fetch
    from adagg.stack import Stack

    env = envs.load(env_name)
    t0 = time.monotonic()
    print("[1/5] JVM artifacts")
    fetch()
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
          f"{st['retries']} billing repeats, {st['bots'] + st['blocked_ips']} invalid, "
          f"{st['out_of_order']} out of order, {st['late_events']} late, {st['v2_events']} on contract v2")
    from collector.client import collector_url, wait_ready

    url = collector_url(env)
    wait_ready(url)
    print(f"  sending through the collector at {url} (validated, keyed by billing key, acks=all)")
    send_traffic(env, traffic, collector_url=url)
    print("  waiting for the final windows (watermark + checkpoint commit) ...")
    since = run_since_ms(traffic.oracle)
    results = wait_for_outputs(env, traffic.oracle, since_ms=since, say=lambda *_: None)
    got = wait_for_pinot(env, traffic.oracle, since_ms=since)
    expected = {k: v for k, v in traffic.oracle.minute.items() if k[0] >= since}
    print()
    print("Top ads of this run by billable clicks, queried from Pinot (ad_minute, final tier):")
    print_top_ads(env, since)
    print()
    print("Every output against the oracle computed from the generated events:")
    for r in results:
        print(f"  {r.summary()}")
    pinot_exact = got == expected
    print(f"  pinot ad_minute: {len(got)} rows vs {len(expected)} expected, "
          f"{'EXACT' if pinot_exact else 'MISMATCH'}")
    exact = pinot_exact and all(r.exact for r in results)
    print("EXACT MATCH" if exact else "MISMATCH")
    print(f"Demo took {time.monotonic() - t0:.0f} s. Stack stays up; stop it with `adagg stack down`.")
    print("\n".join(stack.urls()))
    if not exact:
        raise ValueError("outputs do not match the oracle; see `adagg stack logs` for the services' logs")
