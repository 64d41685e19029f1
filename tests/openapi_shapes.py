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

METHODS = ("get", "put", "post", "delete", "patch", "head")


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


# ---- real answers against our document ------------------------------------------------------------------

JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, JSON_TYPES[kind])


def conforms(doc: dict, schema: dict, value: Any, where: str = "body") -> list[str]:
    """What of `value` the schema does not allow, as `where.path: why` lines (none: it conforms). The subset of
    JSON Schema our document uses: $ref, anyOf/oneOf/allOf, type, enum, const, required, properties, items,
    additionalProperties, length, bounds, pattern.

    Stricter than JSON Schema in one way: an object schema that lists `properties` admits no other member, even
    with `additionalProperties: true` (our answer models keep unknown members aside when they read, which adds
    it). So an answer member the document does not describe is found; a map (`additionalProperties` and no
    `properties`) admits any member its values' schema allows."""
    schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            tried = [conforms(doc, alt, value, where) for alt in schema[key]]
            if all(tried):
                return [f"{where}: no alternative of {key} fits: " + " | ".join(p[0] for p in tried)]
    problems = [p for sub in schema.get("allOf", []) for p in conforms(doc, sub, value, where)]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in kinds):
            return problems + [f"{where}: {type(value).__name__} {str(value)[:60]!r}, the schema says {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is none of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{where}: length {len(value)} is out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value[:60]!r} does not match {schema['pattern']}")
    if _is(value, "number"):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            problems.append(f"{where}: {value} is out of bounds")
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        problems += [f"{where}.{name}: required, missing" for name in schema.get("required", ()) if name not in value]
        for name, member in value.items():
            if name in props:
                problems += conforms(doc, props[name], member, f"{where}.{name}")
            elif props or extra is False:
                problems.append(f"{where}.{name}: not in the schema")
            elif isinstance(extra, dict):
                problems += conforms(doc, extra, member, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += conforms(doc, schema["items"], item, f"{where}[{i}]")
    return problems


def answer_problems(doc: dict, method: str, path: str, response: Any, *, json_lines: bool = False) -> list[str]:
    """What our document does not say of a real answer to `METHOD path` (a template, `{}` for each parameter):
    its status must be declared, with its media type, and a JSON body must conform to its schema (each line of
    it, with `json_lines`)."""
    name = f"{method} {path} {response.status_code}"
    op = operations(doc, path).get((method.upper(), normalise(path)))
    if op is None:
        return [f"{name}: no such operation in the document"]
    declared = op["responses"].get(str(response.status_code))
    if declared is None:
        return [f"{name}: the status is not declared (only {sorted(op['responses'])})"]
    content = declared.get("content", {})
    if not response.content:
        return []
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if media not in content:
        return [f"{name}: {media} is not declared (only {sorted(content)})"]
    if media != "application/json" and not media.endswith("+json"):
        return []
    schema = content[media]["schema"]
    if json_lines:
        import json

        return [p for i, line in enumerate(response.text.splitlines())
                for p in conforms(doc, schema, json.loads(line), f"{name} line {i}")]
    return conforms(doc, schema, response.json(), name)
