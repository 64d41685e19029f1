"""Hostile inputs on every write endpoint (and the query strings of the reads): generated bodies that are deep,
wide, of the wrong types, hold NUL characters or huge numbers, are not JSON at all or come with odd content
types. None may answer 5xx, and the server must be healthy after each one (CONTRACT §12).

Each body starts from a valid request of its endpoint, so the generator reaches past the first check, and
then has members replaced, dropped or added. `HOSTILE_EXAMPLES` scales the run (CI uses the default).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import HEADERS
from tests.ingest_helpers import CATALOG, IMPORT, OCTET, PROFILE_SCHEMA, json_lines, person

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "60"))
UPS = "/data/core/ups"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
SEEN = {"requests": 0, "5xx": 0}


# -- values --------------------------------------------------------------------------------------------

NAMES = ["name", "description", "schemaRef", "id", "contentType", "tags", "fileDescription", "format", "datasetId",
         "dataSetId", "inputFormat", "isMultiLineJson", "mergePolicy", "version", "destination", "segmentPerBatch",
         "schema", "fields", "filter", "segments", "segmentId", "segmentNs", "status", "fromIngestTimestamp",
         "emptyProfiles", "additionalFields", "eventList", "attributeMerge", "type", "order", "identityGraph",
         "default", "isActiveOnEdge", "op", "path", "value", "ids", "org", "sandbox", "kind", "subjectId",
         "jobPacing", "mode", "delaySeconds", "faults", "failNextJobs", "count", "latencyMs", "method", "message",
         "relatedObjects", "unifiedProfile", "limit", "start"]
STRINGS = ["", " ", "\x00", "a\x00b", "\u202e\ufeff", "😀" * 5, "x" * 5000, "../../etc/passwd", "%00", "prod",
           "_xdm.context.profile", "enabled:true", "timestampOrdered", "dataSetPrecedence", "pdg", "none", "json",
           "parquet", "COMPLETE", "desc:created", "asc:tags", "identities.id,person.name", "2018-10-25T13:22:04-07:00",
           "not-a-date", "9" * 40, "-1", "1e309", "NaN", "true", "null", "{", "*", "/name", "add", "replace"]
NUMBERS = [0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**20, -(10**20), 10**400, 1e23, 1e300, -1e300, 5e-324,
           0.5, -0.0]


def scalars() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.sampled_from(STRINGS),
                     st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(st.characters(codec="utf-8"), max_size=20))


def keys() -> st.SearchStrategy:
    return st.sampled_from(NAMES) | st.text(st.characters(codec="utf-8"), max_size=12)


def values() -> st.SearchStrategy:
    return st.recursive(scalars(), lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys(), inner, max_size=5),
                        max_leaves=25)


def nested(levels: int, leaf: object = "x") -> object:
    for _ in range(levels):
        leaf = {"a": leaf} if levels % 2 else [leaf]
    return leaf


def special_values() -> st.SearchStrategy:
    """Shapes the recursive strategy rarely reaches: deep, wide, long."""
    return st.one_of(
        st.integers(20, 250).map(nested),
        st.integers(100, 3000).map(lambda n: {f"f{i}": i for i in range(n)}),
        st.integers(100, 5000).map(lambda n: list(range(n))),
        st.just("x" * 200_000),
    )


@st.composite
def mutated(draw, base: object) -> object:
    """`base` with some members replaced by hostile values, dropped, or joined by unknown ones."""
    if isinstance(base, dict):
        out = {}
        for key, value in base.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # dropped
            if choice <= 2:
                out[key] = draw(values() | special_values())
            else:
                out[key] = draw(mutated(value))
        for key, value in draw(st.dictionaries(keys(), values(), max_size=2)).items():
            out.setdefault(key, value)
        return out
    if isinstance(base, list):
        return [draw(mutated(v)) for v in base] + draw(st.lists(values(), max_size=2))
    return draw(st.sampled_from([base, base, base]) | scalars())


def encode(value: object) -> bytes:
    # Python's json writes what orjson refuses to (integers past 64 bits, nesting past 255 levels).
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def raw_body(draw, base: object) -> tuple[bytes, str | None]:
    """A request body and its Content-Type: mostly mutated JSON, sometimes not JSON or not labelled as it."""
    kind = draw(st.integers(0, 9))
    if kind <= 6:
        body = encode(draw(mutated(base) | values() | special_values()))
    elif kind == 7:
        text = encode(base)
        body = text[: draw(st.integers(0, max(0, len(text) - 1)))]  # truncated JSON
    elif kind == 8:
        body = draw(st.binary(max_size=200) | st.sampled_from([b"\xff\xfe", b"{\"a\":\"\xed\xa0\x80\"}", b"[" * 5000,
                                                               b"{" * 100 + b"}" * 100, b"1" * 1000, b"null"]))
    else:
        body = encode(base)
    ctype = draw(st.sampled_from(["application/json"] * 6 + [None, "text/plain", "application/xml",
                                 "application/json; charset=latin-1", "multipart/form-data; boundary=x",
                                 "application/x-www-form-urlencoded", "application/vnd.adobe.xed+json", "\x7f"]))
    return body, ctype


# -- the tenant's objects, so bodies can name real ids ----------------------------------------------------

@dataclass
class World:
    profile_ds: str
    union_ds: str
    batch: str
    policy: str
    job: int
    ids: list = field(default_factory=list)


def _create(client, path: str, body: dict, status: int = 201) -> dict | list:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def world(client, run_jobs) -> World:
    profile = _create(client, f"{CATALOG}/dataSets", {"name": "p", "schemaRef": {"id": PROFILE_SCHEMA,
                      "contentType": "application/vnd.adobe.xed+json"}, "tags": {"unifiedProfile": ["enabled:true"]}})
    union = _create(client, f"{CATALOG}/dataSets", {"name": "u", "schemaRef": {"id": UNION, "contentType": "x"}})
    profile_ds, union_ds = profile[0].split("/")[-1], union[0].split("/")[-1]
    batch = _create(client, f"{IMPORT}/batches", {"datasetId": profile_ds, "inputFormat": {"format": "json"}})["id"]
    assert client.put(f"{IMPORT}/batches/{batch}/datasets/{profile_ds}/files/a.json", content=json_lines([person(1)]),
                      headers=OCTET).status_code == 200
    policy = _create(client, f"{UPS}/config/mergePolicies", POLICY, status=200)["id"]
    job = _create(client, f"{UPS}/export/jobs", {"destination": {"datasetId": union_ds},
                                                 "schema": {"name": "_xdm.context.profile"}}, status=200)["id"]
    return World(profile_ds, union_ds, batch, policy, job, [profile_ds, union_ds, batch, policy, str(job)])


POLICY = {"name": "mp", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
          "attributeMerge": {"type": "timestampOrdered"}, "default": False, "isActiveOnEdge": False}


def bodies(w: World) -> dict[str, tuple[str, str, object]]:
    """Endpoint name -> (method, path, a valid body)."""
    job = {"fields": "person.name", "mergePolicy": {"id": w.policy, "version": 1},
           "additionalFields": {"eventList": {"fields": "web", "filter": {"fromIngestTimestamp": "2018-10-25T13:22:04Z"}}},
           "destination": {"datasetId": w.union_ds, "segmentPerBatch": False}, "schema": {"name": "_xdm.context.profile"},
           "filter": {"segments": [{"segmentId": "s", "segmentNs": "ups", "status": ["realized"]}],
                      "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00Z", "endTime": "2019-01-01T00:00:00Z"},
                      "fromIngestTimestamp": "2018-01-01T00:00:00Z", "emptyProfiles": False}}
    dataset = {"name": "d", "description": "x", "schemaRef": {"id": PROFILE_SCHEMA, "contentType": "application/json"},
               "tags": {"unifiedProfile": ["enabled:true"]}, "fileDescription": {"format": "parquet"}}
    catalog_batch = {"status": "loading", "relatedObjects": [{"type": "dataSet", "id": w.profile_ds, "tag": "input"}],
                     "inputFormat": {"format": "json", "isMultiLineJson": False, "charset": "UTF-8"},
                     "externalId": "e", "tags": {"a": ["b"]}, "replay": {"predecessors": [w.batch], "reason": "r"},
                     "availableDates": {"startDate": 1, "endDate": 2}, "size": 1, "started": 1, "errors": []}
    return {
        "create dataset": ("POST", f"{CATALOG}/dataSets", dataset),
        "patch dataset": ("PATCH", f"{CATALOG}/dataSets/{w.profile_ds}", {"name": "n", "tags": {"a": ["b"]}}),
        "put dataset": ("PUT", f"{CATALOG}/dataSets/{w.profile_ds}", dataset),
        "create catalog batch": ("POST", f"{CATALOG}/batches", {"datasetId": w.profile_ds,
                                                                "relatedObjects": [{"type": "dataSet", "id": w.profile_ds}]}),
        "create catalog batch with id": ("POST", f"{CATALOG}/batches/hostile-batch-1", catalog_batch),
        "put catalog batch": ("PUT", f"{CATALOG}/batches/{w.batch}", catalog_batch),
        "patch catalog batch": ("PATCH", f"{CATALOG}/batches/{w.batch}", {"tags": {"a": ["b"]}, "status": "loading"}),
        "create import batch": ("POST", f"{IMPORT}/batches", {"datasetId": w.profile_ds,
                                                              "inputFormat": {"format": "json", "isMultiLineJson": False}}),
        "create merge policy": ("POST", f"{UPS}/config/mergePolicies", POLICY),
        "put merge policy": ("PUT", f"{UPS}/config/mergePolicies/{w.policy}", dict(POLICY, version=1)),
        "patch merge policy": ("PATCH", f"{UPS}/config/mergePolicies/{w.policy}",
                               [{"op": "add", "path": "/name", "value": "x"}]),
        "bulk-get merge policies": ("POST", f"{UPS}/config/mergePolicies/bulk-get", {"ids": [{"id": w.policy}]}),
        "create export job": ("POST", f"{UPS}/export/jobs", job),
        "controls": ("PUT", "/_upstack/controls", {"jobPacing": {"mode": "immediate"}, "faults": [],
                                                   "failNextJobs": []}),
        "release jobs": ("POST", "/_upstack/jobs/release", {"kind": "export", "subjectId": str(w.job)}),
        "reset one tenant": ("POST", "/_upstack/reset", {"org": "HOSTILE@AdobeOrg", "sandbox": "prod"}),
        "create sandbox": ("POST", "/_upstack/sandboxes", {"org": "HOSTILE@AdobeOrg", "sandbox": "hostile-sb"}),
    }


def send(client, method: str, path: str, body: bytes | None, ctype: str | None, **kw):
    headers = dict(HEADERS)
    if ctype is not None:
        headers["Content-Type"] = ctype
    r = client.request(method, path, content=body, headers=headers, **kw)
    SEEN["requests"] += 1
    if r.status_code >= 500:
        SEEN["5xx"] += 1
    assert r.status_code < 500, f"{method} {path} answered {r.status_code}: {r.text[:500]}\nbody: {body[:300]!r}"
    assert not r.text.lstrip().startswith("Traceback")
    return r


def healthy(client) -> None:
    r = client.get("/_upstack/health")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text


HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large])
ENDPOINTS = ["create dataset", "patch dataset", "put dataset", "create catalog batch", "create catalog batch with id",
             "put catalog batch", "patch catalog batch", "create import batch",
             "create merge policy", "put merge policy", "patch merge policy", "bulk-get merge policies",
             "create export job", "controls", "release jobs", "reset one tenant"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_write_endpoint_survives_hostile_bodies(client, world, endpoint):
    method, path, valid = bodies(world)[endpoint]

    @HYPOTHESIS
    @given(raw_body(valid))
    def run(sample):
        body, ctype = sample
        send(client, method, path, body, ctype)
        healthy(client)

    run()
    # Whatever it accepted, the tenant still lists and the valid request still works.
    assert client.get(f"{CATALOG}/dataSets").status_code == 200
    client.put("/_upstack/controls", json={"jobPacing": {"mode": "immediate"}, "faults": [], "failNextJobs": []})
    send(client, method, path, encode(valid), "application/json")


PATHS = {
    "batch action": lambda w: f"{IMPORT}/batches/{w.batch}",
    "upload": lambda w: f"{IMPORT}/batches/{w.batch}/datasets/{w.profile_ds}/files/h.json",
}


@HYPOTHESIS
@given(data=st.data())
def test_ids_actions_and_query_strings_survive_hostile_values(client, world, data):
    """Path ids, actions and query parameters of reads and writes: NUL, huge numbers, odd text."""
    value = data.draw(st.sampled_from(STRINGS + [str(n) for n in NUMBERS] + world.ids) | st.text(max_size=30))
    param = data.draw(st.sampled_from(["limit", "start", "offset", "page", "orderBy", "orderby", "sort", "properties",
                                       "status", "name", "dataSet", "action", "fields", "entityId", "entityIdNS",
                                       "schema.name", "mergePolicyId", "path", "nrow", "format", "default"]))
    method, path = data.draw(st.sampled_from([
        ("GET", f"{CATALOG}/dataSets"), ("GET", f"{CATALOG}/batches"), ("GET", f"{UPS}/export/jobs"),
        ("GET", f"{UPS}/config/mergePolicies"), ("GET", f"{UPS}/access/entities"), ("DELETE", f"{UPS}/access/entities"),
        ("GET", f"/data/foundation/export/batches/{world.batch}/files"),
        ("POST", PATHS["batch action"](world)), ("GET", f"{CATALOG}/dataSets/{{}}"),
        ("GET", f"{CATALOG}/batches/{{}}"), ("DELETE", f"{CATALOG}/batches/{{}}"),
        ("GET", f"{UPS}/export/jobs/{{}}"), ("DELETE", f"{UPS}/export/jobs/{{}}"),
        ("GET", f"{UPS}/config/mergePolicies/{{}}"), ("GET", "/data/foundation/export/files/{}"),
        ("GET", "/data/foundation/export/datasets/{}/preview"), ("GET", f"{IMPORT}/batches/{world.batch}/datasets/{{}}/preview"),
    ]))
    from urllib.parse import quote

    path = path.replace("{}", quote(value, safe="")) if "{}" in path else path
    send(client, method, path, None, None, params={param: value})
    healthy(client)


@HYPOTHESIS
@given(data=st.data())
def test_uploads_survive_hostile_names_ranges_and_bytes(client, world, data):
    from urllib.parse import quote

    name = data.draw(st.sampled_from(["a.json", "../x", "a/../../b", "%00", "a\x00b", "x" * 300, "a/" * 200 + "b",
                                      "\\\\server\\share", "C:\\x", " ", ".", "a//b", "😀.json"]) | st.text(max_size=20))
    method = data.draw(st.sampled_from(["PUT", "PATCH", "POST"]))
    path = f"{IMPORT}/batches/{world.batch}/datasets/{world.profile_ds}/files/{quote(name, safe='/')}"
    headers = {"Content-Type": data.draw(st.sampled_from(["application/octet-stream", "text/plain", None]))}
    if method == "PATCH":
        headers["Content-Range"] = data.draw(st.sampled_from(["bytes 0-9/10", "bytes 5-1/*", f"bytes 0-{10**20}/*",
                                                              "bytes -1-2/3", "garbage", "bytes 99999999-99999999/*"]))
    body = data.draw(st.binary(max_size=64) | st.sampled_from([b"", json_lines([person(2)])]))
    params = {"action": data.draw(st.sampled_from(["INITIALIZE", "COMPLETE", "x", ""]))} if method == "POST" else None
    r = client.request(method, path, content=body, params=params,
                       headers=dict(HEADERS, **{k: v for k, v in headers.items() if v is not None}))
    SEEN["requests"] += 1
    assert r.status_code < 500, r.text
    healthy(client)


def test_token_endpoint_survives_hostile_forms(client):
    @HYPOTHESIS
    @given(st.dictionaries(st.sampled_from(["grant_type", "client_id", "client_secret", "scope"]) | st.text(max_size=5),
                           st.sampled_from(STRINGS) | st.text(max_size=30), max_size=5),
           st.sampled_from(["application/x-www-form-urlencoded", "application/json", None, "multipart/form-data"]))
    def run(form, ctype):
        client.headers.clear()
        if ctype == "application/json":
            r = client.post("/ims/token/v3", content=encode(form), headers={"Content-Type": ctype})
        else:
            r = client.post("/ims/token/v3", data=form)
        SEEN["requests"] += 1
        assert r.status_code < 500, r.text
        healthy(client)

    run()


def test_report(capsys):
    """Not a check: prints how many hostile requests this run sent (the closing note quotes it)."""
    with capsys.disabled():
        print(f"\nhostile inputs: {SEEN['requests']} requests, {SEEN['5xx']} answered 5xx")
