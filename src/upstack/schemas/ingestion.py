"""Batch Ingestion bodies (CONTRACT §4), as Adobe's Batch Ingestion spec describes them (`bi_IngestBatch`,
`bi_Batch`, `bi_File`, `bi_PreviewResponse`).

The request model is what `POST /data/foundation/import/batches` hands the service: `inputFormat.format` is json
or parquet in any case (Adobe's samples send `JSON` and `Parquet`), `isMultiLineJson` a boolean or its text.
Each check raises the message clients got from the hand-written checks it replaces; members the model does not
know (Adobe's `externalId`, `replay`, `tags`, a CSV `delimiter`...) are kept aside and named in
`x-upstack-warning` (api/bodies.py), as the server ignores them.

The answer models describe what the routes answer (api/views.batch_view and the upload routes); they are the
OpenAPI document's, never run on the request path: uploads and actions answer with orjson as before.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from upstack.schemas.base import Answer as _Answer

FORMATS = ("json", "parquet")
ACTIONS = ("COMPLETE", "ABORT", "FAIL", "REVERT")  # POST /batches/{id}?action=
FILE_ACTIONS = ("INITIALIZE", "COMPLETE")  # POST /batches/{id}/datasets/{id}/files/{path}?action=
# A batch as Batch Ingestion shows it: the batch state table's states (jobs/states.BATCH, which
# tests/test_openapi_shapes.py checks this follows) and `deleted`, the answer to REVERT.
BatchStatus = Literal["loading", "processing", "success", "failed", "aborted", "deleted"]

INPUT_FORMAT = "'inputFormat' is required and must be an object like {\"format\": \"json\"}."


def _error(message: str, **context: object) -> PydanticCustomError:
    """A check's message, as api/errors.py renders it (as is, the family's 400)."""
    return PydanticCustomError("upstack_ingestion", message, {k: str(v) for k, v in context.items()})


def _format(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error("'inputFormat.format' is required: json or parquet.")
    if value.strip().lower() not in FORMATS:
        raise _error("Unsupported inputFormat.format '{got}': this server ingests json or parquet.", got=value)
    return value.strip().lower()


def _multiline(value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise _error("'inputFormat.isMultiLineJson' must be true or false.")
    return value


def _dataset_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error("'datasetId' is required and must be a non-empty string.")
    return value.strip()


Format = Annotated[Literal["json", "parquet"], BeforeValidator(_format), WithJsonSchema({
    "type": "string", "pattern": "^\\s*([Jj][Ss][Oo][Nn]|[Pp][Aa][Rr][Qq][Uu][Ee][Tt])\\s*$", "examples": ["json"],
    "description": "json or parquet, in any case (JSON, Parquet); spaces around are ignored. CSV is not ingested."})]
MultiLine = Annotated[bool, BeforeValidator(_multiline), WithJsonSchema({
    "anyOf": [{"type": "boolean"}, {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"}],
    "default": False, "description": "json only: the file is one JSON array (or object) instead of JSON lines. "
                                     "\"true\" and \"false\" are read too."})]


class ImportInputFormat(BaseModel):
    """`inputFormat` of a new batch; also how Catalog's batch writes and the upload preview read a format."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: Format
    isMultiLineJson: MultiLine = False

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise _error(INPUT_FORMAT)
        return {"format": None, **data}  # a missing format gets its message, not pydantic's

    def params(self) -> dict[str, Any]:
        """The format as a batch keeps it (`isMultiLineJson` for json only)."""
        if self.format == "json":
            return {"format": self.format, "isMultiLineJson": self.isMultiLineJson}
        return {"format": self.format}


class CreateImportBatch(BaseModel):
    """POST /data/foundation/import/batches (`bi_IngestBatch`)."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"examples": [
        {"datasetId": "5c8c3c555033b814b69f947f", "inputFormat": {"format": "json", "isMultiLineJson": False}},
        {"datasetId": "5c8c3c555033b814b69f947f", "inputFormat": {"format": "parquet"}}]})

    # Checked first: a body missing both is told about its format first, as before the model.
    inputFormat: ImportInputFormat = Field(description="How the uploaded files are read.")
    datasetId: Annotated[str, BeforeValidator(_dataset_id)] = Field(
        validation_alias=AliasChoices("datasetId", "dataSetId"), examples=["5c8c3c555033b814b69f947f"],
        json_schema_extra={"pattern": "\\S"},
        description="A dataset of this sandbox that is not an export target; `dataSetId` is read too.")

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise _error("Request body must be a JSON object with 'datasetId' and 'inputFormat'.")
        missing = {"inputFormat": None}
        if "datasetId" not in data and "dataSetId" not in data:
            missing["datasetId"] = None
        return {**missing, **data}


# ---- the answers ---------------------------------------------------------------------------------------

class ImportBatchFormat(_Answer):
    format: Literal["json", "parquet"]
    isMultiLineJson: bool | None = Field(None, description="json batches only.")


class ImportRelatedObject(_Answer):
    type: Literal["dataSet"]
    id: str = Field(description="The batch's dataset.")


class ImportBatchMetrics(_Answer):
    recordsRead: int
    recordsWritten: int
    recordsFailed: int
    startTime: int | None = Field(None, description="Epoch ms of COMPLETE (the records' ingest time).")
    endTime: int | None = Field(None, description="Epoch ms the batch ended.")


class ImportBatchError(_Answer):
    code: str | None = None
    rows: list[str] | None = Field(None, description="Row indexes or ranges (`3-7`) of the batch's records.")
    description: str | None = None


class ImportReplay(_Answer):
    predecessors: list[str] | None = None
    reason: str | None = None


class ImportAvailableDates(_Answer):
    startDate: int | None = None
    endDate: int | None = None


class ImportBatch(_Answer):
    """A batch as Batch Ingestion answers it (`bi_Batch`): created, or after an action (REVERT: as it was, with
    status `deleted`). Catalog's batch views show the same object."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "5d01230fc78a4e4f8c0c6b387b4b8d1c", "imsOrg": "MYORG@AdobeOrg",
        "sandboxId": "8a3cf2a5-5a4a-4c5e-9b5e-6f3d1c2b7a90", "sandbox": "prod", "status": "loading",
        "created": 1560355599872, "updated": 1560355599872, "createdClient": "upstack", "createdUser": "upstack",
        "updatedUser": "upstack", "version": "1.0.0", "tags": {},
        "relatedObjects": [{"type": "dataSet", "id": "5c8c3c555033b814b69f947f"}],
        "inputFormat": {"format": "json", "isMultiLineJson": False},
        "metrics": {"recordsRead": 0, "recordsWritten": 0, "recordsFailed": 0}, "errors": []}]})

    id: str
    imsOrg: str
    sandboxId: str
    sandbox: str
    status: BatchStatus
    created: int = Field(description="Epoch milliseconds.")
    updated: int = Field(description="Epoch milliseconds.")
    createdClient: str
    createdUser: str
    updatedUser: str
    version: str
    tags: dict[str, list[str]] = Field(description="`exportJobId` on an export job's batch.")
    relatedObjects: list[ImportRelatedObject]
    inputFormat: ImportBatchFormat
    metrics: ImportBatchMetrics
    errors: list[ImportBatchError]
    started: int | None = Field(None, description="Epoch ms of COMPLETE.")
    completed: int | None = Field(None, description="Epoch ms the batch ended (success, failed, aborted).")
    # Given through Catalog's batch writes (PATCH /data/foundation/catalog/batches/{id}):
    externalId: str | None = None
    replay: ImportReplay | None = None
    availableDates: ImportAvailableDates | None = None
    size: int | None = None


class ImportFile(_Answer):
    """A large file's state (`bi_File`): after a part (PATCH), INITIALIZE or COMPLETE."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "dir/big.json", "sizeInBytes": 3682}]})

    name: str = Field(description="The file's path in the batch, normalised.")
    sizeInBytes: int = Field(description="Bytes received so far.")


class ImportFormatParams(_Answer):
    format: Literal["json", "parquet"]
    isMultiLineJson: bool | None = Field(None, description="json only.")


class ImportPreviewColumn(_Answer):
    cid: str = Field(description="The column's position, as text.")
    name: str


class ImportPreviewRows(_Answer):
    columns: list[ImportPreviewColumn]
    rows: list[dict[str, Any]] = Field(description="Records as the ingest job converts them (nested XDM stays "
                                                   "nested; timestamps and binary values as text).")


class ImportPreview(_Answer):
    """GET /batches/{id}/datasets/{id}/preview (`bi_PreviewResponse`): the first records of the uploads so far."""

    formatParams: ImportFormatParams
    preview: ImportPreviewRows
