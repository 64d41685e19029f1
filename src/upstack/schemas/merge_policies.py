"""Merge policy bodies (CONTRACT §5), as Adobe's Real-Time Customer Profile spec describes them
(`prof_PostMergePolicy`, `prof_MergePolicy`, `prof_PatchOperation`, `prof_MergePoliciesResponse` and the
bulk-get body and 207 answer).

The request models are what the service receives; as in schemas/export_jobs.py, the checks a declared type cannot
say, and today's messages for the common mistakes, are `BeforeValidator`s (or `before` model validators) raising
`upstack_*` errors whose `{loc}` api/errors.py fills with the member's path. What needs the database (the datasets
`attributeMerge.order` names, the policy a path names) stays in services/merge_policies.py.

Members a model does not know are kept aside (`extra="allow"`) and named in `x-upstack-warning` (api/bodies.py).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, RootModel, model_validator
from pydantic_core import PydanticCustomError

from upstack.schemas.base import Answer
from upstack.schemas.errors import UpsErrorItem
from upstack.schemas.export_jobs import ID, MAX_VERSION, Member, upstack_error

PROFILE_SCHEMA = "_xdm.context.profile"
IDENTITY_GRAPHS = ("none", "pdg")
ATTRIBUTE_MERGES = ("timestampOrdered", "dataSetPrecedence")
PATCH_PATHS = ("/name", "/default", "/isActiveOnEdge", "/identityGraph.type", "/attributeMerge.type")
# JSON Pointer spelling (/identityGraph/type) is the same path as AEP's dotted one.
PATCH_SPELLINGS = (*PATCH_PATHS, "/identityGraph/type", "/attributeMerge/type")
NAME = 1_024  # a policy's name
ORDER = 1_000  # datasets of one precedence order
OPERATIONS = 1_000  # operations of one PATCH
BULK_IDS = 100  # ids of one bulk-get


def _got(value: Any) -> str:
    return repr(value)[:100]


# ---- member checks (the message texts are the API's, kept from the hand validators they replace) ----------

def _object(value: Any, what: str = "{loc}") -> dict:
    if not isinstance(value, dict):
        raise upstack_error("object", f"'{what}' must be an object.")
    return value


def as_flag(value: Any) -> bool | None:
    """true/false, also as text in any case (a query parameter, or a client that quotes its booleans); None
    when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _flag(value: Any) -> bool:
    flag = as_flag(value)
    if flag is None:
        raise upstack_error("bool", "'{loc}' must be a boolean, got {got}.", got=_got(value))
    return flag


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise upstack_error("string", "'{loc}' must be a non-empty string.")
    return value


def _version(value: Any, what: str = "{loc}") -> int:
    """A version as JSON carries it: a positive integer (1.0 counts as 1) of at most MAX_VERSION."""
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if not whole or not 1 <= value <= MAX_VERSION:
        raise upstack_error("version", f"'{what}' must be a positive integer of at most {{max}}, got {{got}}.",
                            max=MAX_VERSION, got=_got(value))
    return int(value)


def _not_one_of(allowed: tuple[str, ...], value: Any, member: str = "") -> PydanticCustomError:
    return upstack_error("enum", f"'{{loc}}{member}' must be one of {{allowed}}; got {{got}}.",
                         allowed=", ".join(allowed), got=_got(value))


def _one_of(allowed: tuple[str, ...]):
    def check(value: Any) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise _not_one_of(allowed, value)
        return value
    return check


def _schema_name(value: Any) -> Any:
    if value != PROFILE_SCHEMA:
        raise upstack_error("schema", "'{loc}' must be '{schema}', got {got}.", schema=PROFILE_SCHEMA, got=_got(value))
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION), BeforeValidator(_version)]
DatasetId = Annotated[str, Field(min_length=1, max_length=ID)]
PolicyId = Annotated[str, Field(min_length=1, max_length=ID, examples=["10648288-cda5-11e8-a8d5-f2801f1b9fd1"])]


def read_only(kind: dict[str, Any]) -> Any:
    """A member a GET answers and a client may send back on PUT (GET, edit, PUT): accepted as anything, ignored."""
    return Field(None, json_schema_extra={**kind, "readOnly": True},
                 description="Read-only: what a GET answered may be sent back; it is ignored.")


# ---- the request ---------------------------------------------------------------------------------------

class MergePolicySchemaClass(Member):
    """The XDM class the policy is for (`prof_SchemaClass`): only the profile class."""

    name: Annotated[Literal["_xdm.context.profile"], BeforeValidator(_schema_name)]

    @model_validator(mode="before")
    @classmethod
    def _has_name(cls, data: Any) -> Any:
        if "name" not in _object(data):
            raise upstack_error("schema", "'{loc}.name' must be '{schema}', got None.", schema=PROFILE_SCHEMA)
        return data


class MergePolicyIdentityGraph(Member):
    """Which related identities are merged (`prof_IdentityGraph`)."""

    type: Annotated[Literal["none", "pdg"], BeforeValidator(_one_of(IDENTITY_GRAPHS))] = Field(examples=["pdg"])

    @model_validator(mode="before")
    @classmethod
    def _has_type(cls, data: Any) -> Any:
        if "type" not in _object(data):
            raise _not_one_of(IDENTITY_GRAPHS, None, ".type")
        return data


class MergePolicyAttributeMerge(Member):
    """Which fragment's attribute wins (`prof_AttributeMerge`): the latest (timestampOrdered) or the first
    dataset of `order` that has it (dataSetPrecedence)."""

    type: Annotated[Literal["timestampOrdered", "dataSetPrecedence"], BeforeValidator(_one_of(ATTRIBUTE_MERGES))] = \
        Field(examples=["timestampOrdered"])
    order: Annotated[list[DatasetId], Field(min_length=1, max_length=ORDER)] | None = Field(
        None, description="dataSetPrecedence only: distinct dataset ids of this sandbox, the first wins.")

    @model_validator(mode="before")
    @classmethod
    def _order_fits_type(cls, data: Any) -> Any:
        kind = _object(data).get("type", None)
        if "type" not in data:
            raise _not_one_of(ATTRIBUTE_MERGES, None, ".type")
        if kind == "timestampOrdered":
            if data.get("order"):
                raise upstack_error("order", "'{loc}.order' is only allowed with type dataSetPrecedence.")
            return {k: v for k, v in data.items() if k != "order"}  # an empty order is no order
        if kind == "dataSetPrecedence":
            order = data.get("order")
            if not isinstance(order, list) or not order or not all(isinstance(d, str) and d for d in order):
                raise upstack_error("order", "'{loc}.order' must be a non-empty array of dataset ids for "
                                    "dataSetPrecedence.")
            if len(set(order)) != len(order):
                raise upstack_error("order", "'{loc}.order' names a dataset more than once.")
        return data


class MergePolicyRequest(Member):
    """POST (`prof_PostMergePolicy`) and PUT (`prof_MergePolicy`) /data/core/ups/config/mergePolicies. On PUT,
    an absent `name`, `default` or `isActiveOnEdge` keeps its current value; the read-only members a GET answers
    may be sent back and are ignored (a `version` must still be a version)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "real-time-customer-profile-default", "schema": {"name": PROFILE_SCHEMA},
        "identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "timestampOrdered"},
        "default": True, "isActiveOnEdge": False}]})

    id: Any = read_only({"type": "string"})
    name: Annotated[str, Field(max_length=NAME, examples=["real-time-customer-profile-default"]),
                    BeforeValidator(_name)] = Field(None, description="Omitted on POST: the policy's id.")
    imsOrgId: Any = read_only({"type": "string"})
    sandbox: Any = read_only({"type": "object"})
    schema_: MergePolicySchemaClass = Field(alias="schema")
    version: Version | None = Field(None, description="Read-only: a version a GET answered is ignored.")
    identityGraph: MergePolicyIdentityGraph
    attributeMerge: MergePolicyAttributeMerge
    default: Flag = Field(False, description="The sandbox's default policy for the schema (the previous one stops "
                                             "being it). `\"true\"` and `\"false\"` are read as booleans.")
    isActiveOnEdge: Flag = Field(False, description="Active on edge: at most one policy of a sandbox.")
    updateEpoch: Any = read_only({"type": "integer"})

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        _object(data, "body")
        missing = [k for k in ("attributeMerge", "identityGraph", "schema") if k not in data]
        if missing:
            if data.get("version") is not None:
                _version(data["version"], "version")  # the first mistake is named first, as before
            raise upstack_error("required", "Merge policy is missing required field(s): {missing}.",
                                missing=", ".join(missing))
        return data


class MergePolicyPatchOperation(Member):
    """One change (`prof_PatchOperation`): `add` (or its JSON Patch synonym `replace`) a value at a path."""

    op: Literal["add", "replace"] = Field(examples=["add"])
    path: Literal[PATCH_SPELLINGS] = Field(examples=["/identityGraph.type"],
                                           description="A member a client may change; JSON Pointer spelling "
                                                       "(`/identityGraph/type`) is the same path.")
    value: Any = Field(examples=["pdg"], description="The new value, checked as in a whole policy.")

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        _object(data, "operation")
        if data.get("op") not in ("add", "replace"):
            raise upstack_error("op", "Unsupported patch op {got}; use 'add' or 'replace'.", got=_got(data.get("op")))
        if "value" not in data:
            raise upstack_error("value", "Every patch operation needs a 'value'.")
        if not isinstance(data.get("path"), str) or data["path"] not in PATCH_SPELLINGS:
            raise upstack_error("path", "Unsupported patch path {got}; supported: {paths}.",
                                got=_got(data.get("path")), paths=", ".join(PATCH_PATHS))
        return data

    @property
    def target(self) -> str:
        """The path in AEP's dotted spelling: one of PATCH_PATHS."""
        return "/" + self.path[1:].replace("/", ".")


def _operations(value: Any) -> Any:
    value = [value] if isinstance(value, dict) else value
    if not isinstance(value, list) or not value:
        raise upstack_error("operations", "PATCH body must be an operation {op, path, value} or a non-empty array "
                            "of them.")
    return value


def _one_or_many(schema: dict[str, Any]) -> None:
    """The body's schema says what is accepted: one operation, or an array of them (Adobe's spelling)."""
    array = {k: schema.pop(k) for k in ("type", "items", "minItems", "maxItems") if k in schema}
    schema["anyOf"] = [array, array["items"]]


class MergePolicyPatch(RootModel[Annotated[list[MergePolicyPatchOperation],
                                           Field(min_length=1, max_length=OPERATIONS), BeforeValidator(_operations)]]):
    """PATCH /data/core/ups/config/mergePolicies/{id}: applied in order, the policy checked whole after each."""

    model_config = ConfigDict(json_schema_extra=_one_or_many)


class BulkGetId(Member):
    """One entry of a bulk-get's `ids` (merge policies, segment definitions): subclasses type `id`."""

    @model_validator(mode="before")
    @classmethod
    def _has_id(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise upstack_error("ids", "Every entry of 'ids' must be an object with a string 'id'.")
        return data


class BulkGet(Member):
    """A bulk-get body `{"ids": [{"id": ...}]}` of 1 to `max_ids` entries: subclasses type `ids`."""

    max_ids: ClassVar[int] = BULK_IDS

    @model_validator(mode="before")
    @classmethod
    def _ids(cls, data: Any) -> Any:
        ids = _object(data, "body").get("ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= cls.max_ids:
            raise upstack_error("ids", "'ids' must be an array of 1 to {max} objects {\"id\": \"...\"}.",
                                max=cls.max_ids)
        return data


class MergePolicyBulkGetId(BulkGetId):
    id: PolicyId


class MergePolicyBulkGet(BulkGet):
    """POST /data/core/ups/config/mergePolicies/bulk-get."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": [
        {"id": "10648288-cda5-11e8-a8d5-f2801f1b9fd1"}, {"id": "42d4a596-b1c6-46c0-994e-ca5ef1f85130"}]}]})

    ids: Annotated[list[MergePolicyBulkGetId], Field(min_length=1, max_length=BULK_IDS)]


# ---- the answers ---------------------------------------------------------------------------------------

_Answer = Answer


class MergePolicySandbox(_Answer):
    sandboxId: str
    sandboxName: str = Field(examples=["prod"])
    type: Literal["production", "development"]
    default: bool = Field(description="True for `prod`, the org's default sandbox.")


class MergePolicy(_Answer):
    """A merge policy as GET, POST, PUT, PATCH, the list and bulk-get answer it (`prof_MergePolicy`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "timestampOrdered-none-mp", "name": "Default Timebased", "imsOrgId": "MYORG@AdobeOrg",
        "sandbox": {"sandboxId": "ff0f6870-c46d-11e9-8ca3-036939a64204", "sandboxName": "prod",
                    "type": "production", "default": True},
        "schema": {"name": PROFILE_SCHEMA}, "version": 1, "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "timestampOrdered"}, "isActiveOnEdge": False, "default": True,
        "updateEpoch": 1552086578}]})

    id: str
    name: str
    imsOrgId: str
    sandbox: MergePolicySandbox
    schema_: MergePolicySchemaClass = Field(alias="schema")
    version: int = Field(description="1, then one more per change.")
    identityGraph: MergePolicyIdentityGraph
    attributeMerge: MergePolicyAttributeMerge
    isActiveOnEdge: bool
    default: bool
    updateEpoch: int = Field(description="Epoch seconds of the last change.")


class MergePolicyPage(_Answer):
    totalCount: int
    pageSize: int
    count: int
    next: str = Field(description="The `start` of the next page; \"\" on the last one.")


class MergePolicyHref(_Answer):
    href: str = Field(description="The next page; \"\" on the last one.")


class MergePolicyLinks(_Answer):
    next: MergePolicyHref


class MergePolicyList(_Answer):
    """GET /data/core/ups/config/mergePolicies (`prof_MergePoliciesResponse`)."""

    page: MergePolicyPage = Field(alias="_page")
    children: list[MergePolicy]
    links: MergePolicyLinks = Field(alias="_links")


class MergePolicyNotFound(_Answer):
    """A bulk-get id no policy of this sandbox has."""

    requestId: str
    errors: dict[str, list[UpsErrorItem]] = Field(examples=[{"404": [
        {"code": "UPAPI-113430-404", "message": "Merge policy 'nope' not found."}]}])


class MergePolicyBulkGetAnswer(_Answer):
    """POST .../bulk-get, 207: each id asked for, with its policy or its error."""

    results: dict[str, MergePolicy | MergePolicyNotFound]
