"""Manifests of the raw archive: what a closed partition holds, and the check that it still does.

The streaming job writes every raw delivery to `<archive>/dt=YYYY-MM-DD/hr=HH/part-*.parquet`
(exactly once, committed with its checkpoints) and marks a partition `_SUCCESS` once the
watermark has passed it (sql/sinks/snk_raw_archive.sql). Sealing then writes `_MANIFEST.json`:
per file its rows, bytes and SHA-256; per Kafka partition the offset range and rows; and one
checksum over all of it. Before listing them, sealing merges the new files into one
(archive/compact.py): an hour is a handful of files, not one per checkpoint and writer. Listed files
are never rewritten. A late event can still add a file to a closed partition: sealing again merges
and lists it (revision + 1), but only after every file already listed checks out, so a sealed file
that went missing or changed is reported, never sealed over.

Every reader (backfill, billing report) verifies first: a missing, changed or unlisted file, or a
partition not sealed yet, is an ArchiveError naming the file, never silently recomputed.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from archive import compact

MANIFEST = "_MANIFEST.json"
LEDGER = "_SEALED.jsonl"  # at the archive root: one line per sealing, so a deleted partition is noticed
SUCCESS = "_SUCCESS"
HOUR_MS = 3_600_000


class ArchiveError(RuntimeError):
    """The archive does not hold what its manifests say (or a partition is not sealed yet)."""


@dataclass(frozen=True)
class Partition:
    dt: str  # YYYY-MM-DD (UTC)
    hr: str  # HH

    @property
    def name(self) -> str:
        return f"dt={self.dt}/hr={self.hr}"

    @property
    def start_ms(self) -> int:
        return calendar.timegm(time.strptime(f"{self.dt} {self.hr}", "%Y-%m-%d %H")) * 1000

    @classmethod
    def of(cls, ms: int) -> Partition:
        t = time.gmtime(ms // 1000)
        return cls(time.strftime("%Y-%m-%d", t), time.strftime("%H", t))


def partitions_between(lo_ms: int, hi_ms: int) -> list[Partition]:
    """The hour partitions overlapping [lo_ms, hi_ms)."""
    start = lo_ms - lo_ms % HOUR_MS
    return [Partition.of(ms) for ms in range(start, hi_ms, HOUR_MS)]


def data_files(directory: Path) -> list[Path]:
    """The committed data files of a partition: Flink keeps in-progress files hidden ('.'), and
    markers start with '_'."""
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: Path) -> dict:
    """A data file's entry: rows, bytes, SHA-256 and the Kafka offsets it holds."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["kafka_partition", "kafka_offset"])
    offsets = {}
    for p in sorted(set(table.column("kafka_partition").to_pylist())):
        chosen = table.filter(pc.equal(table.column("kafka_partition"), p)).column("kafka_offset")
        offsets[str(p)] = {"min": pc.min(chosen).as_py(), "max": pc.max(chosen).as_py(), "rows": len(chosen)}
    entry = {"name": path.name, "rows": table.num_rows, "bytes": path.stat().st_size, "sha256": _sha256(path),
             "kafka_offsets": offsets}
    merged = compact.sources_of(path)
    return {**entry, "compacted_from": merged} if merged else entry


def _checksum(files: list[dict]) -> str:
    """One checksum over the listed files (names, rows and contents), in name order."""
    lines = "".join(f"{f['name']} {f['rows']} {f['sha256']}\n" for f in sorted(files, key=lambda f: f["name"]))
    return hashlib.sha256(lines.encode()).hexdigest()


def _offset_ranges(files: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for f in files:
        for p, r in f["kafka_offsets"].items():
            into = out.setdefault(p, {"min": r["min"], "max": r["max"], "rows": 0})
            into["min"], into["max"] = min(into["min"], r["min"]), max(into["max"], r["max"])
            into["rows"] += r["rows"]
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def read_manifest(directory: Path) -> dict | None:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _check_listed(directory: Path, manifest: dict) -> None:
    for entry in manifest["files"]:
        path = directory / entry["name"]
        if not path.exists():
            raise ArchiveError(f"{directory}: {entry['name']} is listed in {MANIFEST} but missing")
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            raise ArchiveError(f"{directory}: {entry['name']} does not match its checksum in {MANIFEST} "
                               f"(corrupted or rewritten)")
    if _checksum(manifest["files"]) != manifest["sha256"]:
        raise ArchiveError(f"{directory}: {MANIFEST} itself is inconsistent (its checksum does not match its files)")


def seal(directory: Path) -> dict | None:
    """Write (or extend) the manifest of a partition Flink has committed; None if it has not.
    Returns the manifest; unchanged when no new file appeared. New files are merged into one
    before they are listed. The files already listed are checked before a manifest
    is extended, never carried into a new revision unchecked; an unchanged manifest is left to
    verify, which every reader runs (so a pass hashes once)."""
    if not (directory / SUCCESS).exists():
        return None
    old = read_manifest(directory)
    listed = {f["name"] for f in old["files"]} if old else set()
    fresh = compact.finish(directory, [p for p in data_files(directory) if p.name not in listed])
    if old and not fresh:
        return old
    if old:
        _check_listed(directory, old)
    revision = (old["revision"] + 1) if old else 1
    if len(fresh) > 1:
        fresh = [compact.compact(directory, fresh, revision)]
    new = [_describe(p) for p in fresh]
    files = sorted((old["files"] if old else []) + new, key=lambda f: f["name"])
    dt, hr = directory.parent.name.removeprefix("dt="), directory.name.removeprefix("hr=")
    manifest = {"partition": f"dt={dt}/hr={hr}", "revision": revision,
                "rows": sum(f["rows"] for f in files), "files": files, "kafka_offsets": _offset_ranges(files),
                "sha256": _checksum(files), "sealed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sealed_by": socket.gethostname()}
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(directory / MANIFEST)  # atomic: a reader sees the old manifest or the new one
    with (directory.parent.parent / LEDGER).open("a") as ledger:
        ledger.write(json.dumps({"partition": manifest["partition"], "revision": manifest["revision"],
                                 "rows": manifest["rows"], "sha256": manifest["sha256"]}) + "\n")
    return manifest


def sealed(root: Path) -> dict[str, dict]:
    """Partition name -> the newest ledger line: every partition ever sealed under root."""
    path = root / LEDGER
    lines = path.read_text().splitlines() if path.exists() else []
    return {entry["partition"]: entry for entry in map(json.loads, lines)}


def seal_all(root: Path, say=print) -> list[dict]:
    """Seal every committed partition under root; returns the manifests written or extended."""
    written = []
    for directory in sorted(root.glob("dt=*/hr=*")):
        before = read_manifest(directory)
        manifest = seal(directory)
        if manifest and manifest != before:
            written.append(manifest)
            say(f"  sealed {manifest['partition']}: revision {manifest['revision']}, {manifest['rows']:,} rows, "
                f"{len(manifest['files'])} files")
    return written


def verify(root: Path, partitions: list[Partition]) -> list[dict]:
    """The manifests of `partitions`, each checked against the files on disk and the ledger. A
    partition never sealed and with no directory holds no events (nothing arrived that hour) and
    is skipped; one that was sealed but is gone, exists but is not sealed, or does not match its
    manifest raises ArchiveError."""
    out = []
    ledger = sealed(root)
    for partition in partitions:
        directory = root / partition.name
        if not directory.exists():
            if partition.name in ledger:
                raise ArchiveError(f"{directory}: sealed ({ledger[partition.name]['rows']:,} rows) but missing")
            continue
        manifest = read_manifest(directory)
        if manifest is None and partition.name in ledger:
            raise ArchiveError(f"{directory}: sealed, but its {MANIFEST} is missing")
        if manifest is None:
            state = "committed, not sealed (run `adagg archive seal`)" if (directory / SUCCESS).exists() \
                else "still open (the watermark has not passed it)"
            raise ArchiveError(f"{directory}: no {MANIFEST}: the partition is {state}")
        _check_listed(directory, manifest)
        if partition.name in ledger and ledger[partition.name]["sha256"] != manifest["sha256"]:
            raise ArchiveError(f"{directory}: {MANIFEST} is not the one sealed last (see {LEDGER})")
        unlisted = sorted({p.name for p in data_files(directory)} - {f["name"] for f in manifest["files"]})
        if unlisted:
            raise ArchiveError(f"{directory}: files not in {MANIFEST}: {', '.join(unlisted)} "
                               f"(late arrivals: run `adagg archive seal`; otherwise foreign files)")
        out.append(manifest)
    return out
