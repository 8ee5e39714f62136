"""Lineage of one aggregate row (`adagg lineage`, GET /v1/lineage/{table}): where its numbers come
from and what happened to them.

- the row as Pinot serves it: its tier, version, pipeline and SQL version, and when it was computed;
- the raw archive's hour partitions its window covers, with each manifest's checksum, rows and
  Kafka offsets (or that the hour is not sealed yet: a live or just-closed window);
- the reconcile passes whose range held the window: whether one changed the row, from what to what
  (their mismatch reports), and the manifest checksums that pass recomputed from.

Pure file and query logic: `run(sql, params)` is any Pinot runner, `sources` the folders.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from adagg.paths import PINOT_DIR
from adagg.pinot import schema_columns
from archive.manifest import partitions_between, read_manifest
from reconcile.backfill import archive_dir, iso, reports_dir
# The tables reconciliation corrects, and the mismatch report of each (reconcile/run.py).
RECONCILED = {"ad_minute": "mismatches.csv", "ad_hour": "mismatches_hour.csv", "ad_day": "mismatches_day.csv"}
_INTEGER_TYPES = {"INT", "LONG"}


class NotFound(LookupError):
    """No such table (with lineage), or no row under that key."""


@dataclass(frozen=True)
class Sources:
    archive: Path  # the raw archive's root (archive.path)
    reports: Path  # where reconcile writes its reports (archive.reports)


def sources_of(env) -> Sources:
    return Sources(archive_dir(env), reports_dir(env))


@cache
def key_columns(table: str) -> tuple[tuple[str, str], ...]:
    """(column, Pinot type) of a windowed table's primary key, from its schema; NotFound for a
    table without one (the event tables: their rows have no window)."""
    path = PINOT_DIR / table / f"{table}_schema.json"
    if "/" in table or not path.exists():
        raise NotFound(f"no table {table!r}")
    schema = json.loads(path.read_text())
    keys = schema.get("primaryKeyColumns")
    if not keys or "window_start_ms" not in keys:
        raise NotFound(f"{table} has no windowed rows to trace (lineage covers the aggregate tables)")
    types = schema_columns(schema)
    return tuple((k, types[k]) for k in keys)


def parse_key(table: str, values: list[str]) -> dict:
    """The primary key of `table` from its values in key order (strings, as typed on a command line)."""
    columns = key_columns(table)
    if len(values) != len(columns):
        raise ValueError(f"{table}'s key is {', '.join(c for c, _ in columns)}: {len(columns)} values, "
                         f"got {len(values)}")
    key = {}
    for (column, kind), value in zip(columns, values):
        try:
            key[column] = int(value) if kind in _INTEGER_TYPES else value
        except ValueError:
            raise ValueError(f"{column} must be an integer, got {value!r}") from None
    return key


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


def _archive(root: Path, lo: int, hi: int) -> list[dict]:
    out = []
    for partition in partitions_between(lo, hi):
        directory = root / partition.name
        manifest = read_manifest(directory) if directory.exists() else None
        if manifest is not None:
            out.append({"partition": partition.name, "sealed": True, "sha256": manifest["sha256"],
                        "revision": manifest["revision"], "rows": manifest["rows"], "files": len(manifest["files"]),
                        "kafka_offsets": manifest["kafka_offsets"], "sealed_at": manifest["sealed_at"]})
        else:
            out.append({"partition": partition.name, "sealed": False,
                        "note": "not sealed: no data archived, or the watermark has not closed the hour yet"
                        if not directory.exists() else "not sealed yet"})
    return out


def _passes(reports: Path, table: str, key: dict, measures: list[str]) -> list[dict]:
    """The reconcile passes whose range held the window, oldest first, with the key's line of the
    mismatch report if the pass changed the row."""
    out = []
    start = key["window_start_ms"]
    for summary_path in sorted((reports / "reconcile").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if not summary["from_ms"] <= start < summary["to_ms"]:
            continue
        change = None
        report = summary_path.parent / RECONCILED[table]
        if report.exists():
            with report.open(newline="") as f:
                for line in csv.DictReader(f):
                    if all(line[c] == str(v) for c, v in key.items()):
                        change = {"from": {m: int(line[f"online_{m}"]) for m in measures},
                                  "to": {m: int(line[f"batch_{m}"]) for m in measures},
                                  "reason": line["reason"], "late_deliveries": int(line["late_deliveries"])}
        out.append({"report": str(summary_path.parent), "from": _iso(summary["from_ms"]), "to": _iso(summary["to_ms"]),
                    "at": _iso(summary.get("run_at_ms")), "changed": change is not None, "change": change,
                    "archive_manifests": summary["archive_manifests"]})
    return out


def lineage(run, table: str, key: dict, sources: Sources) -> dict:
    """Everything above for the row of `table` under `key` (every primary key column)."""
    columns = [c for c, _ in key_columns(table)]
    if set(key) != set(columns):
        raise ValueError(f"{table}'s key is {', '.join(columns)}")
    where = " AND ".join(f"{c} = %({c})s" for c in columns)
    rows = run(f"SELECT * FROM {table} WHERE {where} LIMIT 2", dict(key))
    if not rows:
        raise NotFound(f"{table} has no row {key}")
    row = rows[0]
    version = str(row.get("pipeline_version", ""))
    measures = [c for c, v in row.items() if c not in columns and isinstance(v, int) and not c.endswith("_ms")
                and c != "version"]
    start, end = int(row["window_start_ms"]), int(row["window_end_ms"])
    out = {"table": table, "key": key, "tier": row.get("tier"), "version": row.get("version"),
           "pipeline_version": version, "sql_version": version.partition("+sql.")[2] or None,
           "computed_at": _iso(row.get("computed_at_ms")), "window": {"from": _iso(start), "to": _iso(end)},
           "values": {m: row[m] for m in sorted(measures)}, "archive": _archive(sources.archive, start, end)}
    if table in RECONCILED:
        passes = _passes(sources.reports, table, key, sorted(measures))
        out["reconciliation"] = {"changed": any(p["changed"] for p in passes), "passes": passes}
    else:
        out["reconciliation"] = {"changed": False, "passes": [],
                                 "note": f"reconciliation corrects {', '.join(RECONCILED)} only"}
    return out


def format_lineage(answer: dict) -> str:
    """The lineage as a person reads it."""
    key = ", ".join(f"{c}={v}" for c, v in answer["key"].items())
    lines = [f"{answer['table']} [{key}]",
             f"  window      {answer['window']['from']} .. {answer['window']['to']}",
             f"  tier        {answer['tier']} (version {answer['version']})",
             f"  pipeline    {answer['pipeline_version']} (SQL {answer['sql_version']})",
             f"  computed at {answer['computed_at']}",
             "  values      " + ", ".join(f"{m}={v}" for m, v in answer["values"].items()),
             "  archive"]
    for p in answer["archive"]:
        what = (f"sha256 {p['sha256'][:16]}… rev {p['revision']}, {p['rows']:,} rows in {p['files']} files, "
                f"sealed {p['sealed_at']}") if p["sealed"] else p["note"]
        lines.append(f"    {p['partition']}  {what}")
    rec = answer["reconciliation"]
    note = f" ({rec['note']})" if "note" in rec else ""
    lines.append(f"  reconciled  {'changed' if rec['changed'] else 'unchanged'}{note}")
    for p in rec["passes"]:
        what = "no change"
        if p["changed"]:
            diffs = [f"{m} {p['change']['from'][m]} -> {p['change']['to'][m]}" for m in p["change"]["from"]
                     if p["change"]["from"][m] != p["change"]["to"][m]]
            what = f"{p['change']['reason']}: " + ", ".join(diffs)
        lines.append(f"    pass {p['from']} .. {p['to']} at {p['at']}: {what}")
    return "\n".join(lines)
