"""Segment definition bodies (CONTRACT §11, SEGMENTATION.md §2.1), as Adobe's segmentation spec describes them
(`CreateSegmentDefinition`, `SegmentDefinition`, `MessageResponse`, the bulk-get body and its 207 answer).

The request models check what a declared type can say (types, bounds, the one schema class); the PQL itself, the
merge policy a definition names and the name's uniqueness are services/segment_definitions.py's. Members a model
does not know are kept aside (`extra="allow"`) and named in `x-upstack-warning` (api/bodies.py).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from upstack.schemas.base import Answer
from upstack.schemas.errors import UpsErrorItem
from upstack.schemas.export_jobs import ID, Member, upstack_error
from upstack.schemas.merge_policies import (  # the member checks of the same service family, messages alike
    PROFILE_SCHEMA,
    BulkGet,
    BulkGetId,
    MergePolicySandbox,
    MergePolicySchemaClass,
    _got,
    _name,
    _object,
    read_only,
)

# Characters of a name. The name is unique per tenant: PostgreSQL's B-tree entry for (org, sandbox, name) must stay
# under 2,704 bytes, and org and sandbox headers may take 510 UTF-8 bytes each; 400 characters are at most 1,600.
NAME = 400
DESCRIPTION = 8_192
EXPRESSION = 65_536  # characters of a PQL text; the parser also caps it at 64 KiB of UTF-8
PAYLOAD_SCHEMA = 1_024
TTL_DAYS = 36_500
BULK_IDS = 1_500  # as many ids as a segment job takes before `segmentId:"*"` (SEGMENTATION.md §5)
FORMATS = ("pql/text", "pql/json")
EXAMPLE_PQL = 'homeAddress.countryCode = "US"'


def _expression_type(value: Any) -> Any:
    if value != "PQL":
        raise upstack_error("expression", "'{loc}' must be 'PQL', got {got}.", got=_got(value))
    return value


def _format(value: Any) -> Any:
    if value not in FORMATS:
        raise upstack_error("expression", "'{loc}' must be one of {allowed}, got {got}.",
                            allowed=", ".join(FORMATS), got=_got(value))
    return value


def _instance(value: Any) -> Any:
    if value != "ups":
        raise upstack_error("instance", "'{loc}' must be 'ups' (the one profile instance), got {got}.",
                            got=_got(value))
    return value


Name = Annotated[str, Field(min_length=1, max_length=NAME, examples=["US residents"]), BeforeValidator(_name)]
Description = Annotated[str, Field(max_length=DESCRIPTION, examples=["Profiles living in the United States"])]
TtlInDays = Annotated[int, Field(ge=1, le=TTL_DAYS, examples=[30])]
PolicyId = Annotated[str, Field(min_length=1, max_length=ID, examples=["timestampOrdered-none-mp"])]
SegmentId = Annotated[str, Field(min_length=1, max_length=ID, examples=["54669488-03ab-4e0d-a694-37fe49e32be8"])]


# ---- the request ---------------------------------------------------------------------------------------

class SegmentExpression(Member):
    """The definition's rule (`Expression`): PQL text. `pql/json` is Adobe's AST form, not read by this server
    yet (a 400 says so)."""

    type: Annotated[Literal["PQL"], BeforeValidator(_expression_type)] = Field(examples=["PQL"])
    format: Annotated[Literal["pql/text", "pql/json"], BeforeValidator(_format)] = Field(examples=["pql/text"])
    value: Annotated[str, Field(min_length=1, max_length=EXPRESSION, examples=[EXAMPLE_PQL])]

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        missing = [k for k in ("type", "format", "value") if k not in _object(data)]
        if missing:
            raise upstack_error("required", "'{loc}' is missing {missing}.", missing=", ".join(missing))
        return data


class SegmentSchemaClass(MergePolicySchemaClass):
    """The XDM class the definition is evaluated on (`SchemaClass`): only the profile class."""


class SegmentEvaluationMode(Member):
    enabled: bool = Field(examples=[True])


class SegmentEvaluationInfo(Member):
    """How the definition is evaluated: `batch` (segment jobs), `continuous` (streaming), `synchronous` (edge).
    A mode left out is disabled; without the whole object a definition is batch only."""

    batch: SegmentEvaluationMode | None = None
    continuous: SegmentEvaluationMode | None = None
    synchronous: SegmentEvaluationMode | None = None


class _DefinitionMembers(Member):
    """The members a client sets; the read-only ones a GET answers may be sent back and are ignored."""

    description: Description | None = None
    evaluationInfo: SegmentEvaluationInfo | None = None
    mergePolicyId: PolicyId | None = Field(None, description="A merge policy of this sandbox; without it, the "
                                                             "sandbox's default policy when the definition is made.")
    ttlInDays: TtlInDays | None = None
    profileInstanceId: Annotated[str, BeforeValidator(_instance)] | None = Field(None, examples=["ups"])
    payloadSchema: Annotated[str, Field(max_length=PAYLOAD_SCHEMA)] | None = None
    id: Any = read_only({"type": "string"})
    imsOrgId: Any = read_only({"type": "string"})
    sandbox: Any = read_only({"type": "object"})
    dataGovernancePolicy: Any = read_only({"type": "object"})
    creationTime: Any = read_only({"type": "integer"})
    updateTime: Any = read_only({"type": "integer"})
    updateEpoch: Any = read_only({"type": "integer"})
    version: Any = read_only({"type": "integer"})


EXAMPLE_REQUEST = {"name": "US residents", "description": "Profiles living in the United States",
                   "expression": {"type": "PQL", "format": "pql/text", "value": EXAMPLE_PQL},
                   "schema": {"name": PROFILE_SCHEMA}, "ttlInDays": 30,
                   "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False},
                                      "synchronous": {"enabled": False}}}


class CreateSegmentDefinition(_DefinitionMembers):
    """POST /data/core/ups/segment/definitions (`CreateSegmentDefinition`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    name: Name
    expression: SegmentExpression
    schema_: SegmentSchemaClass = Field(alias="schema")

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        missing = [k for k in ("name", "expression", "schema") if k not in _object(data, "body")]
        if missing:
            raise upstack_error("required", "Segment definition is missing required field(s): {missing}.",
                                missing=", ".join(missing))
        return data


class PatchSegmentDefinition(_DefinitionMembers):
    """PATCH /data/core/ups/segment/definitions/{id}: the whole definition (as a GET answered it, edited) or only
    the members to change; each member given replaces the stored one (an `evaluationInfo` mode left out keeps its
    value)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "CA"'}},
        {"name": "Canadian residents", "description": "Profiles living in Canada"}]})

    name: Name | None = None
    expression: SegmentExpression | None = None
    schema_: SegmentSchemaClass | None = Field(None, alias="schema")

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        return _object(data, "body")


class SegmentDefinitionBulkGetId(BulkGetId):
    id: SegmentId


class SegmentDefinitionBulkGet(BulkGet):
    """POST /data/core/ups/segment/definitions/bulk-get."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": [
        {"id": "54669488-03ab-4e0d-a694-37fe49e32be8"}, {"id": "c527dc3f-07fe-4b96-be4e-23f38e734ff8"}]}]})

    max_ids: ClassVar[int] = BULK_IDS
    ids: Annotated[list[SegmentDefinitionBulkGetId], Field(min_length=1, max_length=BULK_IDS)]


# ---- the answers ---------------------------------------------------------------------------------------

_Answer = Answer


class SegmentDataGovernancePolicy(_Answer):
    excludeOptOut: bool = Field(examples=[True])


class SegmentDefinition(_Answer):
    """A segment definition as GET, POST, PATCH, the list and bulk-get answer it (`SegmentDefinition`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "54669488-03ab-4e0d-a694-37fe49e32be8", "name": "US residents",
        "description": "Profiles living in the United States", "imsOrgId": "MYORG@AdobeOrg",
        "sandbox": {"sandboxId": "ff0f6870-c46d-11e9-8ca3-036939a64204", "sandboxName": "prod",
                    "type": "production", "default": True},
        "schema": {"name": PROFILE_SCHEMA}, "profileInstanceId": "ups",
        "expression": {"type": "PQL", "format": "pql/text", "value": EXAMPLE_PQL},
        "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False},
                           "synchronous": {"enabled": False}},
        "mergePolicyId": "timestampOrdered-none-mp", "ttlInDays": 30, "dataGovernancePolicy": {"excludeOptOut": True},
        "version": 1, "creationTime": 1764683000000, "updateTime": 1764683000000, "updateEpoch": 1764683000}]})

    id: str = Field(description="A UUID the server gives.")
    name: str
    description: str | None = None
    imsOrgId: str
    sandbox: MergePolicySandbox
    schema_: SegmentSchemaClass = Field(alias="schema")
    profileInstanceId: str
    expression: SegmentExpression
    evaluationInfo: SegmentEvaluationInfo
    mergePolicyId: str | None = Field(None, description="Absent when the sandbox had no default merge policy.")
    ttlInDays: int | None = None
    payloadSchema: str | None = None
    dataGovernancePolicy: SegmentDataGovernancePolicy
    version: int = Field(description="1, then one more each time the expression changes.")
    creationTime: int = Field(description="Epoch milliseconds of the create.")
    updateTime: int = Field(description="Epoch milliseconds of the last change.")
    updateEpoch: int = Field(description="Epoch seconds of the last change.")


class SegmentDefinitionPage(_Answer):
    totalCount: int = Field(description="Definitions matching the filters, over every page.")
    totalPages: int
    sortField: str = Field(examples=["creationTime"])
    sort: Literal["asc", "desc"]
    pageSize: int = Field(description="Definitions on this page.")
    limit: int


class SegmentDefinitionLink(_Answer):
    next: str | None = Field(None, description="The next page; absent on the last one.")


class SegmentDefinitionList(_Answer):
    """GET /data/core/ups/segment/definitions."""

    segments: list[SegmentDefinition]
    page: SegmentDefinitionPage
    link: SegmentDefinitionLink


class SegmentDefinitionDeleted(_Answer):
    """DELETE /data/core/ups/segment/definitions/{id} (`MessageResponse`)."""

    status: bool = Field(examples=[True])
    message: str = Field(examples=["Segment definition '54669488-03ab-4e0d-a694-37fe49e32be8' deleted."])


class SegmentDefinitionNotFound(_Answer):
    """A bulk-get id no definition of this sandbox has."""

    requestId: str
    errors: dict[str, list[UpsErrorItem]] = Field(examples=[{"404": [
        {"code": "UPAPI-113430-404", "message": "Segment definition 'nope' not found."}]}])


class SegmentDefinitionBulkGetAnswer(_Answer):
    """POST .../bulk-get, 207: each id asked for, with its definition or its error."""

    results: dict[str, SegmentDefinition | SegmentDefinitionNotFound]
