"""Profile export job bodies (CONTRACT §7), as Adobe's "Profile export jobs" spec describes them
(`seg_CreateExportJobRequest`, `seg_ExportJobResponse`, `seg_GetExportJobsResponse`).

The request models are what the service receives: each member's type, enumeration and bounds are declared here,
and the checks the declared types cannot say (a field path's grammar, a timestamp's range, today's messages for
the common mistakes) are `BeforeValidator`s raising `PydanticCustomError`s of type `upstack_*`. Their message
may hold `{loc}`, which api/errors.py fills with the member's dotted path and renders as is, in the family's
error shape (CONTRACT §2).

Members a model does not know are kept aside (`extra="allow"`, never serialised back) so the API can name them
in `x-upstack-warning` (api/bodies.py): the platform ignores them, and so does the service.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from upstack.schemas.base import Answer as _Answer

PROFILE_SCHEMA = "_xdm.context.profile"
SEGMENT_STATUSES = ("realized", "existing", "exited")
DEFAULT_SEGMENT_STATUSES = ("realized", "existing")
JOB_STATUSES = ("NEW", "PROCESSING", "SUCCEEDED", "FAILED")
MAX_VERSION = 2**31 - 1  # merge policy versions are INTEGER columns (schemas/merge_policies.py checks them too)
ID = 1_024  # dataset, segment, namespace and merge policy ids: longer ones name nothing
FIELDS = 100_000  # a `fields` list
SEGMENTS = 10_000  # segments of one filter
# An XDM field name (tenant fields start with "_", segment ids carry "-", identity namespaces may carry "@").
_FIELD = re.compile(r"[A-Za-z0-9_@$:\-]+(\.[A-Za-z0-9_@$:\-]+)*")
# Epoch ms of the first and last moments of years 1 and 9999: a number outside names no date the engine can
# compare with (it overflows there), so it is refused like any other malformed timestamp.
MIN_TIME_MS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_TIME_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)


def upstack_error(kind: str, message: str, **context: object) -> PydanticCustomError:
    """An error whose message is the answer's: `{loc}` becomes the member's path, `{name}` the context's text."""
    return PydanticCustomError(f"upstack_{kind}", message, {k: str(v) for k, v in context.items()})


def _got(value: Any) -> str:
    return repr(value)[:100]


# ---- member checks (the message texts are the API's, kept from the hand validators they replace) ----------

def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise upstack_error("object", "'{loc}' must be an object.")
    return value


def check_fields(value: Any) -> str:
    """`a.b,c`: empty segments and characters outside XDM names are refused."""
    if not isinstance(value, str):
        raise upstack_error("fields", "'{loc}' must be a comma-separated string of dot paths.")
    for p in (p.strip() for p in value.split(",")):
        if not _FIELD.fullmatch(p):
            raise upstack_error("fields", "'{loc}' has a malformed field path {path}: use dot paths like "
                                "'person.name.firstName', separated by commas.", path=_got(p))
    return value


def split_fields(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(","))


def time_ms(value: Any) -> int | None:
    """RFC 3339 text (a space instead of 'T' and a missing offset, read as UTC, tolerated) or epoch ms, as epoch
    ms; None when it is neither or names no date between the years 1 and 9999 (`check_time` says which)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if MIN_TIME_MS <= value <= MAX_TIME_MS else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            # More than 19 digits is past every date (and int() refuses thousands of digits outright).
            return time_ms(int(text)) if len(text) <= 19 else None
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return None
        if len(text) >= 10:
            return int((stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp() * 1000)
    return None


def check_time(value: Any) -> Any:
    if isinstance(value, bool):
        raise upstack_error("time", "'{loc}' must be an RFC 3339 timestamp or epoch milliseconds, got {got}.",
                            got=_got(value))
    if time_ms(value) is None:
        if isinstance(value, int | float) or (
                isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()):
            raise upstack_error("time", "'{loc}' must be a timestamp between the years 1 and 9999, got {got}.",
                                got=_got(value))
        raise upstack_error("time", "'{loc}' must be an RFC 3339 timestamp (e.g. 2018-10-25T13:22:04-07:00) or "
                            "epoch milliseconds, got {got}.", got=_got(value))
    return value


def _bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise upstack_error("bool", "'{loc}' must be true or false, got {got}.", got=_got(value))
    return value


def _non_empty(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise upstack_error("string", "'{loc}' must be a non-empty string.")
    return value


def _version(value: Any) -> Any:
    """A version as JSON carries it: a positive integer (1.0 counts as 1) of at most MAX_VERSION."""
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if not whole or not 1 <= value <= MAX_VERSION:
        raise upstack_error("version", "'{loc}' must be a positive integer of at most {max}, got {got}.",
                            max=MAX_VERSION, got=_got(value))
    return int(value)


def _statuses(value: Any) -> Any:
    if not isinstance(value, list) or not value or any(s not in SEGMENT_STATUSES for s in value):
        raise upstack_error("status", "'{loc}' must be a non-empty array of {allowed}; got {got}.",
                            allowed=", ".join(SEGMENT_STATUSES), got=_got(value))
    return value


def _schema_name(value: Any) -> Any:
    if value != PROFILE_SCHEMA:
        raise upstack_error("schema", "'{loc}' must be '{schema}', got {got}.", schema=PROFILE_SCHEMA, got=_got(value))
    return value


FieldList = Annotated[str, Field(max_length=FIELDS, examples=["identities.id,personalEmail.address"]),
                      BeforeValidator(check_fields)]
Timestamp = Annotated[str | int | float, BeforeValidator(check_time),
                      Field(description="RFC 3339 (e.g. 2018-10-25T13:22:04-07:00) or epoch milliseconds.",
                            examples=["2018-01-01T00:00:00+00:00"])]
Bool = Annotated[bool, BeforeValidator(_bool)]
Id = Annotated[str, Field(max_length=ID), BeforeValidator(_non_empty)]
SegmentStatus = Literal["realized", "existing", "exited"]


# ---- the request ---------------------------------------------------------------------------------------

class Member(BaseModel):
    """A request object: it must be an object; members it does not know are kept aside, never echoed."""

    model_config = ConfigDict(extra="allow", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _is_object(cls, data: Any) -> Any:
        return _object(data)

    @model_serializer(mode="wrap")
    def _known_only(self, handler: SerializerFunctionWrapHandler):  # no return type: the schema stays the model's
        out = handler(self)
        for name in self.model_extra or ():
            out.pop(name, None)
        return out


class MergePolicyRef(Member):
    id: Id = Field(examples=["timestampOrdered-none-mp"])
    version: Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_version)] | None = Field(
        None, description="Omitted or null: the policy's latest version.")

    @model_validator(mode="before")
    @classmethod
    def _has_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and (not isinstance(data.get("id"), str) or not data["id"]):
            raise upstack_error("string", "'{loc}.id' must be a non-empty string.")
        return data


class SegmentRef(Member):
    segmentId: Id = Field(examples=["52c26d0d-45f2-47a2-ab30-ed06abc981ff"])
    segmentNs: Id = "ups"
    status: Annotated[list[SegmentStatus], Field(min_length=1, max_length=len(SEGMENT_STATUSES) * 4),
                      BeforeValidator(_statuses)] = list(DEFAULT_SEGMENT_STATUSES)

    @model_validator(mode="before")
    @classmethod
    def _has_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and (not isinstance(data.get("segmentId"), str) or not data["segmentId"].strip()):
            raise upstack_error("string", "'{loc}.segmentId' is required and must be a non-empty string.")
        return data


def _segments(value: Any) -> Any:
    if not isinstance(value, list):
        raise upstack_error("segments", "'{loc}' must be an array of {segmentId, segmentNs, status}.")
    return value


class QualificationTime(Member):
    startTime: Timestamp | None = None
    endTime: Timestamp | None = None


class Filter(Member):
    segments: Annotated[list[SegmentRef], Field(max_length=SEGMENTS), BeforeValidator(_segments)] | None = None
    segmentQualificationTime: QualificationTime | None = None
    fromIngestTimestamp: Timestamp | None = None
    emptyProfiles: Bool | None = None


class EventFilter(Member):
    fromIngestTimestamp: Timestamp | None = None
    toIngestTimestamp: Timestamp | None = None


class EventList(Member):
    fields: FieldList | None = None
    filter: EventFilter | None = None


class AdditionalFields(Member):
    eventList: EventList | None = None


class Destination(Member):
    datasetId: Id = Field(validation_alias=AliasChoices("datasetId", "dataSetId"),
                          description="A profile-union dataset of this sandbox; `dataSetId` is accepted too.",
                          examples=["5b7c86968f7b6501e21ba9df"])
    segmentPerBatch: Bool = Field(False, description="One batch per segment of `filter.segments`.")

    @model_validator(mode="before")
    @classmethod
    def _has_dataset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            ds = data.get("datasetId", data.get("dataSetId"))
            if not isinstance(ds, str) or not ds:
                raise upstack_error("required", "'{loc}.datasetId' is required.")
        return data


class SchemaRef(Member):
    name: Annotated[Literal["_xdm.context.profile"], BeforeValidator(_schema_name)]


class CreateExportJob(Member):
    """POST /data/core/ups/export/jobs (`seg_CreateExportJobRequest`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "fields": "identities.id,personalEmail.address",
        "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1},
        "filter": {"segments": [{"segmentId": "52c26d0d-45f2-47a2-ab30-ed06abc981ff", "segmentNs": "ups",
                                 "status": ["realized", "existing"]}],
                   "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00+00:00",
                                                "endTime": "2018-02-01T00:00:00+00:00"},
                   "fromIngestTimestamp": "2018-01-01T00:00:00+00:00", "emptyProfiles": False},
        "additionalFields": {"eventList": {"fields": "environment.browserDetails.name",
                                           "filter": {"fromIngestTimestamp": "2018-01-01T00:00:00+00:00"}}},
        "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False},
        "schema": {"name": PROFILE_SCHEMA}}]})

    fields: FieldList | None = None
    mergePolicy: MergePolicyRef | None = Field(None, description="Omitted: the sandbox's default merge policy.")
    filter: Filter | None = None
    additionalFields: AdditionalFields | None = None
    destination: Destination
    schema_: SchemaRef = Field(alias="schema")

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise upstack_error("object", "'body' must be an object.")
        schema = data.get("schema")
        if not isinstance(schema, dict) or "name" not in schema:
            raise upstack_error("required", "'schema.name' is required.")
        if "destination" not in data:
            raise upstack_error("required", "'destination' with a 'datasetId' is required.")
        return data

    @model_validator(mode="after")
    def _per_segment_needs_segments(self) -> CreateExportJob:
        if self.destination.segmentPerBatch and not (self.filter and self.filter.segments):
            raise upstack_error("segments", "'destination.segmentPerBatch' needs 'filter.segments': one batch is "
                                "written per segment.")
        return self


# ---- the answers ---------------------------------------------------------------------------------------

class Timing(_Answer):
    startTimeInMs: int | None = None
    endTimeInMs: int | None = None
    totalTimeInMs: int | None = None


class JobMetrics(_Answer):
    totalTime: Timing | None = None
    profileExportTime: Timing | None = None
    aCPDatasetWriteTime: Timing | None = None
    totalExportedProfileCounter: int | None = None
    exportedProfileByNamespaceCounter: dict[str, int] | None = None


class JobError(_Answer):
    code: str
    msg: str
    callStack: str = ""


class ComputeGatewayJobId(_Answer):
    exportJob: str | None = None
    pushJob: str | None = None


class SegmentBatch(_Answer):
    segmentId: str
    segmentNs: str
    status: list[SegmentStatus]
    batchId: str = Field(description="\"\" once the job failed.")


class JobDestination(_Answer):
    datasetId: str
    segmentPerBatch: bool
    batchId: str | None = Field(None, description="Without segmentPerBatch; \"\" once the job failed.")
    batches: list[SegmentBatch] | None = Field(None, description="With segmentPerBatch: one batch per segment.")


class ExportJob(_Answer):
    """An export job as GET, POST and the list answer it (`seg_ExportJobResponse`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "profileInstanceId": "ups", "jobType": "BATCH", "id": 24115,
        "schema": {"name": PROFILE_SCHEMA}, "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1},
        "status": "SUCCEEDED", "requestId": "IwkVcD4RupdSmX376OBVORvcvTdA4ypN",
        "computeGatewayJobId": {"exportJob": "f3058161-7349-4ca9-807d-212cee2c2e94",
                                "pushJob": "feaeca05-d137-4605-aa4e-21d19d801fc6"},
        "metrics": {"totalTime": {"startTimeInMs": 1538615973895, "endTimeInMs": 1538616233239,
                                  "totalTimeInMs": 259344},
                    "totalExportedProfileCounter": 195, "exportedProfileByNamespaceCounter": {"Email": 195}},
        "destination": {"datasetId": "5b7c86968f7b6501e21ba9df", "segmentPerBatch": False,
                        "batchId": "da5cfb4de32c4b93a09f7e37fa53ad52"},
        "updateTime": 1538616233239, "imsOrgId": "MYORG@AdobeOrg", "creationTime": 1538615973895}]})

    profileInstanceId: Literal["ups"] = "ups"
    jobType: Literal["BATCH", "STREAMING"] = "BATCH"
    id: int = Field(description="Numbered per tenant.")
    errors: list[JobError] | None = Field(None, description="When the job failed.")
    fields: str | None = None
    filter: Filter | None = None
    additionalFields: AdditionalFields | None = None
    schema_: SchemaRef = Field(alias="schema")
    mergePolicy: MergePolicyRef
    status: Literal["NEW", "PROCESSING", "SUCCEEDED", "FAILED"]
    requestId: str
    computeGatewayJobId: ComputeGatewayJobId
    metrics: JobMetrics
    destination: JobDestination
    updateTime: int = Field(description="Epoch milliseconds.")
    imsOrgId: str
    creationTime: int = Field(description="Epoch milliseconds.")


class ListPage(_Answer):
    sortField: Literal["createdTime", "updateTime"]
    sort: Literal["asc", "desc"]
    pageOffset: str = Field(description="`<time>_<id>` of the page's last record.")
    pageSize: int


class ListLink(_Answer):
    next: str = Field(description="The next page, as `/export/jobs/?limit=N&offset=...`; \"\" on the last one.")


class ExportJobList(_Answer):
    """GET /data/core/ups/export/jobs (`seg_GetExportJobsResponse`)."""

    records: list[ExportJob]
    page: ListPage
    link: ListLink
