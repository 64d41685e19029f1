"""Data Access through HTTP (CONTRACT §8): batch file listings, downloads with ranges, previews, deletes."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from tests.conftest import ORG
from tests.ingest_helpers import (
    EXPORT,
    UNION,
    create_batch,
    create_dataset,
    ingest,
    json_lines,
    person,
)


@pytest.fixture
def loaded(client, run_jobs):
    """A dataset with one successful batch of 3 people; returns (dataset, batch, file id, part name, bytes)."""
    ds = create_dataset(client)
    b = ingest(client, run_jobs, ds, {"a.json": json_lines([person(1), person(2), person(3)])})
    file_id = client.get(f"{EXPORT}/batches/{b}/files").json()["data"][0]["dataSetFileId"]
    name = client.get(f"{EXPORT}/files/{file_id}").json()["data"][0]["name"]
    content = client.get(f"{EXPORT}/files/{file_id}", params={"path": name}).content
    return ds, b, file_id, name, content


def test_batch_files_listing_shape(client, loaded):
    ds, b, file_id, _, _ = loaded
    body = client.get(f"{EXPORT}/batches/{b}/files").json()
    assert body["_page"] == {"limit": 100, "count": 1}
    assert body["_links"] == {}
    item = body["data"][0]
    assert item["dataSetFileId"] == file_id == f"{b}-1"
    assert item["dataSetViewId"] == ds
    assert item["version"] == "1.0.0" and item["isValid"] is True
    assert item["created"].isdigit() and item["updated"].isdigit()
    assert item["records"] == "3" and int(item["size"]) > 0
    assert item["_links"]["self"]["href"] == f"http://testserver{EXPORT}/files/{file_id}"


def test_batch_files_paging(client, loaded):
    b = loaded[1]
    assert client.get(f"{EXPORT}/batches/{b}/files", params={"limit": 100}).status_code == 200
    for bad in ("0", "101", "x"):
        r = client.get(f"{EXPORT}/batches/{b}/files", params={"limit": bad})
        assert r.status_code == 400 and r.json()["type"] == "/placeholder/type/uri"
    assert client.get(f"{EXPORT}/batches/{b}/files", params={"start": 1}).json()["data"] == []
    assert client.get(f"{EXPORT}/batches/{'0' * 32}/files").status_code == 404


def test_file_listing_and_download(client, loaded):
    _, b, file_id, name, content = loaded
    body = client.get(f"{EXPORT}/files/{file_id}").json()
    assert body["_page"]["count"] == 1
    part = body["data"][0]
    assert name.endswith(".parquet") and part["length"] == str(len(content))
    assert part["_links"]["self"]["href"] == f"http://testserver{EXPORT}/files/{file_id}?path={name}"
    # The bytes whatever the Accept header says.
    assert client.get(f"{EXPORT}/files/{file_id}", params={"start": name}).json()["data"] == []
    assert client.get(f"{EXPORT}/files/{file_id}", params={"start": "a"}).json()["data"] == body["data"]
    r = client.get(f"{EXPORT}/files/{file_id}", params={"path": name}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == str(len(content)) and r.content == content
    table = pq.read_table(io.BytesIO(content))
    assert table.num_rows == 3
    assert table.column("person").type.field("name").type.field("firstName") is not None


def test_byte_ranges(client, loaded):
    _, _, file_id, name, content = loaded
    size = len(content)
    url = f"{EXPORT}/files/{file_id}"
    for header, (first, last) in [("bytes=0-3", (0, 3)), ("bytes=4-", (4, size - 1)), ("bytes=-4", (size - 4, size - 1)),
                                  ("bytes=10-99999999", (10, size - 1))]:
        r = client.get(url, params={"path": name}, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert r.headers["content-length"] == str(last - first + 1)
        assert r.content == content[first:last + 1]
    assert content[:4] == b"PAR1"
    r = client.get(url, params={"path": name}, headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    assert r.json()["status"] == 416
    # aepp sends the range as a query parameter
    r = client.get(url, params={"path": name, "range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"PAR1"
    # malformed or multi-range: the whole file
    assert client.get(url, params={"path": name}, headers={"Range": "bytes=0-1,4-5"}).status_code == 200
    assert client.get(url, params={"path": name}, headers={"Range": "lines=1-2"}).status_code == 200


def test_head(client, loaded):
    _, _, file_id, name, content = loaded
    r = client.head(f"{EXPORT}/files/{file_id}", params={"path": name})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(content))
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"
    assert client.head(f"{EXPORT}/files/{file_id}", params={"path": "nope.parquet"}).status_code == 404
    assert client.head(f"{EXPORT}/files/{file_id}").status_code == 400


@pytest.mark.parametrize("name", ["../a.json", "nope.parquet", "/etc/passwd", "..", ".", "", "a/../../x",
                                  "../../../../uploads"])
def test_unknown_or_unsafe_names_are_404(client, loaded, name):
    file_id = loaded[2]
    r = client.get(f"{EXPORT}/files/{file_id}", params={"path": name})
    assert r.status_code == 404 and r.json()["title"] == "NotFoundError"


def test_unknown_file_is_404(client, loaded):
    assert client.get(f"{EXPORT}/files/{'0' * 32}-1").status_code == 404


def test_failed_and_meta_listings(client, run_jobs):
    ds = create_dataset(client)
    clean = ingest(client, run_jobs, ds, {"a.json": json_lines([person(1)])})
    assert client.get(f"{EXPORT}/batches/{clean}/failed").json() == {"data": [], "_page": {"limit": 100, "count": 0},
                                                                    "_links": {}}
    b = ingest(client, run_jobs, ds, {"a.json": json_lines([person(1), {"x": 1}, {"y": 2}])})
    meta = client.get(f"{EXPORT}/batches/{b}/meta").json()
    names = [m["name"] for m in meta["data"]]
    assert names == ["row_errors_sample.json", "row_errors/part-00000.json"]
    sample_file = client.get(f"{EXPORT}/batches/{b}/meta", params={"path": "row_errors_sample.json"})
    assert sample_file.headers["content-type"] == "application/json"  # as Adobe's spec documents
    sample = sample_file.json()
    assert [r["row"] for r in sample] == [1, 2] and {r["code"] for r in sample} == {"ROW-IDENTITYMAP-MISSING"}
    assert client.get(f"{EXPORT}/batches/{b}/meta", params={"path": "input_files"}).status_code == 404
    part = client.get(f"{EXPORT}/batches/{b}/failed", params={"path": "row_errors/part-00000.json"})
    assert part.headers["content-type"] == "application/json"
    assert [json.loads(line)["row"] for line in part.text.splitlines()] == [1, 2]  # JSON lines, a row each
    assert client.get(f"{EXPORT}/batches/{b}/failed", params={"path": "row_errors/part-00001.json"}).status_code == 404
    assert client.get(f"{EXPORT}/batches/{b}/failed", params={"limit": 101}).status_code == 400


def test_preview(client, run_jobs):
    ds = create_dataset(client)
    assert client.get(f"{EXPORT}/datasets/{ds}/preview").json() == {"data": []}
    ingest(client, run_jobs, ds, {"a.json": json_lines([person(i) for i in range(60)])})
    ingest(client, run_jobs, ds, {"b.json": json_lines([person(i) for i in range(60, 120)])})
    loading = create_batch(client, ds)  # never visible
    assert loading
    rows = client.get(f"{EXPORT}/datasets/{ds}/preview").json()["data"]
    assert len(rows) == 100
    assert rows[0]["person"]["name"]["firstName"] == "First0"
    assert rows[0]["identityMap"]["Email"][0]["id"] == "p0@example.com"
    assert all("_acp_system_metadata" not in r for r in rows)
    assert client.get(f"{EXPORT}/datasets/{'0' * 24}/preview").status_code == 404


def test_dataset_delete_removes_batch_files(client, ctx, loaded):
    ds, b, file_id, name, _ = loaded
    assert ctx.lake.dataset_files(ORG, "prod", ds)
    assert client.delete(f"/data/foundation/catalog/dataSets/{ds}").status_code == 200
    assert client.get(f"{EXPORT}/batches/{b}/files").status_code == 404
    assert client.get(f"{EXPORT}/files/{file_id}").status_code == 404
    assert client.get(f"{EXPORT}/files/{file_id}", params={"path": name}).status_code == 404
    assert client.get(f"{EXPORT}/datasets/{ds}/preview").status_code == 404
    assert ctx.lake.dataset_files(ORG, "prod", ds) == []


def test_export_target_batch_invisible_until_success(client, ctx):
    """An export batch (written by an export job) lists no files while its job runs."""
    from upstack.services.catalog import now_ms
    from upstack.storage.models import Batch, DatasetFile

    target = create_dataset(client, "target", schema=UNION)
    t = now_ms()
    with ctx.db.session() as s:
        s.add(Batch(id="e" * 32, org=ORG, sandbox="prod", dataset_id=target, origin="export", status="processing",
                    input_format={"format": "parquet"}, created_ms=t, updated_ms=t, records_read=0,
                    records_written=0, records_failed=0, errors=[]))
        s.add(DatasetFile(id="e" * 32 + "-1", org=ORG, sandbox="prod", batch_id="e" * 32, dataset_id=target,
                          created_ms=t, records=1, size_bytes=10))
    assert client.get(f"{EXPORT}/batches/{'e' * 32}/files").json()["data"] == []
    assert client.get(f"{EXPORT}/files/{'e' * 32}-1").status_code == 404
