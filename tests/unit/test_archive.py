"""Archive manifests: sealing a committed partition, extending it with late files, and every way
the files on disk can stop matching (missing, changed, unlisted, unsealed, deleted partition)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive.manifest import (LEDGER, MANIFEST, SUCCESS, ArchiveError, Partition, partitions_between, seal,
                              seal_all, verify)

HOUR = Partition("2026-11-28", "10")


def write_part(root, partition: Partition, name: str, offsets: list[tuple[int, int]]):
    directory = root / partition.name
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({"event_id": [f"e{p}-{o}" for p, o in offsets],
                      "kafka_partition": pa.array([p for p, _ in offsets], pa.int32()),
                      "kafka_offset": pa.array([o for _, o in offsets], pa.int64())})
    pq.write_table(table, directory / name)
    return directory


def test_partitions_cover_a_range_by_utc_hour():
    assert HOUR.start_ms == 1795860000000 and Partition.of(HOUR.start_ms + 3_599_999) == HOUR
    names = [p.name for p in partitions_between(HOUR.start_ms + 1, HOUR.start_ms + 2 * 3_600_000 + 1)]
    assert names == ["dt=2026-11-28/hr=10", "dt=2026-11-28/hr=11", "dt=2026-11-28/hr=12"]


def test_a_committed_partition_is_sealed_with_rows_offsets_and_checksums(tmp_path):
    directory = write_part(tmp_path, HOUR, "part-a-0.parquet", [(0, 5), (0, 6), (1, 9)])
    write_part(tmp_path, HOUR, ".part-b-1.parquet.inprogress", [(2, 1)])  # Flink's in-progress: hidden
    assert seal(directory) is None and not (directory / MANIFEST).exists()  # not committed yet
    (directory / SUCCESS).touch()
    manifest = seal(directory)
    assert manifest["rows"] == 3 and manifest["revision"] == 1 and [f["name"] for f in manifest["files"]] == [
        "part-a-0.parquet"]
    assert manifest["kafka_offsets"] == {"0": {"min": 5, "max": 6, "rows": 2}, "1": {"min": 9, "max": 9, "rows": 1}}
    assert json.loads((directory / MANIFEST).read_text()) == manifest
    assert seal(directory) == manifest  # nothing new: unchanged
    assert verify(tmp_path, [HOUR]) == [manifest]


def test_a_late_file_extends_the_manifest_after_the_listed_files_check_out(tmp_path):
    directory = write_part(tmp_path, HOUR, "part-a-0.parquet", [(0, 5)])
    (directory / SUCCESS).touch()
    seal(directory)
    write_part(tmp_path, HOUR, "part-a-1.parquet", [(0, 40)])
    with pytest.raises(ArchiveError, match="files not in _MANIFEST.json: part-a-1.parquet"):
        verify(tmp_path, [HOUR])
    assert [m["revision"] for m in seal_all(tmp_path, say=lambda _: None)] == [2]
    manifest = verify(tmp_path, [HOUR])[0]
    assert manifest["rows"] == 2 and manifest["kafka_offsets"]["0"] == {"min": 5, "max": 40, "rows": 2}
    assert len((tmp_path / LEDGER).read_text().splitlines()) == 2


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "part-a-0.parquet").unlink(), "listed in _MANIFEST.json but missing"),
    (lambda d: (d / "part-a-0.parquet").write_bytes(b"PAR1 garbage"), "does not match its checksum"),
    (lambda d: (d / MANIFEST).unlink(), "sealed, but its _MANIFEST.json is missing"),
    (lambda d: [p.unlink() for p in d.iterdir()] and d.rmdir(), r"sealed \(1 rows\) but missing"),
])
def test_missing_or_corrupted_files_are_reported_never_resealed(tmp_path, damage, message):
    directory = write_part(tmp_path, HOUR, "part-a-0.parquet", [(0, 5)])
    (directory / SUCCESS).touch()
    seal(directory)
    damage(directory)
    with pytest.raises(ArchiveError, match=message):
        verify(tmp_path, [HOUR])
    if directory.exists() and (directory / MANIFEST).exists():
        write_part(tmp_path, HOUR, "part-a-1.parquet", [(5, 9)])  # a late file
        with pytest.raises(ArchiveError):
            seal(directory)  # a damaged partition is not extended over its damage


def test_an_unsealed_partition_is_refused_and_an_absent_hour_is_empty(tmp_path):
    write_part(tmp_path, HOUR, "part-a-0.parquet", [(0, 5)])
    with pytest.raises(ArchiveError, match="still open"):
        verify(tmp_path, [HOUR])
    (tmp_path / HOUR.name / SUCCESS).touch()
    with pytest.raises(ArchiveError, match="not sealed"):
        verify(tmp_path, [HOUR])
    assert verify(tmp_path, [Partition("2026-11-28", "11")]) == []
