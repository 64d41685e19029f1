"""Profile Access requests and answers (CONTRACT §9), as Adobe's Profile spec describes them
(`prof_PostRequestBodyEntity`, `prof_GetEntityResponse`, the GET and DELETE query parameters of
/data/core/ups/access/entities).

The models are what services/entities.py receives: the query of a GET (one profile, or its events) and of a
DELETE, and the body of a POST (several profiles). The checks the types cannot say are `upstack_error`s whose
messages are today's (tests/test_entities.py pins them); `{loc}` is the member's dotted path (api/errors.py).

A query is a flat map of text: empty or blank values count as absent, values are stripped, and the parameters
a request does not read are left alone (the events' `limit`, `orderby`, `startTime`, `endTime` and `start` are
not even checked for a profile lookup, as before). Members of the POST body the model does not know are kept
aside (`extra="allow"`) and named in `x-upstack-warning` (api/bodies.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, RootModel, model_validator

from upstack.schemas.base import Answer as _Answer
from upstack.schemas.export_jobs import (
    FIELDS,
    ID,
    MAX_TIME_MS,
    MIN_TIME_MS,
    Member,
    check_fields,
    split_fields,
    upstack_error,
)

PROFILE = "_xdm.context.profile"
EVENT = "_xdm.context.experienceevent"
MAX_EVENTS = 1000
MAX_BATCH_IDENTITIES = 100
EVENT_ONLY = ("limit", "orderby", "orderBy", "startTime", "endTime", "start")


# ---- shared checks -------------------------------------------------------------------------------------

def field_paths(value: Any) -> tuple[str, ...] | None:
    """`fields`: a comma-separated string of dot paths, or (the POST body) an array of them; empty is none."""
    if isinstance(value, list) and all(isinstance(f, str) for f in value):
        value = ",".join(value)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str) and len(value) > FIELDS:
        raise upstack_error("fields", "'{loc}' is longer than {max} characters.", max=FIELDS)
    return split_fields(check_fields(value))


FieldPaths = Annotated[tuple[str, ...] | None, BeforeValidator(field_paths)]


def _epoch_ms(name: str):
    """A number (epoch ms, or a count) as a whole number clamped to the years 1..9999: beyond them no event
    can fall, and the engine's 64-bit arithmetic on such a bound overflows. NaN and infinities are 400."""

    def check(raw: Any) -> int | None:
        if raw is None:
            return None
        try:
            value = int(float(raw))
        except (ValueError, OverflowError, TypeError):
            raise upstack_error("number", "Query parameter '{name}' must be a number of epoch milliseconds, got "
                                "'{got}'.", name=name, got=str(raw)[:100]) from None
        return max(MIN_TIME_MS, min(value, MAX_TIME_MS))

    return BeforeValidator(check)


def _order(raw: Any) -> str:
    order = str(raw).replace(" ", "+")  # a '+' in a query string arrives as a space
    if order not in ("timestamp", "+timestamp", "-timestamp"):
        raise upstack_error("orderby", "'orderby' must be 'timestamp' or '-timestamp', got '{got}'.", got=order)
    return "-timestamp" if order == "-timestamp" else "timestamp"


def _missing(data: Mapping[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in data]
    if missing:
        raise upstack_error("required", "Missing required query parameter(s): {names}.", names=", ".join(missing))


def _query(data: Any) -> dict[str, Any]:
    """A query as the models read it: stripped text, blank values left out."""
    if not isinstance(data, Mapping):
        return data
    return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()
            if not (isinstance(v, str) and not v.strip()) and v is not None}


def _named_query(data: Any) -> Any:
    """`_query`, with its `schema.name` required (every Profile Access query names the schema it asks for)."""
    data = _query(data)
    if isinstance(data, dict):
        _missing(data, "schema.name")
    return data


Text = Annotated[str, Field(max_length=ID)]


# ---- GET ?schema.name=... (one profile, or its events) ----------------------------------------------------

class _Query(BaseModel):
    model_config = ConfigDict(extra="allow")

    _raw: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_query(cls, params: Mapping[str, str]):
        """The model of a request's query (the first value of a repeated parameter, as Starlette reads it)."""
        model = cls.model_validate(dict(params))
        model._raw = dict(params)
        return model

    @property
    def raw(self) -> dict[str, str]:
        """The query as given: the events' next page repeats it with its cursor."""
        return self._raw


class EntityQuery(_Query):
    """GET /data/core/ups/access/entities: a profile (`schema.name=_xdm.context.profile`, `entityId`,
    `entityIdNS`) or, still served though Adobe deprecated it, the events of one
    (`schema.name=_xdm.context.experienceevent`, `relatedSchema.name`, `relatedEntityId`, `relatedEntityIdNS`)."""

    schema_name: Literal["_xdm.context.profile", "_xdm.context.experienceevent"] = Field(alias="schema.name")
    entityId: Text | None = None
    entityIdNS: Text | None = None
    relatedSchema_name: Literal["_xdm.context.profile"] | None = Field(None, alias="relatedSchema.name")
    relatedEntityId: Text | None = None
    relatedEntityIdNS: Text | None = None
    fields: FieldPaths = None
    mergePolicyId: Text | None = None
    # events only
    startTime: Annotated[int | None, _epoch_ms("startTime")] = None
    endTime: Annotated[int | None, _epoch_ms("endTime")] = None
    limit: Annotated[int | None, _epoch_ms("limit")] = None
    orderby: Annotated[Literal["timestamp", "-timestamp"], BeforeValidator(_order)] = "timestamp"
    start: Text | None = Field(None, description="The event id a next page starts at (`_links.next`).")

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        data = _named_query(data)
        if not isinstance(data, dict):
            return data
        schema = data["schema.name"]
        if schema == PROFILE:
            _missing(data, "entityId", "entityIdNS")
            for name in EVENT_ONLY:  # not read for a profile, so not checked either
                data.pop(name, None)
        elif schema == EVENT:
            _missing(data, "relatedSchema.name", "relatedEntityId", "relatedEntityIdNS")
            if data["relatedSchema.name"] != PROFILE:
                raise upstack_error("schema", "'relatedSchema.name' must be '{schema}', got '{got}'.",
                                    schema=PROFILE, got=data["relatedSchema.name"])
            if "orderby" not in data and "orderBy" in data:
                data["orderby"] = data.pop("orderBy")
        else:
            raise upstack_error("schema", "'schema.name' must be '{profile}' or '{event}', got '{got}'.",
                                profile=PROFILE, event=EVENT, got=schema)
        return data

    @property
    def events(self) -> bool:
        return self.schema_name == EVENT

    @property
    def identity(self) -> tuple[str, str]:
        """(namespace, id) of the profile asked for."""
        if self.events:
            return self.relatedEntityIdNS or "", self.relatedEntityId or ""
        return self.entityIdNS or "", self.entityId or ""

    @property
    def page_size(self) -> int:
        return max(1, min(self.limit or MAX_EVENTS, MAX_EVENTS))


# ---- DELETE ?schema.name=_xdm.context.profile&entityId&entityIdNS ----------------------------------------

class EntityDeleteQuery(_Query):
    """DELETE /data/core/ups/access/entities: the profile of one identity."""

    schema_name: Literal["_xdm.context.profile"] = Field(alias="schema.name")
    entityId: Text
    entityIdNS: Text
    mergePolicyId: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        data = _named_query(data)
        if not isinstance(data, dict):
            return data
        if data["schema.name"] != PROFILE:
            raise upstack_error("schema", "'schema.name' must be '{schema}' to delete a profile, got '{got}'.",
                                schema=PROFILE, got=data["schema.name"])
        _missing(data, "entityId", "entityIdNS")
        return data

    @property
    def identity(self) -> tuple[str, str]:
        return self.entityIdNS, self.entityId


# ---- POST (several profiles) ---------------------------------------------------------------------------

def _schema_name(value: Any) -> Any:
    if value != PROFILE:
        raise upstack_error("schema", "'schema.name' must be '{schema}' (several entities are looked up for "
                            "profiles only).", schema=PROFILE)
    return value


class EntitySchema(Member):
    name: Annotated[Literal["_xdm.context.profile"], BeforeValidator(_schema_name)]


class EntityNamespace(Member):
    code: Text


class EntityIdentity(Member):
    """`{entityId, entityIdNS: {code}}`; upstack also takes `entityIdNS` as the code itself."""

    entityId: Text
    entityIdNS: EntityNamespace | Text
    relatedEntityId: Text | None = Field(None, description="Accepted; not read (events are not looked up here).")

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, data: Any) -> Any:
        ns = data.get("entityIdNS") if isinstance(data, dict) else None
        ns = ns.get("code") if isinstance(ns, dict) else ns
        if not isinstance(data.get("entityId") if isinstance(data, dict) else None, str) or not isinstance(ns, str):
            raise upstack_error("identity", "'{loc}' needs a string 'entityId' and 'entityIdNS': "
                                "{\"code\": \"...\"}.")
        return data

    @property
    def pair(self) -> tuple[str, str]:
        ns = self.entityIdNS
        return (ns.code if isinstance(ns, EntityNamespace) else ns), self.entityId


def _identities(value: Any) -> Any:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BATCH_IDENTITIES:
        raise upstack_error("identities", "'identities' must be an array of 1 to {max} {entityId, entityIdNS}.",
                            max=MAX_BATCH_IDENTITIES)
    return value


def _string(value: Any) -> Any:
    if not isinstance(value, str):
        raise upstack_error("string", "'{loc}' must be a string.")
    return value


Number = Annotated[int | float, Field(description="Epoch milliseconds.")]


class EntityTimeFilter(Member):
    """Adobe's time window for ExperienceEvents: accepted, not read (this form looks up profiles only)."""

    startTime: Number | None = None
    endTime: Number | None = None


class EntitiesRequest(Member):
    """POST /data/core/ups/access/entities (`prof_PostRequestBodyEntity`): the profiles of up to 100 identities
    under one merge policy. `timeFilter`, `limit` and `orderBy` are Adobe's event members, accepted and not read."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "schema": {"name": PROFILE}, "fields": ["person.name", "workEmail"],
        "identities": [{"entityId": "89149270342662559642753730269986316601", "entityIdNS": {"code": "ECID"}},
                       {"entityId": "janedoe@example.com", "entityIdNS": {"code": "Email"}}],
        "mergePolicyId": "timestampOrdered-none-mp"}]})

    schema_: EntitySchema = Field(alias="schema")
    identities: Annotated[list[EntityIdentity], BeforeValidator(_identities)]
    fields: Annotated[FieldPaths, Field(examples=[["person.name", "workEmail"]],
                                        description="Dot paths; a comma-separated string is taken too.")] = None
    mergePolicyId: Annotated[str | None, BeforeValidator(lambda v: v if v is None else _string(v)),
                             Field(max_length=ID)] = None
    timeFilter: EntityTimeFilter | None = None
    limit: Number | None = None
    orderBy: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _object_with_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise upstack_error("object", "Request body must be a JSON object.")
        schema = data.get("schema")
        if not isinstance(schema, dict) or schema.get("name") != PROFILE:
            _schema_name(None)
        return data

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [item.pair for item in self.identities]


# ---- the answers ---------------------------------------------------------------------------------------

class ProfileEntity(_Answer):
    """One merged profile (`prof_Entity`): its id, the datasets it came from, its XDM attributes."""

    entityId: str = Field(description="The identity the profile was looked up by (its id).")
    sources: list[str] = Field(description="Ids of the datasets its fragments came from.")
    entity: dict[str, Any] = Field(description="The merged XDM profile, without null members.")
    lastModifiedAt: str | None = Field(description="RFC 3339, UTC, of its latest fragment.",
                                       examples=["2024-02-01T00:00:00.000Z"])


class ProfileEntityMap(RootModel[dict[str, ProfileEntity]]):
    """`{<profile id>: entity}` (`prof_GetEntityResponse`): one entry per profile found."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"GuQ-AUFjgjaeIw": {
        "entityId": "ann@x.com", "sources": ["65f1c0ffee0000000000a001"],
        "entity": {"identityMap": {"Email": [{"id": "ann@x.com", "primary": True}]},
                   "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}},
        "lastModifiedAt": "2024-01-01T00:00:00.000Z"}}]})


class ProfileEventsPageInfo(_Answer):
    orderby: Literal["timestamp", "-timestamp"]
    start: str = Field(description="The first event's id on this page; \"\" when it is empty.")
    count: int
    next: str = Field(description="The next page's first event id; \"\" on the last page.")


class ProfileEvent(_Answer):
    relatedEntityId: str = Field(description="The profile's identity the events were asked for.")
    entityId: str = Field(description="The event's `_id`.")
    timestamp: int | None = Field(description="Epoch milliseconds.")
    entity: dict[str, Any]


class ProfileEventsNext(_Answer):
    href: str = Field(description="The next page's path and query; \"\" on the last page.")


class ProfileEventsLinks(_Answer):
    next: ProfileEventsNext


class ProfileEventsPage(_Answer):
    """GET with `schema.name=_xdm.context.experienceevent`: one page of the profile's events by timestamp."""

    page: ProfileEventsPageInfo = Field(alias="_page")
    children: list[ProfileEvent]
    links: ProfileEventsLinks = Field(alias="_links")


class ProfileAnswer(RootModel[ProfileEntityMap | ProfileEventsPage]):
    """GET: the profile (`schema.name=_xdm.context.profile`) or a page of its events."""
