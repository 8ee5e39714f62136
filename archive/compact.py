"""Compaction at sealing: the files Flink committed to an hour become one file before a manifest
lists them.

Flink's filesystem sink commits a file per writer and checkpoint, so an hour of archive is
hundreds of small Parquet files (every 10 s, per subtask). Sealing merges the files no manifest
lists yet into one `compacted-*.parquet` (row groups copied as they are, so memory stays at one
row group) and deletes them; files already listed are never rewritten. An hour is thus one file
per sealing that found new files: one, plus one per sealing after late arrivals.

Safe against Flink: only committed (visible) files are merged, and a partition is committed
(_SUCCESS) only after its files were; a restore that re-commits a file Flink committed before
finds its target gone and leaves it gone (LocalCommitter.commitAfterRecovery does nothing when
neither the temp file nor the target exists).

Safe against a crash of sealing itself: the merged file is written hidden and renamed into place
whole, and names its sources in its Parquet metadata. A crash after the rename leaves merged file
and sources side by side; the next sealing finishes it (deletes the sources the merged file
holds) before it lists anything, so no row is ever listed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

PREFIX = "compacted-"
SOURCES = b"adagg.compacted_from"  # Parquet key-value metadata: the names of the files merged


def sources_of(path: Path) -> list[str]:
    """The files a compacted file was merged from ([] for a file Flink wrote)."""
    if not path.name.startswith(PREFIX):
        return []
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    return json.loads(meta.get(SOURCES, b"[]"))


def finish(directory: Path, fresh: list[Path]) -> list[Path]:
    """Complete compactions a crash interrupted: delete the sources still beside the compacted
    file holding them. Returns `fresh` without them. Leftover hidden temp files go too."""
    for stale in directory.glob(f".{PREFIX}*"):
        stale.unlink()
    merged = {name for path in fresh for name in sources_of(path)}
    for path in fresh:
        if path.name in merged:
            path.unlink()
    return [p for p in fresh if p.name not in merged]


def _offsets(paths: list[Path]):
    """Every (Kafka partition, offset) the files hold, sorted: what identifies their rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["kafka_partition", "kafka_offset"]
    table = pa.concat_tables([pq.read_table(p, columns=columns) for p in paths])
    return table.sort_by([(c, "ascending") for c in columns])


def compact(directory: Path, files: list[Path], revision: int) -> Path:
    """Merge `files` (at least two, one schema) into one file and delete them; returns it. The
    merged file must hold exactly the sources' (Kafka partition, offset) pairs, or nothing is
    deleted."""
    import pyarrow.parquet as pq

    names = sorted(p.name for p in files)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    target = directory / f"{PREFIX}r{revision:03d}-{digest}.parquet"
    tmp = directory / f".{target.name}.tmp"
    first = pq.read_schema(files[0])
    for path in files:  # (one file open at a time: an hour can be more files than the open-file limit)
        if not pq.read_schema(path).equals(first, check_metadata=False):
            raise ValueError(f"{path}: its schema differs from {files[0].name}'s; nothing compacted")
    head = pq.read_metadata(files[0])
    codec = head.row_group(0).column(0).compression if head.num_row_groups else "SNAPPY"
    codec = "NONE" if codec == "UNCOMPRESSED" else codec
    schema = first.with_metadata({**(first.metadata or {}), SOURCES: json.dumps(names).encode()})
    try:
        with pq.ParquetWriter(tmp, schema, compression=codec) as writer:
            for path in files:
                with pq.ParquetFile(path) as source:
                    for i in range(source.metadata.num_row_groups):
                        writer.write_table(source.read_row_group(i).replace_schema_metadata(schema.metadata))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        if not _offsets([tmp]).equals(_offsets(files)):
            raise ValueError(f"{directory}: the compacted file does not hold its sources' rows; nothing compacted")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    for path in files:
        path.unlink()
    return target
