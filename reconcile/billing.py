"""The billing report of one UTC day: per advertiser and per campaign, billable impressions,
clicks, conversions and spend, as CSV and Parquet, with a digest.

Byte-identical by construction: rows sorted by key, integers only (money in micros), fixed
column order, no timestamps or hostnames in the files, Parquet written without pandas metadata
and with fixed writer options. The digest lists the SHA-256 of every file and of every archive
manifest the numbers were computed from, so anyone can recompute the day from raw data
(`--source archive`) and compare digests.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

BILLED = ("billable_impressions", "billable_clicks", "billable_conversions", "spend_micros")
LEVELS = {"advertiser": ("advertiser_id",), "campaign": ("advertiser_id", "campaign_id")}


def totals(rows: Iterable[Mapping], level: str) -> list[dict]:
    """Sum the billed measures of minute rows per advertiser (or advertiser + campaign), in key order."""
    keys = LEVELS[level]
    out: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(str(row[k]) for k in keys)
        into = out.setdefault(key, dict.fromkeys(BILLED, 0))
        for m in BILLED:
            into[m] += int(row[m])
    return [{**dict(zip(keys, key)), **values} for key, values in sorted(out.items())]


def _csv_bytes(date: str, rows: list[dict], columns: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("date", *columns))
    for row in rows:
        writer.writerow((date, *(row[c] for c in columns)))
    return buffer.getvalue().encode()


def _parquet_bytes(date: str, rows: list[dict], columns: tuple[str, ...]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field("date", pa.string(), nullable=False)] + [
        pa.field(c, pa.int64() if c in BILLED else pa.string(), nullable=False) for c in columns]
    table = pa.table({"date": [date] * len(rows), **{c: [r[c] for r in rows] for c in columns}},
                     schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False, write_statistics=True,
                   store_schema=False)
    return sink.getvalue().to_pybytes()


def write(date: str, rows: list[Mapping], manifests: list[dict], out_dir: Path, source: str) -> dict:
    """Write billing_<date>_{advertiser,campaign}.{csv,parquet} and billing_<date>.digest.json;
    returns the digest document. `manifests` are the archive manifests behind the numbers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for level, keys in LEVELS.items():
        grouped = totals(rows, level)
        columns = (*keys, *BILLED)
        for ext, render in (("csv", _csv_bytes), ("parquet", _parquet_bytes)):
            name = f"billing_{date}_{level}.{ext}"
            data = render(date, grouped, columns)
            (out_dir / name).write_bytes(data)
            files[name] = hashlib.sha256(data).hexdigest()
    inputs = sorted((m["partition"], m["sha256"]) for m in manifests)
    whole = hashlib.sha256(json.dumps({"files": files, "archive": inputs}, sort_keys=True).encode()).hexdigest()
    digest = {"date": date, "digest": whole, "files": files,
              "archive_manifests": [{"partition": p, "sha256": s} for p, s in inputs],
              "totals": {m: sum(int(r[m]) for r in rows) for m in BILLED}}
    # The source is where the numbers were read, not part of the digest: both sources must agree.
    (out_dir / f"billing_{date}.digest.json").write_text(json.dumps({**digest, "source": source}, indent=2) + "\n")
    return digest
