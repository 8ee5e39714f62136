"""Reconciliation rules (mismatches, reasons, corrections, idempotence) and the billing report's
byte-identical output, on plain rows: no Pinot, no Flink."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from reconcile import billing, diff
from serving.queries import MEASURES


def row(start, ad, clicks, version=1, country="US", device="mobile", spend=None, campaign=None):
    return {"window_start_ms": start, "ad_id": ad, "country": country, "device_type": device,
            "window_end_ms": start + 60_000, "campaign_id": campaign or f"c-{ad}", "advertiser_id": "adv-1",
            "vertical": "retail", **dict.fromkeys(MEASURES, 0), "clicks": clicks, "billable_clicks": clicks,
            "spend_micros": clicks * 1000 if spend is None else spend, "version": version}


def k(start, ad, country="US", device="mobile", campaign=None):
    """The key of row(start, ad, ...): diff.KEY's values."""
    return start, ad, country, device, campaign or f"c-{ad}", "adv-1", "retail"


def keyed(*rows):
    return {tuple(r[c] for c in diff.KEY): r for r in rows}


def test_mismatches_name_late_events_and_corrections_replace_the_online_rows():
    online = keyed(row(0, "a", 5), row(0, "b", 2), row(60_000, "a", 1), row(60_000, "z", 4))
    batch = keyed(row(0, "a", 7), row(0, "b", 2), row(60_000, "a", 3), row(120_000, "c", 1))
    late = {(0, "a"): 2, (120_000, "c"): 1}
    found = diff.mismatches(online, batch, late)
    assert [(m.key[:2], m.reason) for m in found] == [
        ((0, "a"), "late_events"), ((60_000, "a"), "unexplained"), ((60_000, "z"), "unexplained"),
        ((120_000, "c"), "late_events")]
    report = found[0].report_row()
    assert (report["online_clicks"], report["batch_clicks"], report["diff_clicks"]) == (5, 7, 2)
    assert report["diff_spend_micros"] == 2000 and report["late_deliveries"] == 2
    fixes = diff.corrections(found, "test", 99)
    assert [(f["ad_id"], f["clicks"], f["version"], f["tier"]) for f in fixes] == [
        ("a", 7, 2, "reconciled"), ("a", 3, 2, "reconciled"), ("z", 0, 2, "reconciled"), ("c", 1, 2, "reconciled")]
    # Published: the online table now shows the corrections; a second pass finds nothing.
    after = {**online, **keyed(*fixes)}
    assert diff.mismatches(after, batch, late) == []  # z's zero row matches its absence from the batch
    # A correction of a correction goes one version higher.
    assert diff.corrections(diff.mismatches(keyed(row(0, "a", 7, version=2)), keyed(row(0, "a", 8)), {}),
                            "test", 1)[0]["version"] == 3


def test_summary_counts_both_sides_and_reasons():
    online, batch = keyed(row(0, "a", 5)), keyed(row(0, "a", 7), row(0, "b", 1))
    found = diff.mismatches(online, batch, {(0, "a"): 1})
    s = diff.summary(online, batch, found)
    assert s["mismatched_keys"] == 2 and s["mismatches_by_reason"] == {"late_events": 1, "unexplained": 1}
    assert s["online_totals"]["clicks"] == 5 and s["batch_totals"]["clicks"] == 8
    # Changed: |7 - 5| + |1 - 0| clicks; the totals' difference would hide changes that cancel out.
    assert s["changed"]["clicks"] == 3 and s["changed"]["impressions"] == 0
    cancel = diff.mismatches(keyed(row(0, "a", 5), row(0, "b", 1)), keyed(row(0, "a", 4), row(0, "b", 2)), {})
    assert diff.changed(cancel)["clicks"] == 2


def test_history_records_each_grain_and_measure_with_the_pass_and_its_cost():
    """One record per grain and measure: served against billed from the summary, what is left from
    the re-read, the pass's cost repeated on each, its columns those of the Pinot table."""
    from reconcile import history

    online, batch = keyed(row(0, "a", 5)), keyed(row(0, "a", 7), row(0, "b", 1))
    found = diff.mismatches(online, batch, {})
    figures = {**diff.summary(online, batch, found), "published_corrections": 2}
    summary = {"from_ms": 0, "to_ms": 3_600_000, **figures, "hour": figures, "day": figures, "report": "r/x"}
    residual = {g: dict.fromkeys(MEASURES, 0) for g in ("minute", "hour", "day")}
    residual["hour"]["clicks"] = 1
    cost = {"backfill_seconds": 12.5, "cpu_seconds": 20.0, "rows_read": 9,
            **history.archive_cost([{"files": [{"bytes": 100}, {"bytes": 50}]}, {"files": [{"bytes": 7}]}])}
    rows = history.records(summary, residual, cost, run_at_ms=42, pipeline_version="v")
    assert len(rows) == 3 * len(MEASURES) and all(set(r) == set(history.COLUMNS) for r in rows)
    clicks = {r["grain"]: r for r in rows if r["measure"] == "clicks"}
    assert (clicks["minute"]["served"], clicks["minute"]["billed"], clicks["minute"]["served_diff"]) == (5, 8, 3)
    assert (clicks["minute"]["changed"], clicks["minute"]["changed_windows"], clicks["minute"]["residual"]) == (3, 2, 0)
    assert clicks["hour"]["residual"] == 1
    assert (clicks["day"]["archive_bytes"], clicks["day"]["archive_files"], clicks["day"]["data_days"]) == (157, 3, 1 / 24)
    assert {r["run_at_ms"] for r in rows} == {42} and {r["cpu_seconds"] for r in rows} == {20.0}


def test_session_cpu_counts_a_job_and_its_children():
    """SessionCpu sums user + system time of every process of a session, children included, and
    none outside it."""
    import subprocess
    import sys
    import time

    from reconcile.backfill import SessionCpu

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\ntime.sleep(0.5)"
    script = f"import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', {burn!r}]); exec({burn!r}); c.wait()"
    job = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    cpu = SessionCpu(job.pid)
    while job.poll() is None:
        cpu.sample()
        time.sleep(0.05)
    assert len(cpu.seen) >= 2 and 0.8 <= cpu.seconds < 5, cpu.seen
    assert SessionCpu(-1).seconds == 0


def test_billing_report_sums_per_level_and_is_byte_identical(tmp_path):
    rows = [row(0, "a", 5), row(60_000, "a", 1, country="DE"), row(0, "b", 2, spend=777)]
    assert billing.totals(rows, "campaign") == [
        {"advertiser_id": "adv-1", "campaign_id": "c-a", "billable_impressions": 0, "billable_clicks": 6,
         "billable_conversions": 0, "spend_micros": 6000},
        {"advertiser_id": "adv-1", "campaign_id": "c-b", "billable_impressions": 0, "billable_clicks": 2,
         "billable_conversions": 0, "spend_micros": 777}]
    manifests = [{"partition": "dt=2026-11-28/hr=10", "sha256": "ab"}]
    first = billing.write("2026-11-28", rows, manifests, tmp_path / "one", "pinot")
    second = billing.write("2026-11-28", list(reversed(rows)), manifests, tmp_path / "two", "pinot")
    assert first == second
    for name in first["files"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert (tmp_path / "one" / "billing_2026-11-28_advertiser.csv").read_text() == (
        "date,advertiser_id,billable_impressions,billable_clicks,billable_conversions,spend_micros\n"
        "2026-11-28,adv-1,0,8,0,6777\n")
    table = pq.read_table(io.BytesIO((tmp_path / "one" / "billing_2026-11-28_campaign.parquet").read_bytes()))
    assert table.column("spend_micros").to_pylist() == [6000, 777]
    other = billing.write("2026-11-28", rows, [{"partition": "dt=2026-11-28/hr=10", "sha256": "cd"}],
                          tmp_path / "three", "pinot")
    assert other["digest"] != first["digest"]  # other archive inputs, other digest


def test_scheduled_passes_reconcile_new_or_changed_hours_and_bill_days_that_are_over():
    from archive.manifest import Partition
    from reconcile.schedule import closed_days, due_ranges

    hours = [Partition("2026-11-28", h) for h in ("09", "10", "11", "13", "23")] + [Partition("2026-11-29", "00")]
    manifests = [{"partition": p.name, "sha256": f"s-{p.name}"} for p in hours]
    reconciled = {"dt=2026-11-28/hr=10": "s-dt=2026-11-28/hr=10",       # up to date: skipped
                  "dt=2026-11-28/hr=11": "an older manifest"}           # a late file since: again
    ranges = due_ranges(hours, manifests, reconciled)
    h = hours[0].start_ms
    assert ranges == [(h, h + 3_600_000), (h + 2 * 3_600_000, h + 3 * 3_600_000),
                      (h + 4 * 3_600_000, h + 5 * 3_600_000), (h + 14 * 3_600_000, h + 16 * 3_600_000)]
    assert closed_days(hours) == ["2026-11-28"]  # the 29th is still going


def test_roll_up_sums_minutes_into_hours_and_days_and_counts_late_events_per_window():
    H = 3_600_000
    minutes = [row(0, "a", 1), row(60_000, "a", 2), row(H, "a", 4), row(0, "b", 8), row(0, "a", 16, country="DE")]
    hours = diff.roll_up(minutes, H)
    assert {key: r["clicks"] for key, r in hours.items()} == {
        k(0, "a"): 3, k(H, "a"): 4, k(0, "b"): 8, k(0, "a", "DE"): 16}
    assert hours[k(0, "a")]["window_end_ms"] == H and hours[k(0, "b")]["campaign_id"] == "c-b"
    assert diff.roll_up(hours.values(), 86_400_000) == diff.roll_up(minutes, 86_400_000)  # hours cascade into days
    assert diff.late_per_window({(60_000, "a"): 1, (H + 60_000, "a"): 2, (0, "b"): 5}, H) == {
        (0, "a"): 1, (H, "a"): 2, (0, "b"): 5}


def test_an_ad_with_two_campaigns_in_a_window_keeps_both_rows():
    """Issue 20, defect 3: the rows of one ad under two campaigns are two keys in every grain, so
    a correction of one does not replace the other, and billing counts both campaigns."""
    H = 3_600_000
    minutes = [row(0, "a", 1), row(0, "a", 2, campaign="c-other"), row(60_000, "a", 4, campaign="c-other")]
    assert len(keyed(*minutes)) == 3
    hours = diff.roll_up(minutes, H)
    assert {key: r["clicks"] for key, r in hours.items()} == {k(0, "a"): 1, k(0, "a", campaign="c-other"): 6}
    online = keyed(*minutes)
    batch = keyed(row(0, "a", 1), row(0, "a", 5, campaign="c-other"), row(60_000, "a", 4, campaign="c-other"))
    [found] = diff.mismatches(online, batch, {})
    assert found.key == k(0, "a", campaign="c-other")
    [fix] = diff.corrections([found], "test", 1)
    assert (fix["campaign_id"], fix["clicks"]) == ("c-other", 5)
    assert [r["campaign_id"] for r in billing.totals(minutes, "campaign")] == ["c-a", "c-other"]


class TablesInPinot:
    """The statements reconcile.run sends to the final tables, over rows in memory."""

    def __init__(self, tables):
        self.tables = tables

    def __call__(self, sql, bound):
        import re

        rows = self.tables.get(re.search(r" FROM (\w+)", sql)[1], [])
        return [r for r in rows if bound["lo"] <= r["window_start_ms"] < bound["hi"]]


def test_a_day_row_is_recomputed_only_when_every_other_hour_of_the_day_is_reconciled(tmp_path):
    import json

    from adagg.env import load, override
    from reconcile import run as reconciliation

    H, D = 3_600_000, 86_400_000
    env = override(load("local"), {"archive.path": str(tmp_path)})
    for hour in (0, 1, 2):  # three hours with data, each sealed
        (tmp_path / f"dt=1970-01-01/hr=0{hour}").mkdir(parents=True)
        (tmp_path / f"dt=1970-01-01/hr=0{hour}/_MANIFEST.json").write_text(json.dumps({"sha256": f"m{hour}"}))
    ledger = tmp_path / reconciliation.LEDGER
    ledger.write_text(json.dumps({"archive_manifests": [{"partition": "dt=1970-01-01/hr=00", "sha256": "m0"}]}) + "\n")
    pinot = TablesInPinot({
        "ad_hour": [row(0, "a", 10), row(H, "a", 1), row(2 * H, "a", 100)],  # hour 1 online misses late clicks
        "ad_minute": [row(H, "a", 1)],
        "ad_day": [row(0, "a", 111)]})
    minutes = {k(H, "a"): row(H, "a", 3)}  # the backfill of hour 1
    batch, online, days = reconciliation._recomputed(env, pinot, H, 2 * H, minutes)
    assert days == [] and batch["day"] == {}  # hour 2 is not reconciled yet: the day cannot be summed
    assert batch["hour"][k(H, "a")]["clicks"] == 3 and online["hour"][k(H, "a")]["clicks"] == 1
    with ledger.open("a") as f:
        f.write(json.dumps({"archive_manifests": [{"partition": "dt=1970-01-01/hr=02", "sha256": "m2"}]}) + "\n")
    batch, online, days = reconciliation._recomputed(env, pinot, H, 2 * H, minutes)
    assert days == [0] and batch["day"][k(0, "a")]["clicks"] == 10 + 3 + 100
    assert online["day"][k(0, "a")]["clicks"] == 111
    assert batch["day"][k(0, "a")]["window_end_ms"] == D
    pinot.tables["ad_day"] = []  # the streaming job has not closed the day: no day row to compare
    assert reconciliation._recomputed(env, pinot, H, 2 * H, minutes)[2] == []
