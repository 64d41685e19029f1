"""Catalog bodies (CONTRACT §3), as Adobe's Catalog spec describes them (`cat_dataSetRequest`, `cat_batchRequest`,
`cat_batchPatchRequest`; answers `cat_dataSetResponse`, `cat_batchResponse`).

The request models are what the services receive: types, enumerations and bounds are declared here. A value
outside one of the spec's enumerations, or of the wrong type, is 400 on the way in: stored, it would be echoed
back and break the response schema a client was generated from. Checks whose texts clients already know (a
dataset's `name`, `schemaRef`, `tags`) are `BeforeValidator`s raising `upstack_error`s with those texts.

Members, and what becomes of them:
- A dataset keeps `name`, `description`, `schemaRef`, `tags`, `fileDescription`, `classification` and
  `namespace`, and shows them. `schemaRef` and `fileDescription` are kept **as sent**, members the spec does not
  name included (`fileDescription.persisted`): they are not ignored, so not warned about (`KEEPS_UNKNOWN`).
- Members checked but not kept (`NOT_KEPT`: a dataset's `enableErrorDiagnostics`, a batch's `metrics`...) and
  members a model does not know (kept aside by `extra="allow"`, never serialised back) are ignored, as the
  platform ignores unknown ones; api/bodies.py names both in `x-upstack-warning`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from upstack.schemas.export_jobs import upstack_error

# cat_format: the formats a dataset's files may be described as
DatasetFormat = Literal["", "csv", "text", "parquet", "json", "sequencefile", "avro"]
DatasetCharset = Literal["US-ASCII", "UTF-8", "ISO-8859-1", ""]
BatchStatus = Literal["processing", "success", "failure", "queued", "retrying", "stalled", "aborted", "abandoned",
                      "inactive", "failed", "loading", "loaded", "staged", "active", "staging", "deleted"]

MAX_NAME = 1_024  # storage.models.Dataset.name's column (tests/test_catalog.py checks they agree)
TEXT = 1_000
LONG_TEXT = 10 * TEXT
ID = 255
URI = 2_048  # a schema id, a base path
INT64 = 2**63 - 1
MEMBERS = 1_000  # members of a free-form object (classification, observableSchema, metrics)
TAGS = 100  # tag names of one object
TAG_VALUES = 1_000  # values of one tag
ITEMS = 100  # delimiters, quotes, escapes, null markers


# ---- member checks (the texts are the ones the hand-written checks said) -------------------------------

def _body(data: Any, message: str) -> Any:
    if not isinstance(data, dict):
        raise upstack_error("object", message)
    return data


def _object(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise upstack_error("object", "'{loc}' must be an object.")
    return value


def _name(value: Any) -> Any:
    if not isinstance(value, str):
        raise upstack_error("string", "Dataset 'name' must be a string.")
    if len(value) > MAX_NAME:  # PostgreSQL refuses a longer one (a 500); SQLite would keep it
        raise upstack_error("length", "Dataset 'name' must be at most {max} characters.", max=MAX_NAME)
    return value


def _schema_ref(value: Any) -> Any:
    if value is not None and (not isinstance(value, dict) or not isinstance(value.get("id", ""), str)
                              or not isinstance(value.get("contentType", ""), str)):
        raise upstack_error("schema_ref", "'{loc}' must be an object with a string 'id' and a string 'contentType'.")
    return value


def _tags(value: Any) -> Any:
    _object(value)
    for name, values in (value or {}).items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise upstack_error("tags", "Tag '{tag}' must be an array of strings.", tag=str(name)[:100])
    return value


Tags = Annotated[dict[Annotated[str, Field(max_length=ID)],
                      Annotated[list[Annotated[str, Field(max_length=TEXT)]], Field(max_length=TAG_VALUES)]],
                 Field(max_length=TAGS, examples=[{"unifiedProfile": ["enabled:true"]}]),
                 BeforeValidator(_tags)]
Members = Annotated[dict[str, Any], Field(max_length=MEMBERS)]


def _no_default(schema: dict[str, Any]) -> None:
    """A member that may be left out but is never null: its schema says no `default: null`."""
    schema.pop("default", None)


# ---- request bases -------------------------------------------------------------------------------------

class CatalogMember(BaseModel):
    """A request object: unknown members are kept aside and never serialised back (api/bodies.py names them).
    `NOT_KEPT` names the declared members the service checks but does not keep; `SHOWN_AS`, the name pydantic's
    "a valid dictionary or instance of ..." said before the models got their `Catalog` prefix."""

    model_config = ConfigDict(extra="allow")
    NOT_KEPT: ClassVar[tuple[str, ...]] = ()
    KEEPS_UNKNOWN: ClassVar[bool] = False
    SHOWN_AS: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, data: Any) -> Any:
        if cls.SHOWN_AS and not isinstance(data, dict) and not isinstance(data, cls):
            raise upstack_error("object", "Invalid request: {loc}: Input should be a valid dictionary or instance "
                                "of {name}", name=cls.SHOWN_AS)
        return data

    @model_serializer(mode="wrap")
    def _known_only(self, handler: SerializerFunctionWrapHandler):  # no return type: the schema stays the model's
        out = handler(self)
        if not self.KEEPS_UNKNOWN:
            for name in self.model_extra or ():
                out.pop(name, None)
        return out


class KeptAsSent(CatalogMember):
    """An object stored and shown as the client sent it, members the spec does not name included: checked by
    its declared members, never warned about."""

    model_config = ConfigDict(extra="allow", strict=True)
    KEEPS_UNKNOWN: ClassVar[bool] = True
    _sent: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            model._sent = data
        return model

    def as_sent(self) -> dict[str, Any]:
        return dict(self._sent) if self._sent else self.model_dump(exclude_unset=True)  # built, not parsed


# ---- datasets ------------------------------------------------------------------------------------------

class CatalogSchemaRef(KeptAsSent):
    """`cat_schemaRef`: the XDM schema the dataset's records follow (it decides what the dataset holds)."""

    id: Annotated[str, Field(max_length=URI, examples=["https://ns.adobe.com/acme/schemas/person"])] = Field(
        None, description="`.../profile__union`: an export target; containing `experienceevent`: events; else "
                          "profile records.", json_schema_extra=_no_default)
    contentType: Annotated[str, Field(max_length=TEXT, examples=["application/vnd.adobe.xed+json;version=1"])] = Field(
        None, json_schema_extra=_no_default)


class CatalogFileDescription(KeptAsSent):
    format: DatasetFormat = ""
    charset: DatasetCharset = ""
    # no null either: the object is stored as sent and echoed, and the response schema has no null here
    delimiters: Annotated[list[Annotated[str, Field(max_length=1)]], Field(max_length=ITEMS)] = []  # one character each
    quotes: Annotated[list[Annotated[str, Field(max_length=16)]], Field(max_length=ITEMS)] = []
    escapes: Annotated[list[Annotated[str, Field(max_length=16)]], Field(max_length=ITEMS)] = []
    nullMarkers: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=ITEMS)] = []
    header: bool = False


# The members a dataset keeps, in the order it stores them.
DATASET_KEPT = ("name", "description", "schemaRef", "tags", "fileDescription", "classification", "namespace")


class CatalogDataSetPatch(CatalogMember):
    """`PATCH /dataSets/{id}` (`cat_dataSetRequest`): the members given change; null removes one (but `name`)."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"examples": [
        {"tags": {"unifiedProfile": ["enabled:true"]}}]})
    NOT_KEPT: ClassVar[tuple[str, ...]] = ("enableErrorDiagnostics", "observableSchema", "basePath")

    name: Annotated[str, Field(max_length=MAX_NAME, examples=["people"]), BeforeValidator(_name)] = Field(
        None, json_schema_extra=_no_default)
    description: Annotated[str, Field(max_length=LONG_TEXT)] | None = None
    schemaRef: Annotated[CatalogSchemaRef, BeforeValidator(_schema_ref)] | None = None
    tags: Tags | None = Field(None, description="`unifiedProfile: [\"enabled:true\"]` makes the dataset feed "
                                                "profiles.")
    fileDescription: Annotated[CatalogFileDescription, BeforeValidator(_object)] | None = None
    classification: Annotated[Members, BeforeValidator(_object)] | None = Field(
        None, description="Kept and shown as sent (not in Adobe's request schema).")
    namespace: Any = Field(None, description="Kept and shown as sent (not in Adobe's request schema).")
    enableErrorDiagnostics: bool | None = Field(None, description="Checked, not kept: no diagnostics are made.")
    observableSchema: Members | None = Field(None, description="Checked, not kept.")
    basePath: Annotated[str, Field(max_length=URI)] | None = Field(None, description="Checked, not kept.")

    @model_validator(mode="before")
    @classmethod
    def _is_body(cls, data: Any) -> Any:
        return _body(data, "Request body must be a JSON object.")

    def kept(self) -> dict[str, Any]:
        """The members given that a dataset keeps, as sent (None where the client sent null)."""
        out: dict[str, Any] = {}
        for key in DATASET_KEPT:
            if key in self.model_fields_set:
                value = getattr(self, key)
                out[key] = value.as_sent() if isinstance(value, KeptAsSent) else value
        return out

    def schema_id(self) -> str | None:
        return self.schemaRef.id if self.schemaRef is not None else None


class CatalogDataSetRequest(CatalogDataSetPatch):
    """`POST /dataSets` and `PUT /dataSets/{id}` (`cat_dataSetRequest`): `name` is required; PUT replaces what
    the dataset keeps."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"required": ["name"], "examples": [{
        "name": "people", "description": "Profile records",
        "schemaRef": {"id": "https://ns.adobe.com/acme/schemas/person",
                      "contentType": "application/vnd.adobe.xed+json;version=1"},
        "tags": {"unifiedProfile": ["enabled:true"]}, "fileDescription": {"format": "json"}}]})

    @model_validator(mode="before")
    @classmethod
    def _has_name(cls, data: Any) -> Any:
        data = _body(data, "Request body must be a JSON object.")
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise upstack_error("required", "Dataset 'name' is required and must be a non-empty string.")
        return data


# ---- batches -------------------------------------------------------------------------------------------

class CatalogBatchError(CatalogMember):
    """`cat_errors`."""

    SHOWN_AS: ClassVar[str] = "BatchErrorItem"

    code: str | None = Field(None, max_length=TEXT)
    rows: list[str] | None = Field(None, max_length=10_000)
    description: str | None = Field(None, max_length=LONG_TEXT)


class CatalogRelatedObject(CatalogMember):
    """`cat_relatedObjects`: the batch's dataset is the one of type `dataSet`; the others are not kept."""

    NOT_KEPT: ClassVar[tuple[str, ...]] = ("tag", "status", "errors", "metrics")
    SHOWN_AS: ClassVar[str] = "RelatedObject"

    type: Literal["batch", "dataSet", "dataSetFile", "dataSetView", "transform"] | None = None
    id: str | None = Field(None, max_length=ID)
    tag: str | None = Field(None, max_length=ID)
    status: Literal["processing", "success", "failure", "queued", "retrying", "stalled"] | None = None
    errors: list[CatalogBatchError] | None = Field(None, max_length=1_000)
    metrics: dict[str, Any] | None = Field(None, max_length=MEMBERS)


class CatalogInputFormat(CatalogMember):
    """`cat_inputFormat`. `format` is checked by the ingestion service (case-insensitive: json or parquet are
    ingested), which keeps it and `isMultiLineJson` only."""

    NOT_KEPT: ClassVar[tuple[str, ...]] = ("delimiter", "quote", "escape", "nullMarker", "header", "charset")
    SHOWN_AS: ClassVar[str] = "InputFormat"

    format: str | None = Field(None, max_length=64, examples=["json"])
    isMultiLineJson: bool | None = None
    delimiter: str | None = Field(None, max_length=16)
    quote: str | None = Field(None, max_length=16)
    escape: str | None = Field(None, max_length=16)
    nullMarker: str | None = Field(None, max_length=64)
    header: str | None = Field(None, max_length=16)
    charset: Literal["US-ASCII", "UTF-8", "ISO-8859-1"] | None = None


class CatalogReplay(CatalogMember):
    SHOWN_AS: ClassVar[str] = "Replay"

    predecessors: list[Annotated[str, Field(max_length=ID)]] | None = Field(None, max_length=1_000)
    reason: str | None = Field(None, max_length=TEXT)


class CatalogAvailableDates(CatalogMember):
    SHOWN_AS: ClassVar[str] = "AvailableDates"

    startDate: int | None = Field(None, ge=0, le=INT64)
    endDate: int | None = Field(None, ge=0, le=INT64)


# The attributes a batch keeps and shows as given; the server owns the rest.
BATCH_KEPT = ("externalId", "replay", "availableDates", "size", "tags")


class CatalogBatchPatch(CatalogMember):
    """`PATCH /batches/{id}` (`cat_batchPatchRequest`): the members given change; `status` moves only along the
    batch state table."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"status": "processing"}]})
    # the server's own: a client's values are checked, not kept (CONTRACT §3)
    NOT_KEPT: ClassVar[tuple[str, ...]] = ("started", "completed", "recordCount", "failedRecordCount", "errors",
                                           "metrics")

    externalId: str | None = Field(None, max_length=TEXT)
    started: int | None = Field(None, ge=0, le=INT64)
    completed: int | None = Field(None, ge=0, le=INT64)
    replay: CatalogReplay | None = None
    status: BatchStatus | None = None
    recordCount: int | None = Field(None, ge=0, le=INT64)
    failedRecordCount: int | None = Field(None, ge=0, le=INT64)
    errors: list[CatalogBatchError] | None = Field(None, max_length=1_000)
    size: int | None = Field(None, ge=0, le=INT64)
    availableDates: CatalogAvailableDates | None = None
    relatedObjects: list[CatalogRelatedObject] | None = Field(None, max_length=100)
    metrics: dict[str, Any] | None = Field(None, max_length=MEMBERS)
    tags: dict[Annotated[str, Field(max_length=ID)],
               list[Annotated[str, Field(max_length=TEXT)]]] | None = Field(None, max_length=TAGS)
    inputFormat: CatalogInputFormat | None = None
    # upstack also takes the dataset the Batch Ingestion way
    datasetId: str | None = Field(None, max_length=ID, description="upstack also takes the dataset this way "
                                                                    "(or `dataSetId`), as Batch Ingestion does.")
    dataSetId: str | None = Field(None, max_length=ID)

    @model_validator(mode="before")
    @classmethod
    def _is_body(cls, data: Any) -> Any:
        return _body(data, "Request body must be a JSON object.")

    def dataset_id(self) -> str | None:
        if self.datasetId is not None or self.dataSetId is not None:
            return self.datasetId if self.datasetId is not None else self.dataSetId
        return next((o.id for o in self.relatedObjects or () if o.type == "dataSet" and o.id is not None), None)

    def kept(self) -> dict[str, Any]:
        """The attributes given that a batch keeps (a null one is not given)."""
        given = self.model_dump(include=set(BATCH_KEPT), exclude_unset=True, exclude_none=True)
        return {k: given[k] for k in BATCH_KEPT if k in given}

    def input_format(self) -> dict[str, Any] | None:
        return None if self.inputFormat is None else self.inputFormat.model_dump(exclude_none=True)


class CatalogBatchRequest(CatalogBatchPatch):
    """`POST /batches` and `POST /batches/{id}` (`cat_batchRequest`). Adobe requires `status`; upstack also opens
    a batch without one (it starts `loading`), as its older clients do."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "loading", "relatedObjects": [{"type": "dataSet", "id": "5c8c3c555033b814b69f947f"}],
        "inputFormat": {"format": "json"}, "tags": {"team": ["crm"]}, "externalId": "crm-2024-01-01"}]})

    @model_validator(mode="before")
    @classmethod
    def _is_body(cls, data: Any) -> Any:
        return _body(data, "Request body must be a JSON object naming the batch's dataset.")

    @model_validator(mode="after")
    def _starts_loading(self) -> CatalogBatchRequest:
        if self.status not in (None, "loading"):
            raise upstack_error("status", "A new batch starts 'loading', not '{status}': upload its files, then move "
                                "it to 'processing' (or POST /data/foundation/import/batches/{id}?action=COMPLETE).",
                                status=self.status)
        return self


class CatalogBatchPut(CatalogBatchPatch):
    """`PUT /batches/{id}` (`cat_batchRequest`): replaces the attributes the batch keeps; `status` is required."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["status"], "examples": [{
        "status": "loading", "tags": {"team": ["crm"]}}]})

    @model_validator(mode="after")
    def _has_status(self) -> CatalogBatchPut:
        if self.status is None:
            raise upstack_error("required", "'status' is required when a batch is replaced (PUT); PATCH changes "
                                "single attributes.")
        return self


# ---- the answers ---------------------------------------------------------------------------------------

def _no_defaults(schema: dict[str, Any]) -> None:
    # An answer's member is there or not, never null: an optional one's `default: null` would say otherwise.
    for member in schema.get("properties", {}).values():
        member.pop("default", None)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_no_defaults)


class CatalogRefs(RootModel[list[str]]):
    """What Catalog's writes answer: the path of the object, relative to the Catalog root."""

    root: list[str] = Field(min_length=1, max_length=1, examples=[["@/dataSets/5c8c3c555033b814b69f947f"]])


class _CatalogObject(_Answer):
    """What every Catalog object says of itself. Every member but the optional ones is always there, unless
    `properties` names the ones wanted (hence none is `required`, as in Adobe's schemas)."""

    imsOrg: str = None
    sandboxId: str = Field(None, description="The sandbox's UUID (CONTRACT §1).")
    sandbox: str = None
    version: str = Field(None, examples=["1.0.3"])
    created: int = Field(None, description="Epoch milliseconds.")
    updated: int = Field(None, description="Epoch milliseconds.")
    createdClient: str = None
    createdUser: str = None
    updatedUser: str = None


class CatalogDataSet(_CatalogObject):
    """One dataset (`cat_dataSetResponse`), as the map answers of GET /dataSets hold it."""

    name: str = None
    description: str = Field(None, description="When the dataset has one.")
    schemaRef: CatalogSchemaRef = Field(None, description="As sent, when the dataset has one.")
    tags: dict[str, list[str]] = Field(None, description="`{}` when the dataset has none.")
    classification: dict[str, Any] = Field(None, description="`{}` when the dataset has none.")
    namespace: Any = Field(None, description="As sent, when a client sent one.")
    fileDescription: CatalogFileDescription = Field(
        None, description="As sent; `{\"persisted\": true, \"format\": \"parquet\"}` when none was.")
    viewId: str = None
    files: str = Field(None, examples=["@/dataSetFiles?dataSetId=5c8c3c555033b814b69f947f"])
    lastBatchId: str = Field(None, description="Absent until the dataset has a batch.")
    lastBatchStatus: BatchStatus = Field(None, description="Absent until the dataset has a batch.")


class CatalogDataSets(RootModel[dict[str, CatalogDataSet]]):
    """GET /dataSets (one page) and GET /dataSets/{id}: `{"<id>": {...}}`, without an envelope."""


class CatalogBatchMetrics(_Answer):
    recordsRead: int
    recordsWritten: int
    recordsFailed: int
    startTime: int = Field(None, description="Epoch milliseconds, once the batch was started.")
    endTime: int = Field(None, description="Epoch milliseconds, once the batch was completed.")


class CatalogBatchObject(_Answer):
    type: Literal["dataSet"]
    id: str


class CatalogBatchDates(_Answer):
    """`availableDates` as given (the request's bounds are not restated: FastAPI writes an answer's bounds as
    floats, and 2**63 - 1 is no float)."""

    startDate: int = None
    endDate: int = None


class CatalogBatchFormat(_Answer):
    format: str = Field(examples=["json"])
    isMultiLineJson: bool = None


class CatalogBatch(_CatalogObject):
    """One batch (`cat_batchResponse`), as the map answers of GET /batches hold it."""

    id: str = Field(None, description="In GET /batches/{id}; a list's key is the id.")
    status: BatchStatus = None
    started: int = Field(None, description="Epoch milliseconds, once the batch was started.")
    completed: int = Field(None, description="Epoch milliseconds, once the batch was completed.")
    externalId: str = Field(None, description="As a client gave it.")
    replay: CatalogReplay = Field(None, description="As a client gave it.")
    availableDates: CatalogBatchDates = Field(None, description="As a client gave it.")
    size: int = Field(None, description="As a client gave it.")
    tags: dict[str, list[str]] = Field(None, description="A client's, and `exportJobId` on an export job's batch.")
    relatedObjects: list[CatalogBatchObject] = Field(None, description="The batch's dataset.")
    inputFormat: CatalogBatchFormat = None
    metrics: CatalogBatchMetrics = None
    errors: list[CatalogBatchError] = Field(None, description="`[]` unless rows were rejected or the batch failed.")


class CatalogBatches(RootModel[dict[str, CatalogBatch]]):
    """GET /batches (one page) and GET /batches/{id}: `{"<id>": {...}}`, without an envelope."""
