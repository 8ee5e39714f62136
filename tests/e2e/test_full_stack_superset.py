"""Superset on the local stack, for real: after one run (a day closed and reconciled), `adagg
superset up` installs Superset into its own venv, starts it and imports the dashboards of superset/; a second import changes no object count and
puts back what was edited; each dashboard has its charts; every chart's data endpoint returns rows,
and over the closed range of one run the figures equal the run's oracle and a direct Pinot query;
headless Chromium renders every dashboard with no error shown, and the screenshots are kept
(.adagg/test-artifacts/superset/). Tests run in file order, on the stack test_full_stack.py leaves
running (tests/e2e/conftest.py: shared, or started fresh when this module runs alone); the last
one stops it and checks that `stack down` leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adagg import paths, superset
from adagg.demo import make_traffic, next_start_ms, run_since_ms
from adagg.env import load
from adagg.kafka_io import read_topic, send_traffic
from adagg.pinot import query
from adagg.stack import MARKER, port_open
from adagg.superset_bundle import load_spec
from adagg.verify import wait_for_outputs
from collector import dev_keys
from collector.client import CollectorClient, collector_url, wait_ready

SPEC = load_spec()
SLUGS = [d["slug"] for d in SPEC["dashboards"]]
ARTIFACTS = paths.home() / "test-artifacts" / "superset"
DAY_MS = 86_400_000


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adagg.cli", *args], cwd=paths.REPO, capture_output=True, text=True,
                          timeout=900)


def _reconcile_the_day(env, day: int) -> None:
    """Seal the day's archive once the watermark committed it, and reconcile it: the billing
    dashboard's corrections and reconciliation history."""
    from archive.manifest import Partition, seal_all
    from reconcile import backfill
    from reconcile.run import reconcile
    from serving.runner import PinotRunner

    root = backfill.archive_dir(env)
    deadline = time.monotonic() + 120
    while not list(root.glob(f"dt={Partition.of(day).dt}/hr=*/_SUCCESS")) and time.monotonic() < deadline:
        time.sleep(2)
    seal_all(root, say=lambda _: None)
    runner = PinotRunner(env.pinot.broker_url, timeout_s=120)
    try:
        assert reconcile(env, runner, day, day + DAY_MS, say=lambda _: None)["published_corrections"] > 0
    finally:
        runner.close()


@pytest.fixture(scope="module")
def stack(shared_stack):
    return shared_stack


@pytest.fixture(scope="module")
def run(job):
    """One run through the collector over a day that closes (so ad_day is final), reconciled (its
    late events corrected), and some refused events for the dead-letter chart, every output exact;
    then Superset up with its dashboards imported."""
    env = load("local")
    url = collector_url(env)
    wait_ready(url)
    day = -(-next_start_ms(env) // DAY_MS) * DAY_MS
    traffic = make_traffic(env, seed=71, events=4_000, ads=12, start_ms=day, close_day=True)
    send_traffic(env, traffic, pause_s=4, collector_url=url, say=lambda *_: None)
    refused = [b'{"schema_version": 1, "event_type": "click"}', b'{"schema_version": 99}', b"[1, 2", b'"text"']
    CollectorClient(url, dev_keys.SDK).post(refused)
    results = wait_for_outputs(env, traffic.oracle, timeout_s=240, since_ms=run_since_ms(traffic.oracle))
    assert [r.summary() for r in results if not r.exact] == []
    _reconcile_the_day(env, day)
    up = _cli("superset", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "password" in up.stdout and all(f"/superset/dashboard/{slug}/" in up.stdout for slug in SLUGS)
    return env, traffic.oracle, superset.Client(superset.url(env)), up.stdout


def test_a_second_import_changes_no_count_and_puts_back_what_was_edited(run):
    env, _, client, first = run
    counts = client.counts()
    charts = sum(len(d["charts"]) for d in SPEC["dashboards"])
    assert counts == {"database": 1, "dataset": len({c["dataset"] for d in SPEC["dashboards"] for c in d["charts"]}
                                                     | {d["filters"]["dataset"] for d in SPEC["dashboards"]}),
                      "chart": charts, "dashboard": len(SLUGS)}
    ids = {c["id"]: c["slice_name"] for c in client.get("/api/v1/chart/", q="(page_size:100)")["result"]}
    edited = min(ids)
    client.http.put(f"{client.base}/api/v1/chart/{edited}", json={"slice_name": "renamed in the UI"}).raise_for_status()
    again = _cli("superset", "import")
    assert again.returncode == 0, again.stderr
    assert client.counts() == counts
    assert {c["id"]: c["slice_name"] for c in client.get("/api/v1/chart/", q="(page_size:100)")["result"]} == ids
    assert "password" not in again.stdout.split("(user admin")[0]  # the password is printed once, at creation


def test_each_dashboard_is_found_by_its_slug_with_its_charts(run):
    _, _, client, _ = run
    for dashboard in SPEC["dashboards"]:
        found = client.get(f"/api/v1/dashboard/{dashboard['slug']}")["result"]
        assert found["dashboard_title"] == dashboard["title"] and found["published"]
        charts = client.get(f"/api/v1/dashboard/{dashboard['slug']}/charts")["result"]
        assert sorted(c["slice_name"] for c in charts) == sorted(c["name"] for c in dashboard["charts"])


def _chart_ids(client) -> dict[str, int]:
    return {c["slice_name"]: c["id"] for c in client.get("/api/v1/chart/", q="(page_size:100)")["result"]}


def test_every_chart_returns_rows(run):
    _, _, client, _ = run
    for name, chart_id in _chart_ids(client).items():
        [result] = client.get(f"/api/v1/chart/{chart_id}/data/")["result"]
        assert result["rowcount"] > 0 and not result.get("error"), name


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


def _chart_rows(client, chart_id: int, lo: int, hi: int) -> list[dict]:
    """The chart's saved query over [lo, hi) of its time column, through the chart data API."""
    chart = client.get(f"/api/v1/chart/{chart_id}")["result"]
    context = json.loads(chart["query_context"])
    for q in context["queries"]:
        q["filters"] = [{**f, "val": f"{_iso(lo)} : {_iso(hi)}"} if f["op"] == "TEMPORAL_RANGE" else f
                        for f in q["filters"]]
    [result] = client.post("/api/v1/chart/data", json=context)["result"]
    assert not result.get("error"), result
    return result["data"]


def _ints(rows: list[dict], key: tuple[str, ...], values: tuple[str, ...]) -> dict:
    return {tuple(r[k] if isinstance(r[k], str) else int(r[k]) for k in key): tuple(int(r[v]) for v in values)
            for r in rows}


def _summed(rows: dict, key, values: tuple[str, ...]) -> dict:
    out: dict = {}
    for k, r in rows.items():
        into = out.setdefault(key(k, r), [0] * len(values))
        for i, v in enumerate(values):
            into[i] += r[v]
    return {k: tuple(v) for k, v in out.items()}


def _until_equal(get, want, what: str, timeout_s: float = 120):
    deadline, got = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        got = get()
        if got == want:
            return
        time.sleep(2)
    raise AssertionError(f"{what}: {got} != {want}")


def test_closed_range_figures_equal_the_oracle_and_pinot(run):
    env, oracle, client, _ = run
    ids = _chart_ids(client)
    minutes = sorted(oracle.quality)
    lo, hi = minutes[0], minutes[-1] + 60_000
    # The day was reconciled: ad_day holds the truth, late events included.
    day_lo = min(k[0] for k in oracle.day if k[0] >= lo - lo % DAY_MS)
    day_hi = day_lo + DAY_MS
    values = ("spend_micros", "billable_clicks", "billable_impressions", "billable_conversions")
    truth = {k: r for k, r in oracle.reconciled.items() if day_lo <= k[0] < day_hi}
    want = _summed(truth, lambda k, r: (day_lo, r["advertiser_id"]), values)
    nonzero = lambda rows: {k: v for k, v in rows.items() if any(v)}  # noqa: E731
    _until_equal(lambda: nonzero(_ints(_chart_rows(client, ids["Spend per day and advertiser (micros)"], day_lo, day_hi),
                                       ("window_start_ms", "advertiser_id"), values)), nonzero(want),
                 "ad_day per advertiser")
    assert nonzero(_ints(query(env, "SELECT window_start_ms, advertiser_id, " + ", ".join(
        f"SUM({v}) AS {v}" for v in values) + " FROM ad_day WHERE window_start_ms >= %(lo)s AND window_start_ms < "
        "%(hi)s GROUP BY window_start_ms, advertiser_id LIMIT 100000", {"lo": day_lo, "hi": day_hi}),
        ("window_start_ms", "advertiser_id"), values)) == nonzero(want)
    corrected = _chart_rows(client, ids["Corrected by reconciliation (version > 1)"], day_lo, day_hi)
    assert corrected and {r["tier"] for r in corrected} == {"reconciled"}

    values = ("impressions", "clicks", "billable_clicks")
    live = {k: r for k, r in oracle.minute_live.items() if lo <= k[0] < hi}
    want = _summed(live, lambda k, r: (k[0],), values)
    _until_equal(lambda: _ints(_chart_rows(client, ids["Impressions, clicks and billable clicks per minute"], lo, hi),
                               ("window_start_ms",), values), want, "live tier per minute")
    assert _ints(query(env, "SELECT window_start_ms, SUM(impressions) AS impressions, SUM(clicks) AS clicks, "
                            "SUM(billable_clicks) AS billable_clicks FROM ad_minute_live WHERE window_start_ms >= %(lo)s "
                            "AND window_start_ms < %(hi)s GROUP BY window_start_ms LIMIT 100000", {"lo": lo, "hi": hi}),
                 ("window_start_ms",), values) == want

    values = ("deliveries", "unique_events", "duplicate_deliveries", "billable_events", "billing_repeats")
    want = {(k,): tuple(r[v] for v in values) for k, r in oracle.quality.items()}
    _until_equal(lambda: _ints(_chart_rows(client, ids["Deliveries, unique, billable per minute"], lo, hi),
                               ("window_start_ms",), values), want, "quality per minute")

    late = {(k, "event_time_at_or_below_watermark"): (r["late_deliveries"],) for k, r in oracle.late_minute.items()}
    late_lo, late_hi = min(oracle.late_minute), max(oracle.late_minute) + 60_000
    assert late
    _until_equal(lambda: _ints(_chart_rows(client, ids["Late events per minute and reason"], late_lo, late_hi),
                               ("event_time", "reason"), ("late_deliveries",)), late, "late events per minute")

    letters = Counter(value["reason"] for _, value in read_topic(env, env.topics.dlq.name) if value)
    assert sum(letters.values()) >= 4
    got = lambda: {r["reason"]: int(r["dead_letters"]) for r in _chart_rows(  # noqa: E731
        client, ids["Dead-lettered events by reason"], 0, int(time.time() * 1000) + 3_600_000)}
    _until_equal(got, dict(letters), "dead letters by reason")
    assert {r["reason"]: int(r["n"]) for r in query(env, "SELECT reason, COUNT(*) AS n FROM dead_letters "
                                                         "GROUP BY reason LIMIT 100")} == dict(letters)


def test_a_browser_renders_every_dashboard_without_an_error(run):
    from adagg.superset_browser import install_browser, render_dashboards

    why = install_browser()
    if why:
        pytest.skip(f"no headless browser: {why}")
    env, _, _, _ = run
    rendered = render_dashboards(superset.url(env), superset.ADMIN, superset.password_file().read_text(), SLUGS,
                                 ARTIFACTS)
    charts = {d["slug"]: len(d["charts"]) for d in SPEC["dashboards"]}
    for r in rendered:
        assert r.errors == [] and r.charts == charts[r.slug], (r.slug, r.errors, r.charts)
        assert r.screenshot.stat().st_size > 20_000, r.screenshot  # a drawn page, not a blank one
    print(f"screenshots: {ARTIFACTS}")


def _our_processes(home: Path) -> list[int]:
    marker = f"{MARKER}={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_stack_down_leaves_no_process(stack):
    assert _our_processes(stack.home)
    stack.down()
    assert _our_processes(stack.home) == []
    s = stack.s
    for port in (s.kafka.port, s.zookeeper.port, s.pinot_controller.port, s.pinot_broker.port,
                 s.pinot_server.admin_port, s.flink_jobmanager.port, stack.env.collector.port,
                 s.prometheus.port, stack.env.serving.port, s.kafka.metrics_port, s.flink_jobmanager.metrics_port):
        assert not port_open(port), f"port {port} still open after stack down"
    assert not any(p.exists() for p in (stack.pid_file(svc.name) for svc in stack.services))
    assert os.environ.get(MARKER) is None
