"""Data Access answers (CONTRACT §8), as Adobe's Data Access spec describes them (`da_dataSetFiles`, `da_files`,
`da_preview`), for the OpenAPI document: the routes answer with orjson, never through these models, and a
download streams the file's bytes (api/routers/data_access.py).

Sizes, lengths and record counts are strings, as the platform answers them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, RootModel

from upstack.schemas.base import Answer as _Answer


class DataAccessHref(_Answer):
    href: str = Field(description="An absolute URL of this server.")


class DataAccessSelf(_Answer):
    self: DataAccessHref


class DataAccessNext(_Answer):
    next: DataAccessHref | None = Field(None, description="The next page (`start`, `limit`); absent on the last.")


class DataAccessPage(_Answer):
    limit: int = Field(description="Items per page (`limit`, 1..100).")
    count: int = Field(description="Items in all pages.")


class DataAccessFile(_Answer):
    """A dataSetFile of a batch: its parts are listed by `GET /files/{dataSetFileId}`."""

    dataSetFileId: str
    dataSetViewId: str = Field(description="The dataset's id.")
    version: str
    created: str = Field(description="Epoch milliseconds, as text.")
    updated: str = Field(description="Epoch milliseconds, as text.")
    isValid: bool
    records: str = Field(description="Records in the file, as text.")
    size: str = Field(description="Bytes of its parts, as text.")
    links: DataAccessSelf = Field(alias="_links", description="`self`: GET /files/{dataSetFileId}.")


class DataAccessFiles(_Answer):
    """GET /batches/{batchId}/files (`da_dataSetFiles`): the files of a successful batch (none otherwise)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "data": [{"dataSetFileId": "5d01230fc78a4e4f8c0c6b387b4b8d1c-1", "dataSetViewId": "5c8c3c555033b814b69f947f",
                  "version": "1.0.0", "created": "1560355599872", "updated": "1560355599872", "isValid": True,
                  "records": "3", "size": "2391",
                  "_links": {"self": {"href": "http://127.0.0.1:8080/data/foundation/export/files/"
                                              "5d01230fc78a4e4f8c0c6b387b4b8d1c-1"}}}],
        "_page": {"limit": 100, "count": 1}, "_links": {}}]})

    data: list[DataAccessFile]
    page: DataAccessPage = Field(alias="_page")
    links: DataAccessNext = Field(alias="_links")


class DataAccessPart(_Answer):
    """A file one may download: `_links.self` is its URL (`?path=<name>`)."""

    name: str = Field(description="The file's name (`path`).")
    length: str = Field(description="Its size in bytes, as text.")
    links: DataAccessSelf = Field(alias="_links")


class DataAccessParts(_Answer):
    """A listing of files (`da_files`): the parts of a dataSetFile, or the failed rows' and meta files of a batch."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "data": [{"name": "part-00000.parquet", "length": "2391",
                  "_links": {"self": {"href": "http://127.0.0.1:8080/data/foundation/export/files/"
                                              "5d01230fc78a4e4f8c0c6b387b4b8d1c-1?path=part-00000.parquet"}}}],
        "_page": {"limit": 100, "count": 1}, "_links": {}}]})

    data: list[DataAccessPart]
    page: DataAccessPage = Field(alias="_page")
    links: DataAccessNext = Field(alias="_links")


class DataAccessRowError(_Answer):
    """A record the ingest job refused."""

    file: str = Field(description="The uploaded file it came from.")
    row: int = Field(description="Its index in that file.")
    code: str
    message: str
    record: str | None = Field(description="The record as received (text), when it was kept.")


class DataAccessFailed(RootModel[DataAccessParts | DataAccessRowError]):
    """GET /batches/{batchId}/failed: the listing of `row_errors/part-NNNNN.json`; with `path`, that file: JSON
    lines, one DataAccessRowError a line (a part of one row is one DataAccessRowError)."""


class DataAccessMeta(RootModel[DataAccessParts | list[DataAccessRowError] | DataAccessRowError]):
    """GET /batches/{batchId}/meta: the listing of `row_errors_sample.json` and the row error parts; with `path`,
    that file: the sample is a JSON array of the first row errors, a part JSON lines as under /failed."""


class DataAccessPreview(_Answer):
    """GET /datasets/{datasetId}/preview (`da_preview`): the first rows of its successful batches, oldest first."""

    data: list[dict[str, Any]] = Field(description="Records as stored: nested XDM stays nested; timestamps and "
                                                   "binary values as text.")
