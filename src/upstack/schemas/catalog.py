"""Catalog request bodies, as Adobe's Catalog spec (catalog.yaml) describes them. A value outside one of the
spec's enumerations, or of the wrong type, is 400 on the way in: stored, it would be echoed back and the answer
would break the response schema a client was generated from.

Datasets (`cat_format`, `fileDescription`): only the enumerated members are declared; the rest of a body is
checked by the services (other members pass through untouched, hence `extra="allow"`), and `strict=True`: a
number or an object is not an enum value. Batch writes (`cat_batchRequest`, `cat_batchPatchRequest`): like the
rest of Catalog, members the server does not know are ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# cat_format: the formats a dataset's files may be described as
DatasetFormat = Literal["", "csv", "text", "parquet", "json", "sequencefile", "avro"]
DatasetCharset = Literal["US-ASCII", "UTF-8", "ISO-8859-1", ""]

TEXT = 1_000
ID = 255
INT64 = 2**63 - 1

BatchStatus = Literal["processing", "success", "failure", "queued", "retrying", "stalled", "aborted", "abandoned",
                      "inactive", "failed", "loading", "loaded", "staged", "active", "staging", "deleted"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FileDescription(_Open):
    format: DatasetFormat = ""
    charset: DatasetCharset = ""
    # no null either: the object is stored as sent and echoed, and the response schema has no null here
    delimiters: list[Annotated[str, Field(max_length=1)]] = []  # one character each, as the spec says
    quotes: list[str] = []
    escapes: list[str] = []
    nullMarkers: list[str] = []
    header: bool = False


class DatasetInput(_Open):
    """POST, PUT and PATCH /dataSets: the members a dataset keeps and echoes, with the spec's types (a value
    of another type would be stored and break the response schema: make conformance found `header: {}`)."""

    description: str | None = None
    enableErrorDiagnostics: bool | None = None
    observableSchema: dict[str, Any] | None = None
    basePath: str | None = None
    fileDescription: FileDescription | None = None


def check_dataset(body: dict[str, Any]) -> None:
    """Raises pydantic's ValidationError (rendered as the family's 400) when an enumerated member is wrong."""
    DatasetInput.model_validate(body)


class _Catalog(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BatchErrorItem(_Catalog):
    code: str | None = Field(None, max_length=TEXT)
    rows: list[str] | None = Field(None, max_length=10_000)
    description: str | None = Field(None, max_length=10 * TEXT)


class RelatedObject(_Catalog):
    type: Literal["batch", "dataSet", "dataSetFile", "dataSetView", "transform"] | None = None
    id: str | None = Field(None, max_length=ID)
    tag: str | None = Field(None, max_length=ID)
    status: Literal["processing", "success", "failure", "queued", "retrying", "stalled"] | None = None
    errors: list[BatchErrorItem] | None = Field(None, max_length=1_000)
    metrics: dict[str, Any] | None = None


class InputFormat(_Catalog):
    # `format` is checked by the ingestion service (case-insensitive, json or parquet are ingested).
    format: str | None = Field(None, max_length=64)
    isMultiLineJson: bool | None = None
    delimiter: str | None = Field(None, max_length=16)
    quote: str | None = Field(None, max_length=16)
    escape: str | None = Field(None, max_length=16)
    nullMarker: str | None = Field(None, max_length=64)
    header: str | None = Field(None, max_length=16)
    charset: Literal["US-ASCII", "UTF-8", "ISO-8859-1"] | None = None


class Replay(_Catalog):
    predecessors: list[str] | None = Field(None, max_length=1_000)
    reason: str | None = Field(None, max_length=TEXT)


class AvailableDates(_Catalog):
    startDate: int | None = Field(None, ge=0, le=INT64)
    endDate: int | None = Field(None, ge=0, le=INT64)


class BatchPatch(_Catalog):
    """`PATCH /batches/{id}`: the members given change; `status` moves only along the batch state table."""

    externalId: str | None = Field(None, max_length=TEXT)
    started: int | None = Field(None, ge=0, le=INT64)
    completed: int | None = Field(None, ge=0, le=INT64)
    replay: Replay | None = None
    status: BatchStatus | None = None
    recordCount: int | None = Field(None, ge=0, le=INT64)
    failedRecordCount: int | None = Field(None, ge=0, le=INT64)
    errors: list[BatchErrorItem] | None = Field(None, max_length=1_000)
    size: int | None = Field(None, ge=0, le=INT64)
    availableDates: AvailableDates | None = None
    relatedObjects: list[RelatedObject] | None = Field(None, max_length=100)
    metrics: dict[str, Any] | None = None
    tags: dict[str, list[str]] | None = Field(None, max_length=100)
    inputFormat: InputFormat | None = None
    # upstack also takes the dataset the Batch Ingestion way
    datasetId: str | None = Field(None, max_length=ID)
    dataSetId: str | None = Field(None, max_length=ID)

    def dataset_id(self) -> str | None:
        if self.datasetId is not None or self.dataSetId is not None:
            return self.datasetId if self.datasetId is not None else self.dataSetId
        return next((o.id for o in self.relatedObjects or () if o.type == "dataSet" and o.id is not None), None)


class BatchRequest(BatchPatch):
    """`POST /batches`, `POST /batches/{id}` and `PUT /batches/{id}`. Adobe requires `status`; upstack also opens
    a batch without one (it starts `loading`), as its older clients do."""
