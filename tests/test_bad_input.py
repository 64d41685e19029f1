"""Inputs that used to answer 500: huge or fractional numbers, object-valued sort fields, NUL characters (which
PostgreSQL text cannot hold). Each answers a 4xx in its family's error shape (CONTRACT §2), or, where the contract
says to clamp, a normal page; the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS
from tests.profile_data import JOBS, MP, UNION, union_dataset

CATALOG = "/data/foundation/catalog"
DATA_ACCESS = "/data/foundation/export"
IMPORT = "/data/foundation/import"
ENTITIES = "/data/core/ups/access/entities"
SCHEMA = {"name": "_xdm.context.profile"}
POLICY = {"schema": SCHEMA, "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}}
HUGE = 10**20


def ups_error(r, status: int = 400) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    code = body["errors"][str(status)][0]["code"]
    assert body["status"] == status and body["type"].endswith(code) and body["requestId"], body
    return body["errors"][str(status)][0]["message"]


def catalog_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and body["type"] == "/placeholder/type/uri" and body["title"], body
    return body["detail"]


def raw(client, method: str, path: str, text: str):
    """A JSON body sent as written: `1e23` stays a JSON float (the json= argument would print Python's form)."""
    return client.request(method, path, content=text.encode(), headers={"Content-Type": "application/json"})


# ---- merge policy versions ----------------------------------------------------------------------------

BAD_VERSIONS = ("1e300", "1e23", "-1e300", str(HUGE), "2147483648", "1.5", "0", "-1", '"2"', "true", "[]", "{}")


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_merge_policy_version_out_of_range_or_not_an_integer_is_400(client, version):
    body = '{"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "none"}, ' \
           f'"attributeMerge": {{"type": "timestampOrdered"}}, "version": {version}}}'
    assert "version" in ups_error(raw(client, "POST", MP, body))
    assert "version" in ups_error(raw(client, "PUT", f"{MP}/timestampOrdered-none-mp", body))
    patch = f'{{"op": "replace", "path": "/version", "value": {version}}}'
    assert ups_error(raw(client, "PATCH", f"{MP}/timestampOrdered-none-mp", patch))
    # The version a GET answered is still echoed back without complaint.
    ok = raw(client, "PUT", f"{MP}/timestampOrdered-none-mp", body.replace(f'"version": {version}', '"version": 1'))
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_export_job_merge_policy_version_out_of_range_is_400(client, version):
    target = union_dataset(client)
    body = f'{{"destination": {{"datasetId": "{target}"}}, "schema": {{"name": "_xdm.context.profile"}}, ' \
           f'"mergePolicy": {{"id": "timestampOrdered-none-mp", "version": {version}}}}}'
    assert "version" in ups_error(raw(client, "POST", JOBS, body))
    assert client.get(JOBS).json()["records"] == []


@pytest.mark.parametrize("value", ("1e300", "-1e300", str(HUGE), f'"{"9" * 30}"', '"99999-01-01T00:00:00Z"'))
def test_export_job_timestamps_outside_any_date_are_400(client, value):
    target = union_dataset(client)
    for where in ('"filter": {"fromIngestTimestamp": %s}', '"filter": {"segmentQualificationTime": {"endTime": %s}}',
                  '"additionalFields": {"eventList": {"filter": {"toIngestTimestamp": %s}}}'):
        body = f'{{"destination": {{"datasetId": "{target}"}}, "schema": {{"name": "_xdm.context.profile"}}, ' \
               f'{where % value}}}'
        assert ups_error(raw(client, "POST", JOBS, body))


# ---- Catalog ordering by object-valued fields ------------------------------------------------------------

def test_catalog_orders_object_valued_fields_by_their_json_text(client):
    """`orderBy=asc:tags`: objects sort by their canonical JSON text (keys sorted), values of different JSON types
    by type; a client asking to order gets an order, as it would for any other property."""
    ids = {}
    for name, tags in (("b", {"x": ["2"]}), ("a", {"x": ["1"]}), ("c", None)):
        r = client.post(f"{CATALOG}/dataSets", json={"name": name, **({"tags": tags} if tags else {})})
        ids[name] = r.json()[0].split("/")[-1]
    asc = client.get(f"{CATALOG}/dataSets", params={"orderBy": "asc:tags"})
    assert asc.status_code == 200, asc.text
    assert list(asc.json()) == [ids["a"], ids["b"], ids["c"]]  # '{"x": ["1"]}' < '{"x": ["2"]}' < '{}'
    desc = client.get(f"{CATALOG}/dataSets", params={"orderBy": "desc:tags"})
    assert list(desc.json()) == [ids["c"], ids["b"], ids["a"]]
    # `description` is free JSON: a number, a string and an object side by side still sort.
    for name, description in (("d", 7), ("e", "seven"), ("f", {"n": 7})):
        client.post(f"{CATALOG}/dataSets", json={"name": name, "description": description})
    assert client.get(f"{CATALOG}/dataSets", params={"orderBy": "asc:description"}).status_code == 200

    for name in ("b", "a"):
        client.post(f"{IMPORT}/batches", json={"datasetId": ids[name], "inputFormat": {"format": "json"}})
    for order in ("asc:tags", "desc:tags", "asc:relatedObjects", "desc:metrics", "asc:inputFormat"):
        r = client.get(f"{CATALOG}/batches", params={"orderBy": order})
        assert r.status_code == 200 and len(r.json()) == 2, (order, r.text)
    related = [b["relatedObjects"][0]["id"] for b in
               client.get(f"{CATALOG}/batches", params={"orderBy": "asc:relatedObjects"}).json().values()]
    assert related == sorted(related)


# ---- export job list paging: clamp, never an error (CONTRACT §7) -------------------------------------------

def test_export_job_list_clamps_huge_and_negative_paging(client):
    target = union_dataset(client)
    ids = [client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA}).json()["id"]
           for _ in range(3)]
    newest_first = ids[::-1]

    def page(**params):
        r = client.get(JOBS, params=params)
        assert r.status_code == 200, (params, r.text)
        return [j["id"] for j in r.json()["records"]]

    assert page(limit=HUGE) == newest_first and page(limit=-HUGE) == newest_first[:1]
    assert page(start=HUGE) == [] and page(start=-HUGE) == newest_first
    assert page(page=HUGE) == [] and page(page=-HUGE) == newest_first
    assert page(page=HUGE, limit=HUGE, start=HUGE) == []
    assert page(offset=f"{HUGE}_{HUGE}") == newest_first  # everything is older than that cursor
    assert page(offset=f"-{HUGE}_1") == []
    assert page(offset=f"-{HUGE}_1", sort="createdTime:asc") == ids
    assert client.get(JOBS, params={"limit": HUGE}).json()["page"]["pageSize"] == 3
    for bad in ({"limit": "1.5"}, {"start": "1e3"}, {"page": "x"}, {"offset": "1.5_2"}):
        assert ups_error(client.get(JOBS, params=bad))


# ---- NUL characters (PostgreSQL text cannot hold them) ------------------------------------------------------

@pytest.mark.parametrize("field", ("client_id", "client_secret", "scope", "grant_type"))
def test_nul_in_the_token_form_is_400(client, field):
    form = {"grant_type": "client_credentials", "client_id": "me", "client_secret": "s", "scope": "openid"}
    form[field] = form[field][:1] + "\x00" + form[field][1:]
    r = client.post("/ims/token/v3", data=form)
    assert "NUL" in catalog_error(r, 400) or "grant_type" in r.text


NUL_GETS = [
    f"{CATALOG}/dataSets/%00x", f"{CATALOG}/batches/%00x",
    f"{DATA_ACCESS}/batches/%00/files", f"{DATA_ACCESS}/batches/%00/failed", f"{DATA_ACCESS}/batches/%00/meta",
    f"{DATA_ACCESS}/files/%00", f"{DATA_ACCESS}/datasets/%00/preview",
    f"{IMPORT}/batches/%00/datasets/%00/preview",
    f"{MP}/%00", f"{JOBS}/%00",
]


def test_nul_in_path_ids_is_404_on_every_route(client):
    for path in NUL_GETS:
        r = client.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["status"] == 404
    for method, path in (("HEAD", f"{CATALOG}/dataSets/%00"), ("DELETE", f"{CATALOG}/dataSets/%00"),
                         ("DELETE", f"{MP}/%00"), ("DELETE", f"{JOBS}/%00"),
                         ("POST", f"{IMPORT}/batches/%00?action=COMPLETE")):
        assert client.request(method, path).status_code == 404, (method, path)
    for method, path, body in (("PATCH", f"{CATALOG}/dataSets/%00", {"name": "x"}),
                               ("PUT", f"{CATALOG}/dataSets/%00", {"name": "x"}),
                               ("PATCH", f"{MP}/%00", {"op": "add", "path": "/name", "value": "x"}),
                               ("PUT", f"{MP}/%00", POLICY)):
        assert client.request(method, path, json=body).status_code == 404, (method, path)
    r = client.put(f"{IMPORT}/batches/%00/datasets/%00/files/a.json", content=b"{}",
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 404, r.text


def test_nul_in_query_values_is_a_4xx(client):
    target = union_dataset(client)
    for path, params in ((f"{CATALOG}/dataSets", {"name": "\x00"}), (f"{CATALOG}/batches", {"dataSet": "\x00"}),
                         (f"{CATALOG}/dataSets", {"orderBy": "asc:\x00"}), (MP, {"schema.name": "\x00"}),
                         (JOBS, {"offset": "\x00"}), (f"{DATA_ACCESS}/files/x", {"path": "\x00"})):
        r = client.get(path, params=params)
        assert r.status_code < 500, (path, params, r.text)
    for params in ({"entityId": "\x00", "entityIdNS": "email"}, {"entityId": "a", "entityIdNS": "\x00"},
                   {"entityId": "a", "entityIdNS": "email", "mergePolicyId": "\x00"}):
        r = client.get(ENTITIES, params={"schema.name": "_xdm.context.profile", **params})
        assert r.status_code in (400, 404), (params, r.text)
    r = client.get(ENTITIES, params={"schema.name": "_xdm.context.profile", "entityId": "a", "entityIdNS": "email",
                                     "mergePolicyId": "\x00"})
    assert "\x00" not in r.text and "does not exist" in ups_error(r)
    assert client.get(f"{JOBS}/1", headers=dict(HEADERS)).status_code == 404  # the app is still fine
    assert target


def test_nul_in_local_control_values_is_not_a_500(client):
    assert client.post("/_upstack/reset", params={"org": "a\x00"}).status_code == 200
    # In a JSON body the parser refuses a NUL for every route (api/jsonbody.py).
    assert client.post("/_upstack/jobs/release", json={"subjectId": "\x00"}).status_code == 400
    assert client.get(f"{CATALOG}/dataSets").status_code == 200


# ---- other wrong JSON types in these routers -------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"mergePolicy": {"id": ["x"]}}, {"mergePolicy": {"id": 7}}, {"mergePolicy": "timestampOrdered-none-mp"},
    {"destination": {"datasetId": {"a": 1}}}, {"destination": {"datasetId": UNION, "segmentPerBatch": "yes"}},
    {"schema": {"name": ["_xdm.context.profile"]}}, {"schema": "_xdm.context.profile"},
    {"fields": 7}, {"filter": {"segments": [{"segmentId": "s", "segmentNs": 7}]}},
    {"filter": {"segments": [{"segmentId": "s", "status": "realized"}]}},
    {"filter": {"segmentQualificationTime": {"startTime": [1]}}},
])
def test_export_job_wrong_json_types_are_400(client, change):
    body = {"destination": {"datasetId": union_dataset(client)}, "schema": SCHEMA, **change}
    assert ups_error(client.post(JOBS, json=body))


@pytest.mark.parametrize("body", [
    dict(POLICY, name=7), dict(POLICY, default=1e300), dict(POLICY, isActiveOnEdge=[True]),
    dict(POLICY, identityGraph={"type": ["none"]}), dict(POLICY, attributeMerge={"type": {"a": 1}}),
    dict(POLICY, schema={"name": {"a": 1}}), dict(POLICY, attributeMerge={"type": "dataSetPrecedence",
                                                                          "order": [{"a": 1}]}),
    [POLICY], "policy", 1e300,
])
def test_merge_policy_wrong_json_types_are_400(client, body):
    assert ups_error(client.post(MP, json=body))
    assert ups_error(client.put(f"{MP}/timestampOrdered-none-mp", json=body))


def test_merge_policy_list_and_bulk_get_odd_values(client):
    for params in ({"limit": HUGE}, {"start": HUGE}, {"limit": -HUGE}, {"start": -HUGE}):
        assert client.get(MP, params=params).status_code == 200, params
    for params in ({"limit": "1e3"}, {"default": "maybe"}, {"orderBy": "tags"}):
        assert ups_error(client.get(MP, params=params))
    for body in ({"ids": [{"id": 7}]}, {"ids": "x"}, {"ids": [{"id": ["a"]}]}, [1]):
        assert ups_error(client.post(f"{MP}/bulk-get", json=body))


def test_catalog_paging_odd_values(client):
    client.post(f"{CATALOG}/dataSets", json={"name": "x"})
    assert client.get(f"{CATALOG}/dataSets", params={"start": HUGE}).json() == {}
    for params in ({"limit": HUGE}, {"limit": -HUGE}, {"start": -HUGE}, {"limit": "1.5"}, {"orderBy": "sideways:name"}):
        assert catalog_error(client.get(f"{CATALOG}/dataSets", params=params), 400)


def test_profile_event_paging_numbers_out_of_range(client):
    params = {"schema.name": "_xdm.context.experienceevent", "relatedSchema.name": "_xdm.context.profile",
              "relatedEntityId": "ann@x.com", "relatedEntityIdNS": "Email"}
    for name in ("startTime", "endTime", "limit"):
        for value in ("inf", "-inf", "1e400", "nan", "9" * 5000):
            assert ups_error(client.get(ENTITIES, params=dict(params, **{name: value}))), (name, value)
        for value in (str(HUGE), str(-HUGE), "1e300"):
            r = client.get(ENTITIES, params=dict(params, **{name: value}))
            assert r.status_code == 404, (name, value, r.text)  # an unknown identity, as without the parameter


def test_dataset_name_longer_than_its_column_is_400(client):
    r = client.post(f"{CATALOG}/dataSets", json={"name": "x" * 1025})
    assert "at most 1024" in catalog_error(r, 400)
    ds = client.post(f"{CATALOG}/dataSets", json={"name": "x" * 1024}).json()[0].split("/")[-1]
    assert "at most 1024" in catalog_error(client.patch(f"{CATALOG}/dataSets/{ds}", json={"name": "y" * 5000}), 400)
    assert client.get(f"{CATALOG}/dataSets/{ds}").json()[ds]["name"] == "x" * 1024


def test_non_ascii_digits_name_no_job_on_the_fast_path(client):
    """`\\d` also matches fullwidth digits, which int() reads: '１' must not answer job 1 where the router says 404."""
    target = union_dataset(client)
    assert client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA}).json()["id"] == 1
    for path in (f"{JOBS}/１", f"{JOBS}/١"):
        assert ups_error(client.get(path), 404) and ups_error(client.get(path, params={"via": "router"}), 404)


def test_overlong_client_id_is_400_not_a_database_error(client):
    r = client.post("/ims/token/v3", data={"grant_type": "client_credentials", "client_id": "c" * 5000,
                                           "client_secret": "s"})
    assert r.status_code == 400 and "255" in r.json()["detail"]
