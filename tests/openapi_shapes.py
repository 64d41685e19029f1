"""Shape compatibility of two OpenAPI documents (ours, served at /openapi.json, and Adobe's merged spec), and
example bodies built from a spec's `example` values. Shared by tests/test_openapi_shapes.py: each service family
adds its operations there.

Compatible means: every property of Adobe's schema that ours declares too has a type ours allows (`integer` is
a `number`; a `null` alternative, which our optional members add, is ignored), recursively through objects,
array items and map values (`additionalProperties`, written `{}` in a path), $refs resolved in each document.
Properties ours does not declare are not compared (the server ignores unknown members, as the platform does);
text (descriptions, titles) never is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch")


def normalise(path: str) -> str:
    """/a/{EXPORT_JOB_ID} and /a/{job_id} are one path."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/") or "/")


def operations(doc: dict, prefix: str) -> dict[tuple[str, str], dict]:
    """(METHOD, normalised path) -> operation, for the paths under `prefix`."""
    return {(method.upper(), normalise(path)): op for path, ops in doc["paths"].items()
            if normalise(path).startswith(prefix) for method, op in ops.items() if method in METHODS}


def resolve(doc: dict, schema: dict | None) -> dict:
    seen = 0
    while schema and "$ref" in schema:
        assert schema["$ref"].startswith("#/"), schema["$ref"]
        target: Any = doc
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        schema, seen = target, seen + 1
        assert seen < 50, "a $ref cycle"
    return schema or {}


def _alternatives(doc: dict, schema: dict) -> list[dict]:
    """The schema itself, or the alternatives of its anyOf / oneOf / allOf, flattened and resolved."""
    schema = resolve(doc, schema)
    subs = [s for key in ("anyOf", "oneOf", "allOf") for s in schema.get(key, [])]
    if not subs:
        return [schema]
    return [alt for s in subs for alt in _alternatives(doc, s)]


def types(doc: dict, schema: dict) -> set[str]:
    found = set()
    for alt in _alternatives(doc, schema):
        t = alt.get("type")
        found |= set(t) if isinstance(t, list) else {t} if t else set()
    return found - {"null"}


def _compatible(theirs: set[str], ours: set[str]) -> bool:
    if not theirs or not ours:
        return True  # one side says nothing about the type
    widened = ours | ({"number"} if "integer" in ours else set())
    return bool(theirs & widened)


def _properties(doc: dict, schema: dict) -> dict[str, dict]:
    props: dict[str, dict] = {}
    for alt in _alternatives(doc, schema):
        props.update(alt.get("properties", {}))
    return props


def _items(doc: dict, schema: dict) -> dict | None:
    for alt in _alternatives(doc, schema):
        if "items" in alt:
            return alt["items"]
    return None


def _values(doc: dict, schema: dict) -> dict | None:
    """The schema of a map's values (`additionalProperties` that is a schema, as Catalog's `{"<id>": {...}}`)."""
    for alt in _alternatives(doc, schema):
        if isinstance(alt.get("additionalProperties"), dict):
            return alt["additionalProperties"]
    return None


@dataclass
class Comparison:
    theirs: dict
    ours: dict
    problems: list[str] = field(default_factory=list)
    compared: int = 0  # properties of theirs found in ours and compared

    def schemas(self, theirs: dict, ours: dict, where: str, depth: int = 0) -> None:
        if depth > 30:
            return
        t, o = types(self.theirs, theirs), types(self.ours, ours)
        if not _compatible(t, o):
            self.problems.append(f"{where}: Adobe says {sorted(t)}, we say {sorted(o)}")
            return
        ours_props = _properties(self.ours, ours)
        for name, sub in _properties(self.theirs, theirs).items():
            if name in ours_props:
                self.compared += 1
                self.schemas(sub, ours_props[name], f"{where}.{name}", depth + 1)
        t_items, o_items = _items(self.theirs, theirs), _items(self.ours, ours)
        if t_items is not None and o_items is not None:
            self.schemas(t_items, o_items, f"{where}[]", depth + 1)
        t_values, o_values = _values(self.theirs, theirs), _values(self.ours, ours)
        if t_values is not None and o_values is not None:
            self.compared += 1
            self.schemas(t_values, o_values, f"{where}{{}}", depth + 1)


def json_schema(op: dict, status: str | None = None) -> dict | None:
    """An operation's JSON request body schema (status None) or the JSON schema of one of its answers."""
    part = op.get("requestBody") if status is None else op.get("responses", {}).get(status)
    return ((part or {}).get("content") or {}).get("application/json", {}).get("schema")


def example(doc: dict, schema: dict, depth: int = 0) -> Any:
    """A body made of the `example` values of a schema's members (None where it gives none)."""
    schema = resolve(doc, schema)
    if "example" in schema:
        return schema["example"]
    if depth > 20:
        return None
    if "properties" in schema:
        built = {k: example(doc, v, depth + 1) for k, v in schema["properties"].items()}
        return {k: v for k, v in built.items() if v is not None}
    if "items" in schema:
        item = example(doc, schema["items"], depth + 1)
        return [] if item is None else [item]
    return None
