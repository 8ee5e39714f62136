"""Archive manifests: sealing a committed partition, extending it with late files, and every way
the files on disk can stop matching (missing, changed, unlisted, unsealed, deleted partition);
compaction at sealing, including a sealing that crashed halfway."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive import compact
from archive.manifest import (LEDGER, MANIFEST, SUCCESS, ArchiveError, Partition, data_files, partitions_between,
                              seal, seal_all, verify)

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


def _rows(paths) -> list[dict]:
    return sorted((r for p in paths for r in pq.read_table(p).to_pylist()),
                  key=lambda r: (r["kafka_partition"], r["kafka_offset"]))


def _parts(root, count: int, start: int = 0) -> list:
    """`count` committed files of HOUR like Flink's (one per checkpoint), 2 rows each, with unicode ids."""
    for i in range(start, start + count):
        write_part(root, HOUR, f"part-ü|{i}-0.parquet", [(i % 3, 2 * i), (i % 3, 2 * i + 1)])
    return data_files(root / HOUR.name)


def test_sealing_merges_the_committed_files_into_one_that_holds_every_row(tmp_path):
    parts = _parts(tmp_path, 12)
    before = _rows(parts)
    directory = tmp_path / HOUR.name
    write_part(tmp_path, HOUR, ".part-z-1.parquet.inprogress", [(2, 99)])  # Flink's in-progress: untouched
    (directory / SUCCESS).touch()
    manifest = seal(directory)
    [entry] = manifest["files"]
    assert entry["name"].startswith("compacted-r001-") and entry["rows"] == 24 == manifest["rows"]
    assert entry["compacted_from"] == sorted(p.name for p in parts)
    assert data_files(directory) == [directory / entry["name"]] and (directory / ".part-z-1.parquet.inprogress").exists()
    assert _rows(data_files(directory)) == before
    assert verify(tmp_path, [HOUR]) == [manifest]


def test_late_files_are_merged_into_a_new_file_and_the_sealed_one_is_never_rewritten(tmp_path):
    directory = tmp_path / HOUR.name
    before = _rows(_parts(tmp_path, 4))
    (directory / SUCCESS).touch()
    first = seal(directory)
    sealed_file = directory / first["files"][0]["name"]
    sealed_bytes = sealed_file.read_bytes()
    late = [p for p in _parts(tmp_path, 3, start=4) if not p.name.startswith("compacted-")]
    after = before + _rows(late)
    [second] = seal_all(tmp_path, say=lambda _: None)
    assert second["revision"] == 2 and [f["name"][:len("compacted-r00x")] for f in second["files"]] == [
        "compacted-r001", "compacted-r002"]
    assert sealed_file.read_bytes() == sealed_bytes
    assert _rows(data_files(directory)) == sorted(after, key=lambda r: (r["kafka_partition"], r["kafka_offset"]))
    assert verify(tmp_path, [HOUR])[0]["rows"] == 14


def test_a_sealing_that_crashed_mid_compaction_is_finished_without_listing_a_row_twice(tmp_path):
    directory = tmp_path / HOUR.name
    parts = _parts(tmp_path, 5)
    before = _rows(parts)
    saved = {p.name: p.read_bytes() for p in parts}
    (directory / SUCCESS).touch()
    merged = compact.compact(directory, parts, 1)
    for name, data in saved.items():  # the crash: renamed into place, sources not deleted yet
        (directory / name).write_bytes(data)
    (directory / ".compacted-r001-0123.parquet.tmp").write_bytes(b"torn")  # and an earlier one, torn before rename
    manifest = seal(directory)
    assert [f["name"] for f in manifest["files"]] == [merged.name] and manifest["rows"] == 10
    assert data_files(directory) == [merged] and not list(directory.glob(".compacted-*"))
    assert _rows([merged]) == before


def test_files_of_different_schemas_are_not_compacted_and_nothing_is_deleted(tmp_path):
    parts = _parts(tmp_path, 2)
    pq.write_table(pa.table({"event_id": ["x"], "kafka_partition": pa.array([0], pa.int64()),
                             "kafka_offset": pa.array([7], pa.int64())}), tmp_path / HOUR.name / "part-q-0.parquet")
    (tmp_path / HOUR.name / SUCCESS).touch()
    with pytest.raises(ValueError, match="schema differs"):
        seal(tmp_path / HOUR.name)
    assert len(data_files(tmp_path / HOUR.name)) == 3 and parts[0].exists()
    assert not (tmp_path / HOUR.name / MANIFEST).exists() and not list((tmp_path / HOUR.name).glob(".compacted-*"))
