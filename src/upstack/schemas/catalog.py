"""The enumerated members of Catalog request bodies, as Adobe's Catalog spec lists them (catalog.yaml,
`cat_format`, `fileDescription`, `batch`). A value outside its enum is 400 on the way in: it would otherwise be
stored and echoed back, and the answer would break the response schema a client was generated from.

Only the enumerated members are declared here; the rest of a body is checked by the services (other members
pass through untouched, hence `extra="allow"`). `strict=True`: a number or an object is not an enum value.
Absent is fine; an explicit null is not a value of the enum either."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# cat_format: the formats a dataset's files may be described as
DatasetFormat = Literal["", "csv", "text", "parquet", "json", "sequencefile", "avro"]
DatasetCharset = Literal["US-ASCII", "UTF-8", "ISO-8859-1", ""]
BatchCharset = Literal["US-ASCII", "UTF-8", "ISO-8859-1"]
BatchStatus = Literal["processing", "success", "failure", "queued", "retrying", "stalled", "aborted", "abandoned",
                      "inactive", "failed", "loading", "loaded", "staged", "active", "staging", "deleted"]
RelatedType = Literal["batch", "dataSet", "dataSetFile", "dataSetView", "transform"]
RelatedStatus = Literal["processing", "success", "failure", "queued", "retrying", "stalled"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FileDescription(_Open):
    format: DatasetFormat = ""
    charset: DatasetCharset = ""


class DatasetInput(_Open):
    """POST, PUT and PATCH /dataSets."""

    fileDescription: FileDescription | None = None


class CatalogInputFormat(_Open):
    # `format` itself is checked (case-insensitively, json or parquet: what this server ingests) by ingestion
    charset: BatchCharset = "UTF-8"


class RelatedObject(_Open):
    type: RelatedType = "dataSet"
    status: RelatedStatus = "processing"


class CatalogBatchInput(_Open):
    """POST /data/foundation/catalog/batches."""

    status: BatchStatus = "loading"
    inputFormat: CatalogInputFormat | None = None
    relatedObjects: list[RelatedObject] | None = None


def check_dataset(body: dict[str, Any]) -> None:
    """Raises pydantic's ValidationError (rendered as the family's 400) when an enumerated member is wrong."""
    DatasetInput.model_validate(body)


def check_catalog_batch(body: dict[str, Any]) -> None:
    CatalogBatchInput.model_validate(body)
