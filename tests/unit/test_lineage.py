"""Lineage of one aggregate row (serving/lineage.py) over a fake Pinot row, an archive folder with
manifests and reconcile reports on disk: what it says, and the API's and CLI's forms of it."""

from __future__ import annotations

import csv
import json

import pytest
from starlette.testclient import TestClient

from reconcile.diff import KEY
from serving import lineage
from serving.api import create_app
from serving.lineage import NotFound, Sources
from serving.queries import MEASURES

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
AD = "ünï|广告"  # a key value with a separator and unicode
KEY_VALUES = [T0 + 60_000, AD, "US", "mobile", "camp-1", "adv-1", "retail"]


def pinot_row(clicks: int, version: int, tier: str) -> dict:
    return {**dict(zip(KEY, KEY_VALUES)), "window_end_ms": T0 + 120_000, **dict.fromkeys(MEASURES, 0),
            "clicks": clicks, "tier": tier, "version": version, "pipeline_version": "0.1.0+sql.abc123",
            "computed_at_ms": T0 + 200_000}


class OneRow:
    def __init__(self, row: dict | None):
        self.row, self.asked = row, []

    def __call__(self, sql: str, params: dict) -> list[dict]:
        self.asked.append((sql, params))
        match = self.row is not None and all(self.row[c] == v for c, v in params.items())
        return [self.row] if match else []


@pytest.fixture
def sources(tmp_path) -> Sources:
    archive, reports = tmp_path / "archive", tmp_path / "reports"
    sealed = archive / "dt=2026-01-01" / "hr=00"
    sealed.mkdir(parents=True)
    (sealed / "_MANIFEST.json").write_text(json.dumps({
        "partition": "dt=2026-01-01/hr=00", "revision": 2, "rows": 120, "files": [{"name": "part-0"}, {"name": "part-1"}],
        "kafka_offsets": {"0": {"first": 0, "last": 119, "rows": 120}}, "sha256": "f" * 64,
        "sealed_at": "2026-01-01T01:00:20Z"}))
    passes = [("changed", T0, T0 + HOUR, 9), ("elsewhere", T0 + HOUR, T0 + 2 * HOUR, 5)]
    for name, lo, hi, batch_clicks in passes:
        folder = reports / "reconcile" / name
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"from_ms": lo, "to_ms": hi, "run_at_ms": hi + 600_000,
                                                         "archive_manifests": [{"partition": "p", "sha256": "f" * 64}]}))
        with (folder / "mismatches.csv").open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([*KEY, *(f"{side}_{m}" for m in MEASURES for side in ("online", "batch")),
                             "late_deliveries", "reason"])
            values = {f"online_{m}": 0 for m in MEASURES} | {f"batch_{m}": 0 for m in MEASURES}
            values |= {"online_clicks": 7, "batch_clicks": batch_clicks}
            writer.writerow([*KEY_VALUES, *(values[f"{side}_{m}"] for m in MEASURES for side in ("online", "batch")),
                             2, "late_events"])
    return Sources(archive, reports)


def test_a_reconciled_row_names_its_versions_manifests_and_the_change(sources):
    key = lineage.parse_key("ad_minute", [str(v) for v in KEY_VALUES])
    assert key["window_start_ms"] == T0 + 60_000 and key["ad_id"] == AD
    run = OneRow(pinot_row(9, 2, "reconciled"))
    answer = lineage.lineage(run, "ad_minute", key, sources)
    assert run.asked[0][1] == key  # every key value bound, none pasted into the statement
    assert (answer["tier"], answer["version"], answer["sql_version"]) == ("reconciled", 2, "abc123")
    assert answer["computed_at"] == "2026-01-01T00:03:20Z" and answer["values"]["clicks"] == 9
    [hour] = answer["archive"]
    assert (hour["partition"], hour["sealed"], hour["sha256"], hour["rows"], hour["files"]) == (
        "dt=2026-01-01/hr=00", True, "f" * 64, 120, 2)
    rec = answer["reconciliation"]
    assert rec["changed"] and [p["changed"] for p in rec["passes"]] == [True]  # the other pass's range is later
    change = rec["passes"][0]["change"]
    assert (change["from"]["clicks"], change["to"]["clicks"], change["reason"]) == (7, 9, "late_events")
    text = lineage.format_lineage(answer)
    assert "clicks 7 -> 9" in text and "sha256 ffffffffffffffff" in text and AD in text


def test_a_live_row_of_an_unsealed_hour_and_a_table_reconciliation_does_not_correct(sources):
    key = dict(zip(KEY, KEY_VALUES)) | {"window_start_ms": T0 + 2 * HOUR}
    row = pinot_row(3, 0, "live") | {"window_start_ms": T0 + 2 * HOUR, "window_end_ms": T0 + 2 * HOUR + 60_000}
    answer = lineage.lineage(OneRow(row), "ad_minute_live", key, sources)
    assert [(p["partition"], p["sealed"]) for p in answer["archive"]] == [("dt=2026-01-01/hr=02", False)]
    assert answer["reconciliation"]["changed"] is False and "note" in answer["reconciliation"]


def test_unknown_tables_keys_and_rows_are_named(sources):
    with pytest.raises(NotFound, match="no table"):
        lineage.key_columns("../etc")
    with pytest.raises(NotFound, match="no windowed rows"):
        lineage.key_columns("events_enriched")
    with pytest.raises(ValueError, match="7 values, got 2"):
        lineage.parse_key("ad_minute", ["1", "ad"])
    with pytest.raises(ValueError, match="window_start_ms must be an integer"):
        lineage.parse_key("publisher_minute", ["yesterday", "pub-1"])
    with pytest.raises(NotFound, match="has no row"):
        lineage.lineage(OneRow(None), "publisher_minute", {"window_start_ms": 1, "publisher_id": "x"}, sources)


def test_the_api_answers_lineage_and_refuses_a_partial_key(sources):
    client = TestClient(create_app(run=OneRow(pinot_row(9, 2, "reconciled")), sources=sources))
    params = dict(zip(KEY, (str(v) for v in KEY_VALUES)))
    answer = client.get("/v1/lineage/ad_minute", params=params)
    assert answer.status_code == 200 and answer.json()["reconciliation"]["changed"] is True
    partial = client.get("/v1/lineage/ad_minute", params={"window_start_ms": str(T0)})
    assert partial.status_code == 400 and "key is window_start_ms, ad_id" in partial.json()["message"]
    assert client.get("/v1/lineage/no_such_table", params=params).status_code == 404
    assert client.get("/v1/lineage/ad_minute", params=params | {"ad_id": "other"}).status_code == 404
    without = TestClient(create_app(run=OneRow(None)))
    assert without.get("/v1/lineage/ad_minute", params=params).status_code == 404
