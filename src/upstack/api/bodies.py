"""Typed request bodies: a body is read as every JSON body is (`deps.read_json`: JSON, text/plain or no
Content-Type, bounded depth and size, CONTRACT §1), then validated with its schemas/ model; a route receives the
model. A body the model refuses is the family's 400 (api/errors.py renders pydantic's ValidationError).

Members the model does not know (kept aside by `extra="allow"` models) are ignored,
as the platform ignores them, and named: the gateway adds `x-upstack-warning: ignored member(s): a, b.c` to the
answer and keeps the warning in the request journal. With UPSTACK_STRICT_MEMBERS=true they are a 400 instead.
Members a model declares but lists in `NOT_KEPT` (the spec's, checked, then not kept) are named too, never
refused; a model with `KEEPS_UNKNOWN` stores its unknown members as sent, so they are not named.

    CreateBody = typed_body(CreateExportJob)

    @router.post("", openapi_extra=request_body(CreateExportJob))
    def create(body: CreateBody): ...
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, RootModel

from upstack.api.deps import read_json
from upstack.api.gateway import add_warning
from upstack.services.errors import Invalid

M = TypeVar("M", bound=BaseModel)
MAX_NAMED = 20  # members named in one warning


def unknown_members(model: BaseModel, prefix: str = "", *, not_kept: bool = False) -> list[str]:
    """Dotted paths of the members `model` and the models in it kept aside as unknown, in the order they came
    (a RootModel's items are named by their index alone: `[0].from`; a model whose `KEEPS_UNKNOWN` is true
    stores them as sent: they are not ignored). With `not_kept`, the members given that a model declares but
    names in its `NOT_KEPT` instead: checked, then ignored."""
    if not_kept:
        found = [prefix + name for name in getattr(model, "NOT_KEPT", ()) if name in model.model_fields_set]
    else:
        found = [] if getattr(model, "KEEPS_UNKNOWN", False) else [prefix + str(n) for n in model.model_extra or {}]
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = prefix if isinstance(model, RootModel) else prefix + (field.alias or name)
        if isinstance(value, BaseModel):
            found += unknown_members(value, key + ".", not_kept=not_kept)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += unknown_members(item, f"{key}[{i}].", not_kept=not_kept)
    return found


def _names(members: list[str]) -> str:
    """The members as one header-safe line: printable ASCII, bounded (a member name is whatever a client sent)."""
    shown = [m.encode("ascii", "backslashreplace").decode("ascii")[:100] for m in members[:MAX_NAMED]]
    text = ", ".join("".join(c if c.isprintable() else "?" for c in m) for m in shown)
    return text + (f" and {len(members) - MAX_NAMED} more" if len(members) > MAX_NAMED else "")


def warn(request: Request, text: str) -> None:
    """Adds `text` to the answer's `x-upstack-warning` header and its journal entry (several warnings of one
    request are joined with "; ")."""
    add_warning(request.scope.setdefault("state", {}), text)


def strict(request: Request) -> bool:
    """UPSTACK_STRICT_MEMBERS: what would be a warning is a 400 instead."""
    return request.app.state.ctx.settings.strict_members


def typed_body(model: type[M]) -> Any:
    """`Annotated[model, Depends(...)]`: the request's body, validated as `model`."""

    async def validated(request: Request) -> M:
        body = model.model_validate(await read_json(request))
        ignored = unknown_members(body)
        if ignored and strict(request):
            raise Invalid(f"Unknown member(s): {_names(ignored)}. The platform ignores them; this server "
                          "refuses them because UPSTACK_STRICT_MEMBERS is set.")
        ignored += unknown_members(body, not_kept=True)  # the spec's, but this server does nothing with them
        if ignored:
            warn(request, f"ignored member(s): {_names(ignored)}")
        return body

    validated.__name__ = f"{model.__name__}_body"
    return Annotated[model, Depends(validated)]


def unknown_field_paths(request: Request, unknown: list[str]) -> None:
    """Field paths of a `fields` selection that no dataset of the tenant has (services/field_paths.py): the
    platform answers without them, and so does this server, naming them; a 400 with UPSTACK_STRICT_MEMBERS."""
    if not unknown:
        return
    if strict(request):
        raise Invalid(f"Unknown field path(s): {_names(unknown)}: no dataset of this sandbox has them. The "
                      "platform ignores them; this server refuses them because UPSTACK_STRICT_MEMBERS is set.")
    warn(request, f"unknown field path(s): {_names(unknown)}")


def typed_query(model: type[M]) -> Any:
    """`Annotated[model, Depends(...)]`: the request's query parameters, validated as `model` (a schemas/ model
    with `from_query`); a refusal is the family's 400, as a body's is."""

    def validated(request: Request) -> M:
        return model.from_query(request.query_params)  # type: ignore[attr-defined]

    validated.__name__ = f"{model.__name__}_query"
    return Annotated[model, Depends(validated)]


def request_body(model: type[BaseModel], *, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` describing a required JSON request body with `model`'s schema (its $defs moved to
    the document's components by `hoist_defs`, which api/docs.py runs over the whole document)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = {k: {"value": v} for k, v in examples.items()}
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


def _without_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_without_defaults(v) for v in schema]
    return schema


def _add(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """One component per name: a model FastAPI already added for an answer is the same one (it leaves out
    `default: null`); two different models of one name would make a $ref lie, so that is refused."""
    kept = components.setdefault(name, schema)
    if kept is not schema and _without_defaults(kept) != _without_defaults(schema):
        raise ValueError(f"Two different schemas are named {name!r} in the OpenAPI document: rename one model.")


def hoist_defs(document: dict[str, Any]) -> None:
    """Move the `$defs` request_body left in operations to components.schemas (refs already point there)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = media.get("schema", {})
            for name, definition in schema.pop("$defs", {}).items():
                _add(components, name, definition)
            if "title" in schema and schema.get("type") == "object" and "$ref" not in schema:
                name = schema["title"]
                _add(components, name, schema)
                media["schema"] = {"$ref": f"#/components/schemas/{name}"}

