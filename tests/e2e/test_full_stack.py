"""The whole local stack: generator -> Kafka -> Flink session cluster (parallelism 4 over two
TaskManagers) -> Kafka -> Pinot, every output exact against the oracle, also through the collector
and with the job submitted by Flink's own SQL client; the query API on real Pinot; the archive,
reconciliation and billing. Tests run in file order, on the stack they share with
test_full_stack_superset.py (tests/e2e/conftest.py), whose last test checks that `stack down`
leaves no process behind. Restarts and faults have modules of their own (test_restarts.py,
test_faults.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import requests

from adagg import flink
from adagg.demo import make_traffic, next_start_ms, run_since_ms, wait_for_pinot
from adagg.env import load
from adagg.kafka_io import end_offsets, ensure_topics, read_deliveries, send_traffic
from adagg.paths import REPO, data
from adagg.pinot import PinotError, TableSpec, apply, query, tables
from adagg.record_keys import flink_json_key
from adagg.slo import OBJECTIVES
from adagg.verify import wait_for_outputs
from collector.client import collector_url, wait_ready
from reconcile.diff import KEY
from serving.queries import MEASURES, TABLES

@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


RUNS: list = []  # the oracle of every run in this module, in order (the serving tests read them)


def test_stack_up_is_idempotent(stack):
    before = {s.name: stack.pid(s.name) for s in stack.select(None)}  # what `up` starts (Superset is optional)
    assert all(before.values()), before
    stack.up()
    assert {s.name: stack.pid(s.name) for s in stack.select(None)} == before
    assert all(row["healthy"] for row in stack.status())


def test_pinot_apply_is_idempotent(stack):
    env = load("local")
    ensure_topics(env)
    assert apply(env) == [f"create {kind} {spec.name}" for spec in tables(env) for kind in ("schema", "table")]
    assert len(tables(env)) == 12 and apply(env) == []
    assert apply(env, dry_run=True) == []
    # A config Pinot refuses: its own validation message comes through, and nothing is half-applied.
    spec = next(t for t in tables(env) if t.name == "ad_hour")
    broken = TableSpec("ad_hour_broken", {**spec.schema, "schemaName": "ad_hour_broken"},
                       {**spec.table_config, "tableName": "ad_hour_broken",
                        "segmentsConfig": {**spec.table_config["segmentsConfig"], "schemaName": "ad_hour_broken",
                                           "timeColumnName": "no_such_column"}})
    with pytest.raises(PinotError, match="Pinot refused to create table ad_hour_broken: .*no_such_column"):
        apply(env, specs=[broken], say=lambda *_: None)
    requests.delete(f"{env.pinot.controller_url}/schemas/ad_hour_broken", timeout=30)


def assert_exact(results) -> None:
    assert [r.summary() for r in results if not r.exact] == []


def check_run(env, oracle, pinot: bool = True) -> None:
    """Every output of one run since its start, and Pinot's ad_minute, equal the run's oracle.
    The run is kept for the serving tests."""
    RUNS.append(oracle)
    since = run_since_ms(oracle)
    assert_exact(wait_for_outputs(env, oracle, timeout_s=240, since_ms=since))
    if pinot:
        assert wait_for_pinot(env, oracle, since_ms=since, timeout_s=120) == {
            k: v for k, v in oracle.minute.items() if k[0] >= since}


def test_every_output_equals_the_oracle_exactly(stack):
    """Duplicates, billing repeats, bots, blocked IPs, out-of-order and late events, a hot ad and
    v1 + v2 events; the last fence passes midnight, so hour and day windows close too."""
    env = load("local")
    job_id = flink.submit("local")
    flink.wait_running(env.flink.rest_url, job_id)
    traffic = make_traffic(env, seed=2026, events=20_000, ads=30, close_day=True)
    st = traffic.oracle.stats
    for feature in ("duplicates", "retries", "bots", "blocked_ips", "out_of_order", "late_sends", "v2_events",
                    "billing_repeats", "conversion_events"):
        assert st[feature] > 0, feature
    assert st["hot_ad_events"] > 0.25 * st["unique_events"]
    send_traffic(env, traffic, pause_s=4)
    RUNS.append(traffic.oracle)
    assert_exact(wait_for_outputs(env, traffic.oracle, timeout_s=240))
    oracle = traffic.oracle
    assert oracle.hour and oracle.day and oracle.sliding and oracle.top and oracle.minute_live
    assert sum(r["billable_clicks"] for r in oracle.minute.values()) < sum(r["clicks"] for r in oracle.minute.values())
    assert wait_for_pinot(env, oracle, timeout_s=120) == oracle.minute


def test_through_the_collector_every_output_is_exact(stack):
    """generator -> collector (HTTP) -> Kafka -> Flink -> Pinot, still exact: the stack's collector
    validates, keys and partitions every event itself, the phase fences included."""
    env = load("local")
    url = collector_url(env)
    wait_ready(url)
    traffic = make_traffic(env, seed=31, events=10_000, ads=30, start_ms=next_start_ms(env))
    send_traffic(env, traffic, pause_s=4, collector_url=url)
    check_run(env, traffic.oracle)
    metrics = httpx.get(f"{url}/metrics").text
    accepted = re.search(r'^adagg_collector_events_accepted_total\{endpoint="events"\} (\S+)$', metrics, re.M)
    assert accepted and float(accepted[1]) >= traffic.oracle.stats["sends"]


def _prometheus(stack, query_: str) -> list[dict]:
    r = requests.get(f"http://{stack.s.host}:{stack.s.prometheus.port}/api/v1/query", params={"query": query_}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def _until(check, timeout_s: float, what: str):
    """check() until it returns something true; the last value otherwise, in the failure."""
    deadline, last = time.time() + timeout_s, None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout_s} s (last: {last})")


def _slo_report() -> dict[str, dict]:
    """`adagg slo report --json`, as a user runs it, by SLO name."""
    done = subprocess.run([sys.executable, "-m", "adagg.cli", "slo", "report", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {r["slo"]: r for r in json.loads(done.stdout)}


def test_prometheus_scrapes_every_service_and_reads_their_numbers(stack):
    """The stack's Prometheus has every service as a healthy target, and what it scraped is what the
    services say themselves: the collector's accepted count equals its own /metrics, Kafka's log end
    offsets of the enriched topic equal the broker's, Flink reports the running job on both
    TaskManagers, and the Pinot server's document count of ad_minute equals COUNT(*)."""
    env = load("local")
    prom = f"http://{stack.s.host}:{stack.s.prometheus.port}"
    expected = {svc.name for svc in stack.select(None)} - {"zookeeper"}  # Superset: optional, not scraped

    def targets_up():
        active = requests.get(f"{prom}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        up = {t["labels"]["instance"] for t in active if t["health"] == "up"}
        return up if up == expected else None
    _until(targets_up, 60, "every target up")

    def collector_accepted() -> float:
        own = re.search(r'^adagg_collector_events_accepted_total\{endpoint="events"\} (\S+)$',
                        httpx.get(f"{collector_url(env)}/metrics").text, re.M)
        scraped = _prometheus(stack, 'adagg_collector_events_accepted_total{endpoint="events"}')
        return bool(own and scraped and float(scraped[0]["value"][1]) == float(own[1]) > 0)
    _until(collector_accepted, 30, "the collector's accepted count as scraped equals its own")

    # The enriched topic: written only while events flow (the raw topic gets heartbeats every second).
    enriched = env.topics.enriched

    def enriched_offsets():
        scraped = {int(r["metric"]["partition"]): int(float(r["value"][1]))
                   for r in _prometheus(stack, f'kafka_log_logendoffset{{topic="{enriched.name}"}}')}
        return scraped if scraped == end_offsets(env, enriched.name, enriched.partitions) else None
    assert sum(_until(enriched_offsets, 60, "the enriched topic's end offsets as scraped equal the broker's").values()) > 0

    def enriched_bytes_per_offset():
        """The storage rule's figure equals the topic's .log files on disk over its offsets."""
        on_disk = sum(f.stat().st_size for f in (data() / "kafka").glob(f"{enriched.name}-*/*.log"))
        per_offset = on_disk / sum(end_offsets(env, enriched.name, enriched.partitions).values())
        scraped = _prometheus(stack, f'adagg:kafka_topic_bytes_per_offset{{topic="{enriched.name}"}}')
        return per_offset if scraped and float(scraped[0]["value"][1]) == per_offset else None
    _until(enriched_bytes_per_offset, 60, "bytes per offset as recorded equal the files on disk")

    jobs = _prometheus(stack, "flink_jobmanager_numRunningJobs")
    assert [float(r["value"][1]) for r in jobs] == [1.0]
    assert {r["metric"]["instance"] for r in _prometheus(stack, "flink_taskmanager_Status_JVM_CPU_Load")} == {
        "flink-taskmanager-1", "flink-taskmanager-2"}

    def minute_rows():
        scraped = _prometheus(stack, 'pinot_server_documentcount_value{table="ad_minute_REALTIME"}')
        counted = query(env, "SELECT COUNT(*) AS n FROM ad_minute")[0]["n"]
        return counted if scraped and int(float(scraped[0]["value"][1])) == counted > 0 else None
    _until(minute_rows, 60, "ad_minute's document count as scraped equals COUNT(*)")

    # Pinot's consumption lag per table is recorded, by joining its consuming partitions to Kafka's.
    lag = _until(lambda: {r["metric"]["pinot_table"]: float(r["value"][1])
                          for r in _prometheus(stack, "adagg:pinot_consumer_lag:offsets")}, 60, "Pinot's lag recorded")
    assert set(lag) >= {"ad_minute", "ad_minute_live", "events_enriched"} and min(lag.values()) >= 0, lag

    # The SLO rules are loaded and evaluate on these series without error.
    groups = requests.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 34 and all(r["health"] == "ok" for r in rules), [r.get("lastError") for r in rules]


def test_slo_report_reads_the_running_system(stack):
    """`adagg slo report --json`, as a user runs it: every objective with its target; what it says of
    the job and the targets agrees with Flink's REST API and Prometheus's target list, and the live
    tier's age with the query API's freshness endpoint (read a scrape apart)."""
    env = load("local")
    rows = _slo_report()
    assert set(rows) == {o.name for o in OBJECTIVES}
    assert all(r["target"] == (env.slo[o.target] if isinstance(o.target, str) else o.target)
               for o in OBJECTIVES for r in [rows[o.name]])
    running = sum(1 for j in requests.get(f"{env.flink.rest_url}/jobs/overview", timeout=10).json()["jobs"]
                  if j["state"] == "RUNNING")
    assert rows["streaming_jobs_running"]["value"] == running == 1 and rows["streaming_jobs_running"]["met"]
    assert (rows["targets_down"]["value"], rows["targets_down"]["met"]) == (0.0, True)
    assert rows["collector_kafka_up"]["met"] is True
    age = requests.get(f"http://{stack.s.host}:{env.serving.port}/v1/freshness", timeout=30).json()[
        "tables"]["ad_minute_live"]["age_s"]
    scrape_s = int(stack.s.prometheus.scrape_interval.rstrip("s"))
    assert age is not None and rows["live_tier_age"]["value"] is not None
    assert abs(rows["live_tier_age"]["value"] - age) <= scrape_s + 5, (rows["live_tier_age"], age)


def _check_freshness(stack, env, oracle, deliveries) -> None:
    """The collector's acceptance times carried to the tables, exactly: the live tier's newest is
    that of the newest first delivery of an on-time event, the final tier's (quality_minute) that of
    the newest on-time delivery in a closed window, as the raw topic's headers hold them. Pinot
    stamps every row between that acceptance and the moment the test sees it. The query API's
    adagg_freshness_seconds is then the scrape's time minus them."""
    events = [d for d in deliveries if "heartbeat" not in d.record]
    assert events and all(d.received_at_ms for d in events)
    first: dict = {}
    for d in sorted(events, key=lambda d: (d.partition, d.offset)):  # an event's deliveries share a partition
        first.setdefault(d.record["event_id"], d)
    want = {"live": max(first[e].received_at_ms for e in oracle.enriched),
            "final": max(d.received_at_ms for d in events if d.record["event_id"] not in oracle.late_event_ids
                         and d.record["event_time"] // 60_000 * 60_000 in oracle.quality)}
    since = run_since_ms(oracle)
    deadline = time.time() + 120
    while True:
        shown = {tier: query(env, f"SELECT MAX(max_received_at_ms) AS r FROM {table} WHERE window_start_ms >= %(since)s",
                             {"since": since})[0]["r"] for tier, table in (("live", "ad_minute_live"),
                                                                          ("final", "quality_minute"))}
        if shown == want:
            break
        assert time.time() < deadline, f"newest acceptance per tier in Pinot: {shown}, in the raw topic: {want}"
        time.sleep(2)
    # Pinot's ingestion stamp: each row became visible after its newest event was accepted, and
    # before this test saw it: ingested_at_ms - max_received_at_ms is its accepted -> visible lag.
    seen_ms = time.time() * 1000
    for table in ("ad_minute_live", "quality_minute"):
        rows = query(env, f"SELECT max_received_at_ms AS r, ingested_at_ms AS i FROM {table} "
                          "WHERE window_start_ms >= %(since)s LIMIT 100000", {"since": since})
        assert rows and all(r["r"] <= r["i"] <= seen_ms for r in rows), table
    # The scrape's time minus the gauge is the acceptance it measured from (one sample, one query).
    while True:
        measured = {r["metric"]["tier"]: float(r["value"][1]) for r in _prometheus(
            stack, "timestamp(adagg_freshness_seconds) - adagg_freshness_seconds")}
        if measured.keys() == want.keys() and all(abs(measured[t] - want[t] / 1000) < 2 for t in want):
            break
        assert time.time() < deadline + 60, f"scrape time - adagg_freshness_seconds: {measured}, accepted at {want}"
        time.sleep(2)


def test_the_data_quality_slos_equal_the_oracle(stack):
    """Duplicates, billing repeats and late deliveries of a run through the collector, as the SLO
    report gives them (query API -> Prometheus -> `adagg slo report --json`), equal the run's
    oracle exactly: the run starts two hours of event time after anything before it, so the
    report's hour (the newest 60 minutes of the quality table) holds this run alone. The counts
    are per source: the collector's API key, as the job read it from the record header."""
    env = load("local")
    if not flink.running_jobs(env):  # run alone: the module's first test submits it otherwise
        ensure_topics(env, say=lambda *_: None)
        apply(env, say=lambda *_: None)
        flink.wait_running(env.flink.rest_url, flink.submit("local", say=lambda *_: None))
    url = collector_url(env)
    wait_ready(url)
    traffic = make_traffic(env, seed=53, events=6_000, ads=20, start_ms=next_start_ms(env) + 2 * 3_600_000)
    since = end_offsets(env, env.topics.raw.name)
    send_traffic(env, traffic, pause_s=4, collector_url=url)
    oracle = traffic.oracle
    check_run(env, oracle, pinot=False)
    _check_freshness(stack, env, oracle, read_deliveries(env, since))
    to_ms = max(oracle.quality) + 60_000
    from_ms = to_ms - 60 * 60_000
    assert min(oracle.quality) >= from_ms, "the run must fit the report's hour"
    want = {c: sum(r[c] for r in oracle.quality.values()) for c in ("deliveries", "unique_events",
                                                                     "valid_events", "billing_repeats")}
    want["late_deliveries"] = sum(r["late_deliveries"] for k, r in oracle.late_minute.items() if from_ms <= k < to_ms)
    assert want["deliveries"] > want["unique_events"] and want["billing_repeats"] and want["late_deliveries"]

    def scraped() -> dict:
        got = {c: [(r["metric"].get("source"), float(r["value"][1])) for r in _prometheus(stack, f"adagg_quality_{c}")]
               for c in want}
        got["window_end_ms"] = [float(r["value"][1]) for r in _prometheus(stack, "adagg_quality_window_end_ms")]
        return got

    expected = {**{c: [("local-sdk", float(n))] for c, n in want.items()}, "window_end_ms": [float(to_ms)]}
    deadline = time.time() + 180  # Pinot's ingestion of the late events, and a scrape
    while (got := scraped()) != expected:
        assert time.time() < deadline, f"the quality series in Prometheus: {got}, the oracle's: {expected}"
        time.sleep(2)

    rows = _slo_report()
    assert rows["deliveries_per_event"]["value"] == want["deliveries"] / want["unique_events"]
    assert rows["billing_repeat_ratio"]["value"] == want["billing_repeats"] / want["valid_events"]
    assert rows["late_ratio"]["value"] == want["late_deliveries"] / (want["deliveries"] + want["late_deliveries"])
    assert {rows[n]["met"] for n in ("deliveries_per_event", "billing_repeat_ratio", "late_ratio")} == {True}


def test_a_service_that_stops_answering_raises_its_alert(stack):
    """AdaggTargetDown fires for the query API a minute after it stopped answering, and for nothing
    else: every other target is up."""
    prom = f"http://{stack.s.host}:{stack.s.prometheus.port}"
    stack.down(["query-api"])
    try:
        def firing():
            alerts = requests.get(f"{prom}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            down = [a for a in alerts if a["labels"]["alertname"] == "AdaggTargetDown"]
            return down if down and all(a["state"] == "firing" for a in down) else None
        down = _until(firing, 150, "AdaggTargetDown firing")
        assert [a["labels"]["instance"] for a in down] == ["query-api"]
    finally:
        stack.up(["query-api"])


def test_sql_client_runs_the_rendered_sql_as_is(stack, tmp_path):
    """`adagg sql render` output, submitted unchanged with Flink's bin/sql-client.sh -f, runs and
    gives the same exact results."""
    env = load("local")
    flink.cancel_all(env, say=lambda *_: None)
    script = tmp_path / "streaming.local.sql"
    rendered = subprocess.run([sys.executable, "-m", "adagg.cli", "sql", "render", "--env", "local"],
                              capture_output=True, text=True, check=True, cwd=REPO).stdout
    script.write_text(rendered)
    job_id = flink.submit_sql_client("local", script, say=lambda *_: None)
    flink.wait_running(env.flink.rest_url, job_id)
    traffic = make_traffic(env, seed=7, events=5_000, ads=20, start_ms=next_start_ms(env))
    send_traffic(env, traffic, pause_s=4)
    check_run(env, traffic.oracle, pinot=False)


# ---------------------------------------------------------------- serving: the query API on these runs

API_PORT = 8061


@pytest.fixture(scope="module")
def api(stack):
    proc = subprocess.Popen([sys.executable, "-m", "adagg.cli", "serve", "--port", str(API_PORT)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{API_PORT}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline and proc.poll() is None, "the query API did not start"
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _sum_by(rows, key) -> dict:
    out: dict = {}
    for k, row in rows:
        into = out.setdefault(key(k, row), {m: 0 for m in MEASURES})
        for m in MEASURES:
            into[m] += row[m]
    return out


def _measures(bucket: dict) -> dict:
    return {m: bucket[m] for m in MEASURES}


def test_query_api_answers_equal_the_oracle(stack, api):
    """Minute, hour and day series, top ads, campaign and advertiser summaries and late events,
    through the HTTP API on real Pinot, against the oracle of the first (closed) run."""
    main = RUNS[0]
    since = run_since_ms(main)
    until = max(k[0] for k in main.minute) + 60_000
    by_ad = _sum_by(main.minute.items(), lambda k, r: k[1])
    for ad in sorted(by_ad, key=lambda a: -by_ad[a]["clicks"])[:3]:
        for grain, table, step in (("minute", main.minute, 60_000), ("hour", main.hour, 3_600_000),
                                   ("day", main.day, 86_400_000)):
            rows = [(k, r) for k, r in table.items() if k[1] == ad]
            expected = _sum_by(rows, lambda k, r: k[0])
            lo = since - since % step if grain == "minute" else min(expected)
            hi = until + (-until) % step if grain == "minute" else max(expected) + step
            answer = httpx.get(f"{api}/v1/ads/{ad}/metrics", params={"from": lo, "to": hi, "grain": grain}).json()
            got = {b["window_start_ms"]: _measures(b) for b in answer["buckets"]}
            assert got == expected, (ad, grain)
            assert {b["tier"] for b in answer["buckets"]} == {"final"}, (ad, grain)
        country = next(k[2] for k, _ in rows)
        filtered = httpx.get(f"{api}/v1/ads/{ad}/metrics", params={"from": since - since % 60_000,
                                                                  "to": until, "country": country}).json()
        want = _sum_by([(k, r) for k, r in main.minute.items() if k[1] == ad and k[2] == country], lambda k, r: k[0])
        assert {b["window_start_ms"]: _measures(b) for b in filtered["buckets"]} == want

    lo, hi = since - since % 60_000, until
    campaign = main.minute[next(iter(main.minute))]["campaign_id"]
    advertiser = main.minute[next(iter(main.minute))]["advertiser_id"]
    answer = httpx.get(f"{api}/v1/campaigns/{campaign}/summary", params={"from": lo, "to": hi}).json()
    expected = _sum_by([(k, r) for k, r in main.minute.items() if r["campaign_id"] == campaign], lambda k, r: "all")
    assert _measures(answer["total"]) == expected["all"] and answer["tier"] == "final"
    answer = httpx.get(f"{api}/v1/advertisers/{advertiser}/summary", params={"from": lo, "to": hi}).json()
    expected = _sum_by([(k, r) for k, r in main.minute.items() if r["advertiser_id"] == advertiser],
                       lambda k, r: r["campaign_id"])
    assert {c["campaign_id"]: _measures(c) for c in answer["by_campaign"]} == expected

    late = httpx.get(f"{api}/v1/late-events", params={"from": main.stats["min_event_time_ms"], "to": hi}).json()
    assert late["late_events"] == main.stats["late_sends"]


def test_top_ads_over_the_newest_minutes_equal_the_oracle(stack, api):
    """Newest windows: still open in the last run, so answered by the live tier where not final."""
    live = {k: r for oracle in RUNS for k, r in oracle.minute_live.items()}
    hi = max(k[0] for k in live) + 60_000
    for minutes, country in ((3, None), (10, None), (10, "US")):
        rows = [(k, r) for k, r in live.items() if k[0] >= hi - minutes * 60_000 and country in (None, k[2])]
        per_ad = _sum_by(rows, lambda k, r: k[1])
        expected = sorted(per_ad.items(), key=lambda kv: (-kv[1]["billable_clicks"], kv[0]))[:5]
        query = {"n": 5, "minutes": minutes, **({"country": country} if country else {})}
        answer = httpx.get(f"{api}/v1/top-ads", params=query).json()
        assert answer["to_ms"] == hi
        assert [(a["ad_id"], _measures(a)) for a in answer["ads"]] == expected, (minutes, country)


def test_every_table_is_fresh_and_queryable(stack, api):
    tables_ = httpx.get(f"{api}/v1/freshness").json()["tables"]
    assert set(tables_) == set(TABLES)
    assert all(t["rows"] > 0 and t["newest_ms"] for t in tables_.values()), tables_


def test_injection_attempts_on_the_real_stack_are_refused_and_harmless(stack, api):
    """An id may hold any text the contract allows, so an attempt in an id parameter is bound as one
    literal and simply matches nothing; any other parameter refuses it. Nothing changes either way."""
    before = httpx.get(f"{api}/v1/freshness").json()["tables"]
    attempts = ["x' OR '1'='1", "x'; DROP TABLE ad_minute; --", "*", "ad-0001' UNION SELECT 1 --"]
    main = RUNS[0]
    window = {"from": run_since_ms(main) - run_since_ms(main) % 60_000, "to": max(k[0] for k in main.minute)}
    for value in attempts:
        for path, query_ in (("/v1/ads/ad-0001/metrics", {**window, "country": value}),
                             ("/v1/top-ads", {"device_type": value}), ("/v1/top-ads", {"n": value})):
            response = httpx.get(f"{api}{path}", params=query_)
            assert response.status_code == 400 and "Traceback" not in response.text, (path, value)
        as_ids = (("/v1/ads/ad-0001/metrics", {**window, "campaign_id": value}, lambda a: a["buckets"] == []),
                  ("/v1/late-events", {**window, "ad_id": value}, lambda a: a["late_events"] == 0),
                  (f"/v1/campaigns/{quote(value, safe='')}/summary", window,
                   lambda a: not any(a["total"][m] for m in MEASURES)))
        for path, query_, matched_nothing in as_ids:
            response = httpx.get(f"{api}{path}", params=query_)
            assert response.status_code == 200 and matched_nothing(response.json()), (path, value, response.text)
    after = httpx.get(f"{api}/v1/freshness").json()["tables"]
    assert {t: v["rows"] for t, v in after.items()} == {t: v["rows"] for t, v in before.items()}


def test_the_readme_console_queries_run(stack):
    """Every SQL sample of the README runs on these tables and returns rows."""
    env = load("local")
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    statements = [s.strip() for block in blocks for s in re.split(r"\n\s*\n|\n(?=SELECT)", re.sub(
        r"^--.*$", "", block, flags=re.M)) if s.strip()]
    assert len(statements) >= 6
    for sql in statements:
        assert query(env, sql), sql


def test_a_corrected_row_replaces_the_old_one(stack, api):
    """Re-emit one final minute row with a higher version and 100 more clicks: the API shows the
    corrected value once, not both rows."""
    from kafka import KafkaProducer

    env = load("local")
    main = RUNS[0]
    key, row = next((k, r) for k, r in sorted(main.minute.items()) if r["clicks"] > 0)
    corrected = {"window_start_ms": key[0], "ad_id": key[1], "country": key[2], "device_type": key[3], **row,
                 "clicks": row["clicks"] + 100, "billable_clicks": row["billable_clicks"] + 100,
                 "tier": "final", "version": 2, "pipeline_version": "test-correction",
                 "computed_at_ms": int(time.time() * 1000)}
    producer = KafkaProducer(bootstrap_servers=env.kafka.bootstrap_servers, acks="all")
    record_key = flink_json_key({c: corrected[c] for c in KEY})  # the bytes the job's own sink writes
    producer.send(f"{env.outputs.prefix}ad-minute", key=record_key, value=json.dumps(corrected).encode())
    producer.flush()
    producer.close()
    window = {"from": key[0], "to": key[0] + 60_000}
    deadline = time.monotonic() + 90
    while True:
        bucket = httpx.get(f"{api}/v1/ads/{key[1]}/metrics", params={**window, "country": key[2],
                                                                    "device_type": key[3]}).json()["buckets"]
        if bucket and bucket[0]["clicks"] == row["clicks"] + 100:
            break
        assert time.monotonic() < deadline, f"the corrected row did not replace the old one: {bucket}"
        time.sleep(1)
    whole = httpx.get(f"{api}/v1/ads/{key[1]}/metrics", params=window).json()["buckets"][0]
    expected = sum(r["clicks"] for k, r in main.minute.items() if k[0] == key[0] and k[1] == key[1])
    assert whole["clicks"] == expected + 100  # replaced, not added


def _counts(tables: dict) -> dict:
    return {t: (v["rows"], v["newest_ms"]) for t, v in tables.items()}


def test_pinot_server_restart_loses_no_rows(stack, api):
    before = _counts(httpx.get(f"{api}/v1/freshness").json()["tables"])
    stack.down(["pinot-server"], say=lambda *_: None)
    assert httpx.get(f"{api}/v1/freshness").status_code == 503  # said clearly, not a wrong answer
    stack.up(["pinot-server"], say=lambda *_: None)
    deadline = time.monotonic() + 240
    while True:
        answer = httpx.get(f"{api}/v1/freshness")
        after = _counts(answer.json()["tables"]) if answer.status_code == 200 else None
        if after == before:
            break
        assert time.monotonic() < deadline, f"rows after the restart: {after}, before: {before}"
        time.sleep(3)


def test_idle_read_committed_topics_stay_queryable_and_report_their_age(stack, api):
    """Nothing is sent any more and every output topic ends in a transaction marker: the tables
    still answer, hold what they held, and their reported age grows."""
    first = httpx.get(f"{api}/v1/freshness").json()["tables"]
    time.sleep(15)
    second = httpx.get(f"{api}/v1/freshness").json()["tables"]
    assert _counts(second) == _counts(first) and set(first) == set(TABLES)
    for table in TABLES:
        assert second[table]["age_s"] - first[table]["age_s"] >= 14


# ---------------------------------------------------------------- raw archive, reconciliation, billing

DAY_MS = 86_400_000


def _pass_records(run, run_at_ms: int) -> dict[tuple[str, str], dict]:
    """One reconcile pass's history records as Pinot shows them, by (grain, measure)."""
    def read():
        rows = run("SELECT * FROM reconciliations WHERE run_at_ms = %(t)s LIMIT 1000", {"t": run_at_ms})
        return rows if len(rows) == 3 * len(MEASURES) else None
    return {(r["grain"], r["measure"]): r for r in _until(read, 60, f"the history records of pass {run_at_ms}")}


def test_reconcile_folds_the_late_events_back_in_and_bills_byte_identically(stack, api, tmp_path):
    """A run alone on a day of its own, with late events: the final tier equals the oracle and
    differs from the truth (every unique event) only in windows with late events. The archive the
    job wrote holds every delivery once. Reconcile names the late events as the reason, publishes
    corrections, after which ad_minute equals the truth; a second pass publishes nothing. The
    billing report is byte-identical when written twice and when recomputed from raw data, and a
    corrupted archive file is reported, never billed from."""
    import pyarrow.dataset as ds

    from archive.manifest import data_files, seal_all
    from reconcile import backfill
    from reconcile.run import online_rows, reconcile
    from reconcile.schedule import billing_report
    from serving.runner import PinotRunner

    env = load("local")
    ensure_topics(env)  # all three no-ops after the tests above; here so this test can run alone (-k)
    apply(env, say=lambda *_: None)
    if not flink.running_jobs(env):
        flink.wait_running(env.flink.rest_url, flink.submit("local", say=lambda *_: None))
    day = -(-next_start_ms(env) // DAY_MS) * DAY_MS
    date = time.strftime("%Y-%m-%d", time.gmtime(day / 1000))
    traffic = make_traffic(env, seed=61, events=8_000, ads=20, start_ms=day, close_day=True)
    oracle = traffic.oracle
    send_traffic(env, traffic, pause_s=4)
    check_run(env, oracle)  # the final tier (Kafka and Pinot) equals the oracle
    in_day = lambda rows: {k: v for k, v in rows.items() if day <= k[0] < day + DAY_MS}  # noqa: E731
    truth, final = in_day(oracle.reconciled), in_day(oracle.minute)
    events = [json.loads(s.value) for phase in traffic.phases for s in phase]
    late_windows = {(e["event_time"] - e["event_time"] % 60_000, e["ad_id"])
                    for e in events if e["event_id"] in oracle.late_event_ids}
    differing = {k for k in truth.keys() | final.keys() if truth.get(k) != final.get(k)}
    assert differing and all((k[0], k[1]) in late_windows for k in differing)

    # The archive: every hour of the day committed by the watermark, every delivery exactly once.
    root = backfill.archive_dir(env)
    # (Late events can fall before midnight, into the previous day: only this day's deliveries count.)
    hours = {f"dt={date}/hr={h:02d}" for h in {(e["event_time"] - day) // 3_600_000 for e in events} if 0 <= h < 24}
    deadline = time.monotonic() + 60
    while not all((root / h / "_SUCCESS").exists() for h in hours) and time.monotonic() < deadline:
        time.sleep(2)
    committed = sum(len(data_files(root / h)) for h in hours)
    seal_all(root, say=lambda _: None)
    # Sealing merged what Flink committed (a file per checkpoint and writer) into one file per sealing.
    for h in hours:
        manifest = json.loads((root / h / "_MANIFEST.json").read_text())
        assert len(data_files(root / h)) == len(manifest["files"]) <= manifest["revision"], h
    assert committed > len(hours)
    archived = ds.dataset(str(root / f"dt={date}"), format="parquet").to_table(
        columns=["event_id", "kafka_partition", "kafka_offset"]).to_pylist()
    sent = [e["event_id"] for e in events if day <= e["event_time"] < day + DAY_MS]
    assert sorted(r["event_id"] for r in archived) == sorted(sent)
    assert len({(r["kafka_partition"], r["kafka_offset"]) for r in archived}) == len(archived)

    run = PinotRunner(env.pinot.broker_url, timeout_s=120)
    try:
        first = reconcile(env, run, day, day + DAY_MS, say=lambda _: None)
        assert first["mismatches_by_reason"] == {"late_events": len(differing)}
        assert first["published_corrections"] == len(differing)
        report = (Path(first["report"]) / "mismatches.csv").read_text().splitlines()
        assert len(report) == len(differing) + 1 and all(line.endswith(",late_events") for line in report[1:])
        shown = online_rows(run, day, day + DAY_MS)
        assert {k: {c: r[c] for c in MEASURES} for k, r in shown.items() if any(r[c] for c in MEASURES)} == {
            k: {c: r[c] for c in MEASURES} for k, r in truth.items()}
        assert {k for k, r in shown.items() if r["version"] == 2} == differing
        # The query API answers a corrected window from the reconciled tier, with the truth's numbers.
        start, ad = sorted(differing)[0][:2]
        answer = httpx.get(f"{api}/v1/ads/{ad}/metrics", params={"from": start, "to": start + 60_000}).json()
        [bucket] = answer["buckets"]
        assert bucket["tier"] == "reconciled" and bucket["clicks"] == sum(
            r["clicks"] for k, r in truth.items() if k[:2] == (start, ad))
        # The roll-ups: ad_hour and ad_day were corrected too, to the truth summed per hour and day.
        assert first["day"]["days"] == [date] and first["hour"]["mismatches_by_reason"].keys() == {"late_events"}
        for table, step in (("ad_hour", 3_600_000), ("ad_day", DAY_MS)):
            truth_rolled: dict = {}
            for k, r in truth.items():
                into = truth_rolled.setdefault((k[0] - k[0] % step, *k[1:]), dict.fromkeys(MEASURES, 0))
                for c in MEASURES:
                    into[c] += r[c]
            rolled = online_rows(run, day, day + DAY_MS, table)
            assert {k: {c: r[c] for c in MEASURES} for k, r in rolled.items() if any(r[c] for c in MEASURES)} \
                == truth_rolled, table
            assert any(r["version"] == 2 for r in rolled.values()), table
        hour = start - start % 3_600_000
        answer = httpx.get(f"{api}/v1/ads/{ad}/metrics", params={"from": hour, "to": hour + 3_600_000,
                                                                 "grain": "hour"}).json()
        [bucket] = answer["buckets"]
        assert bucket["tier"] == "reconciled" and bucket["clicks"] == sum(
            r["clicks"] for k, r in truth.items() if k[1] == ad and hour <= k[0] < hour + 3_600_000)
        # The pass's history in Pinot: served against billed per measure as the oracle has them,
        # the size of the change, nothing left after it, what it read from the archive.
        records = _pass_records(run, first["run_at_ms"])
        for m in MEASURES:
            rec = records[("minute", m)]
            assert (rec["served"], rec["billed"]) == (sum(r[m] for r in final.values()), sum(r[m] for r in truth.values()))
            assert rec["changed"] == sum(abs(truth.get(k, {}).get(m, 0) - final.get(k, {}).get(m, 0)) for k in differing)
        assert {r["residual"] for r in records.values()} == {0}
        assert records[("minute", "clicks")]["changed_windows"] == len(differing)
        parts = [f for hour in sorted(root.glob(f"dt={date}/hr=*")) for f in data_files(hour)]
        assert {(r["rows_read"], r["archive_bytes"], r["archive_files"]) for r in records.values()} == {
            (len(archived), sum(f.stat().st_size for f in parts), len(parts))}
        assert all(r["cpu_seconds"] > 0 and r["data_days"] == 1.0 for r in records.values())
        # The lineage of a corrected row, from the CLI and the API: reconciled, version 2, the sealed
        # manifest of its hour, and the change from the final tier's value to the truth's.
        key = sorted(differing)[0]
        cli = subprocess.run([sys.executable, "-m", "adagg.cli", "lineage", "ad_minute", *map(str, key), "--json"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stderr
        traced = json.loads(cli.stdout)
        assert traced == httpx.get(f"{api}/v1/lineage/ad_minute", params=dict(zip(KEY, map(str, key)))).json()
        assert (traced["tier"], traced["version"]) == ("reconciled", 2)
        [hour_part] = traced["archive"]
        assert hour_part["sha256"] == json.loads((root / hour_part["partition"] / "_MANIFEST.json").read_text())["sha256"]
        [changed] = [p for p in traced["reconciliation"]["passes"] if p["changed"]]
        assert changed["change"]["from"] == {m: final.get(key, {}).get(m, 0) for m in MEASURES}
        assert changed["change"]["to"] == {m: truth.get(key, {}).get(m, 0) for m in MEASURES}
        # ... and in the SLO report, through the query API and Prometheus.
        _until(lambda: [1 for r in _prometheus(stack, "adagg_reconcile_run_at_ms")
                        if float(r["value"][1]) == first["run_at_ms"]], 90, "the first pass in Prometheus")
        slo = _slo_report()
        assert (slo["reconcile_residual"]["value"], slo["reconcile_residual"]["met"]) == (0.0, True)
        assert slo["served_vs_billed"]["value"] == max(abs(r["served_diff"]) / r["billed"]
                                                       for r in records.values() if r["billed"])

        second = reconcile(env, run, day, day + DAY_MS, say=lambda _: None)
        assert second["mismatched_keys"] == 0 and second["published_corrections"] == 0
        assert second["hour"]["mismatched_keys"] == 0 and second["day"]["mismatched_keys"] == 0
        assert {(r["served_diff"], r["changed"], r["residual"]) for r in _pass_records(run, second["run_at_ms"]).values()} \
            == {(0, 0, 0)}

        one = billing_report(env, run, date, "pinot", out=tmp_path / "one", say=lambda _: None)
        two = billing_report(env, run, date, "pinot", out=tmp_path / "two", say=lambda _: None)
        raw = billing_report(env, run, date, "archive", out=tmp_path / "raw", say=lambda _: None)
        assert one == two and raw["digest"] == one["digest"] and raw["files"] == one["files"]
        for name in one["files"]:
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
        assert one["totals"]["spend_micros"] == sum(r["spend_micros"] for r in truth.values())

        # Scheduled mode: a pass reconciles whatever sealed hours earlier runs left; the next finds nothing.
        from reconcile.schedule import pass_once
        pass_once(env, run, say=lambda _: None)
        assert pass_once(env, run, say=lambda _: None)["reconciled"] == []
    finally:
        run.close()

    victim = data_files(next(iter(sorted(root.glob(f"dt={date}/hr=*")))))[0]
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    try:
        refused = subprocess.run([sys.executable, "-m", "adagg.cli", "report", "billing", "--date", date,
                                  "--out", str(tmp_path / "bad")], capture_output=True, text=True, cwd=REPO)
        assert refused.returncode == 1 and f"{victim.name} does not match its checksum" in refused.stderr
        assert not (tmp_path / "bad").exists()
    finally:
        victim.write_bytes(original)


def test_an_upgrade_that_adds_a_column_keeps_every_row_queryable(stack):
    """`adagg pinot apply` of a schema with a new column (an upgrade: the freshness columns came
    so) reloads the table: a query that reads the new column still sees every row. Failed before
    the reload: Pinot prunes the segments that lack a queried column, and the count was 0. Last
    in the module: Pinot cannot take the column back, so the schema stays upgraded."""
    env = load("local")
    spec = next(t for t in tables(env) if t.name == "publisher_minute")
    rows = query(env, "SELECT COUNT(*) AS n FROM publisher_minute")[0]["n"]
    assert rows > 0
    upgraded = {**spec.schema, "dimensionFieldSpecs": [*spec.schema["dimensionFieldSpecs"],
                                                       {"name": "upgrade_probe", "dataType": "LONG"}]}
    assert apply(env, specs=[TableSpec(spec.name, upgraded, spec.table_config)], say=lambda *_: None) == [
        "update schema publisher_minute"]
    _until(lambda: query(env, "SELECT COUNT(*) AS n, MIN(upgrade_probe) AS m FROM publisher_minute")[0]["n"] == rows,
           60, f"all {rows} rows of publisher_minute answering a query of the new column")
