"""Writing part files, previews and schemas, and the whole ingest path from upload to preview."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from upstack.lake import SYSTEM_COLUMN, Lake, convert_file, read_preview, schema_of, write_table


def numbers(n: int) -> pa.Table:
    return pa.table({"n": pa.array(range(n), pa.int64()), "s": [f"v{i}" for i in range(n)]})


def test_write_table_splits_above_max_rows(tmp_path: Path) -> None:
    paths = write_table(numbers(25), tmp_path / "out", max_rows_per_file=10)
    assert [p.name for p in paths] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.read_metadata(p).num_rows for p in paths] == [10, 10, 5]
    assert pa.concat_tables(pq.read_table(p) for p in paths).column("n").to_pylist(maps_as_pydicts="strict") == list(range(25))
    column = pq.read_metadata(paths[0]).row_group(0).column(0)
    assert column.compression == "ZSTD"


def test_write_table_exact_multiple_and_prefix(tmp_path: Path) -> None:
    paths = write_table(numbers(20), tmp_path, max_rows_per_file=10, prefix="export")
    assert [p.name for p in paths] == ["export-00000.parquet", "export-00001.parquet"]
    assert write_table(numbers(3), tmp_path / "one", max_rows_per_file=10)[0].name == "part-00000.parquet"


def test_write_empty_table_keeps_the_schema(tmp_path: Path) -> None:
    paths = write_table(numbers(0), tmp_path, max_rows_per_file=10)
    assert len(paths) == 1
    assert pq.read_metadata(paths[0]).num_rows == 0
    assert schema_of(paths[0]).names == ["n", "s"]


def test_write_table_rejects_nonsense_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_table(numbers(1), tmp_path, max_rows_per_file=0)


def test_preview_is_json_safe_and_hides_the_system_column(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)] * 3, pa.timestamp("ms", tz="UTC")
            ),
            "day": pa.array([dt.date(2024, 1, 2)] * 3),
            "person": [{"name": {"firstName": "Jane"}}] * 3,
            "tags": [["a", "b"]] * 3,
            "attrs": pa.array([[("k", 1)]] * 3, pa.map_(pa.string(), pa.int64())),
            "raw": pa.array([b"\x00\x01"] * 3),
            "score": [float("nan"), 1.5, float("inf")],
            SYSTEM_COLUMN: [{"ingestTime": 1, "commitBatchId": "b", "rowNumber": 0}] * 3,
        }
    )
    paths = write_table(table, tmp_path, max_rows_per_file=2)
    rows = read_preview(paths)
    assert len(rows) == 3
    assert rows[0] == {
        "ts": "2024-01-02T03:04:05.123Z",
        "day": "2024-01-02",
        "person": {"name": {"firstName": "Jane"}},
        "tags": ["a", "b"],
        "attrs": {"k": 1},
        "raw": "AAE=",
        "score": None,
    }
    assert [r["score"] for r in rows] == [None, 1.5, None]
    json.dumps(rows, allow_nan=False)


def test_preview_limit_spans_files_and_stops_early(tmp_path: Path) -> None:
    first = write_table(numbers(150), tmp_path / "a", max_rows_per_file=40)
    second = write_table(numbers(10), tmp_path / "b", max_rows_per_file=40)
    assert [r["n"] for r in read_preview(first + second)] == list(range(100))
    assert [r["n"] for r in read_preview(first + second, limit=5)] == list(range(5))
    assert len(read_preview(first + second, limit=1000)) == 160
    assert read_preview([]) == []


def test_upload_convert_write_publish_preview(tmp_path: Path) -> None:
    """The ingest worker's path through the lake, end to end."""
    lake = Lake(tmp_path / "root")
    org, sandbox, dataset, batch = "ABC@AdobeOrg", "prod", "ds1", "batch1"
    good = {"identityMap": {"ECID": [{"id": "1"}]}, "person": {"name": {"firstName": "Jane"}}}
    lake.write_upload(
        org, sandbox, batch, dataset, "a.json", (json.dumps(good) + "\n{}\n").encode(), max_bytes=1000
    )
    lake.write_upload(
        org, sandbox, batch, dataset, "b.json", json.dumps([good, good]).encode(), max_bytes=1000
    )
    tables, failed, offset = [], [], 0
    for upload in lake.list_uploads(org, sandbox, batch):
        result = convert_file(
            upload.path,
            "json",
            upload.relpath == "b.json",
            "profile",
            batch_id=batch,
            ingest_time_ms=5,
            row_offset=offset,
            file_name=upload.relpath,
        )
        failed += result.failed
        if result.table is not None:
            tables.append(result.table)
            offset += result.table.num_rows
    assert [(e.file, e.row, e.code) for e in failed] == [("a.json", 1, "ROW-IDENTITYMAP-MISSING")]
    staging = lake.new_staging(batch)
    write_table(pa.concat_tables(tables), staging, max_rows_per_file=2)
    assert lake.published_files(org, sandbox, dataset, batch) == []
    published = lake.publish(staging, org, sandbox, dataset, batch, f"{batch}-1")
    assert [f.name for f in published] == ["part-00000.parquet", "part-00001.parquet"]
    files = lake.dataset_files(org, sandbox, dataset)
    rows = pa.concat_tables(pq.read_table(p) for p in files)
    assert [r["rowNumber"] for r in rows.column(SYSTEM_COLUMN).to_pylist(maps_as_pydicts="strict")] == [0, 1, 2]
    preview = read_preview(files)
    assert [r["person"]["name"]["firstName"] for r in preview] == ["Jane"] * 3
    assert all(SYSTEM_COLUMN not in r for r in preview)
