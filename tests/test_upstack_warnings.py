"""What the platform would answer differently, or not at all, is named in `x-upstack-warning` and the request
journal, or refused with UPSTACK_STRICT_MEMBERS (issue 11 part 2): field paths in `fields` that no dataset of
the tenant has (export jobs, profile lookups), and a sandbox created implicitly by its first request."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS
from tests.profile_data import ENTITIES, JOBS, PROFILE, load_world, union_dataset

SCHEMA = {"name": "_xdm.context.profile"}
EVENTS = {"schema.name": "_xdm.context.experienceevent", "relatedSchema.name": "_xdm.context.profile"}
ANN = {**PROFILE, "entityIdNS": "Email", "entityId": "ann@x.com"}


@pytest.fixture
def world(client, ctx, run_jobs):
    ids = load_world(client, ctx, run_jobs)
    ids["target"] = union_dataset(client)
    return ids


def journaled(client, method: str, path: str) -> list:
    found = client.get("/_upstack/requests", params={"method": method, "path": path}).json()["requests"]
    return [e.get("warning") for e in found]


def message(r) -> str:
    assert r.status_code == 400, r.text
    return r.json()["errors"]["400"][0]["message"]


# ---- field paths ---------------------------------------------------------------------------------------

def test_known_paths_pass_quietly(client, world):
    """A path a dataset has, a prefix of one (an object), a path inside a leaf (a map, a list), and the
    identity views are known; none is named."""
    for fields in ("person.name.firstName", "person.name", "person", "identityMap", "identities.id",
                   "identityMap.Email", "segmentMembership.ups.seg1.status", "mobilePhone.number,personalEmail"):
        r = client.get(ENTITIES, params={**ANN, "fields": fields})
        assert r.status_code == 200, (fields, r.text)
        assert "x-upstack-warning" not in r.headers, (fields, r.headers["x-upstack-warning"])


def test_lookup_names_unknown_paths(client, ctx, world):
    r = client.get(ENTITIES, params={**ANN, "fields": "person.nmae.firstName,person.name,nope"})
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == "unknown field path(s): person.nmae.firstName, nope"
    ((_, found),) = r.json().items()
    assert found["entity"]["person"] == {"name": {"firstName": "Ann", "lastName": "Lee"}}  # ignored, as AEP does
    assert journaled(client, "GET", ENTITIES)[-1] == r.headers["x-upstack-warning"]

    # events select from the event datasets: `environment` is known there, a profile path is not
    r = client.get(ENTITIES, params={**EVENTS, "relatedEntityIdNS": "ECID", "relatedEntityId": "e1",
                                     "fields": "environment.browserDetails.name,person.name"})
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == "unknown field path(s): person.name"

    body = {"schema": SCHEMA, "fields": ["person.name", "workEmail"],
            "identities": [{"entityId": "ann@x.com", "entityIdNS": {"code": "Email"}}]}
    r = client.post(ENTITIES, json={**body, "mergPolicyId": "x"})
    assert r.status_code == 200, r.text
    # several warnings of one request share the header
    assert r.headers["x-upstack-warning"] == "ignored member(s): mergPolicyId; unknown field path(s): workEmail"
    assert journaled(client, "POST", ENTITIES)[-1] == r.headers["x-upstack-warning"]

    ctx.settings.strict_members = True
    text = message(client.get(ENTITIES, params={**ANN, "fields": "person.nmae.firstName"}))
    assert text.startswith("Unknown field path(s): person.nmae.firstName: no dataset of this sandbox has them.")
    assert "UPSTACK_STRICT_MEMBERS" in text
    assert "Unknown field path(s): workEmail" in message(client.post(ENTITIES, json=body))
    assert client.get(ENTITIES, params={**ANN, "fields": "person.name"}).status_code == 200


def test_export_job_names_unknown_paths(client, ctx, world):
    body = {"destination": {"datasetId": world["target"]}, "schema": SCHEMA,
            "fields": "person.name,person.nmae.firstName",
            "additionalFields": {"eventList": {"fields": "environment,environment.browserDetails.nmae"}}}
    r = client.post(JOBS, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == ("unknown field path(s): person.nmae.firstName, "
                                              "environment.browserDetails.nmae")
    assert r.json()["fields"] == "person.name,person.nmae.firstName"  # kept as sent, ignored by the merge
    assert journaled(client, "POST", JOBS)[-1] == r.headers["x-upstack-warning"]
    quiet = client.post(JOBS, json={**body, "fields": "person.name", "additionalFields": {}})
    assert quiet.status_code == 200 and "x-upstack-warning" not in quiet.headers

    ctx.settings.strict_members = True
    assert message(client.post(JOBS, json=body)).startswith(
        "Unknown field path(s): person.nmae.firstName, environment.browserDetails.nmae:")
    assert client.post(JOBS, json={**body, "fields": "person.name", "additionalFields": {}}).status_code == 200


def test_a_sandbox_without_data_calls_no_path_unknown(client):
    target = union_dataset(client)
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA, "fields": "anything.at.all"})
    assert r.status_code == 200 and "x-upstack-warning" not in r.headers


# ---- sandboxes created implicitly ----------------------------------------------------------------------

DEV = dict(HEADERS, **{"x-sandbox-name": "dve"})
DATASETS = "/data/foundation/catalog/dataSets"
CREATED = "sandbox 'dve' did not exist and was created"


def test_a_new_sandbox_is_named_once(client):
    r = client.get(DATASETS, headers=DEV)
    assert r.status_code == 200, r.text
    assert r.headers["x-upstack-warning"] == CREATED
    assert journaled(client, "GET", DATASETS)[-1] == CREATED
    again = client.get(DATASETS, headers=DEV)
    assert again.status_code == 200 and "x-upstack-warning" not in again.headers
    # created with its defaults: the default merge policy is there
    mp = client.get("/data/core/ups/config/mergePolicies", headers=DEV).json()["children"]
    assert [p["id"] for p in mp] == ["timestampOrdered-none-mp"]
    # `prod` exists in every org, and another org's first request to it is no news
    other = client.get(DATASETS, headers=dict(HEADERS, **{"x-gw-ims-org-id": "NEW@AdobeOrg"}))
    assert other.status_code == 200 and "x-upstack-warning" not in other.headers
    # one header for several warnings: the sandbox first, then the body's
    r = client.post(JOBS, json={"destination": {"datasetId": "x"}, "schema": SCHEMA, "mergPolicy": {}},
                    headers=dict(HEADERS, **{"x-sandbox-name": "other"}))
    assert r.status_code == 400  # no such dataset there; the warnings still say what happened
    assert r.headers["x-upstack-warning"] == ("sandbox 'other' did not exist and was created; "
                                              "ignored member(s): mergPolicy")


def test_a_sandbox_seen_by_another_process_is_no_news(client, ctx):
    """The book is per process: a sandbox another process (or an older upstack with its datasets) created
    exists in the database, and its first request here carries no warning."""
    client.get(DATASETS, headers=DEV)
    client.app.state.sandboxes.forget_all()
    assert "x-upstack-warning" not in client.get(DATASETS, headers=DEV).headers
    assert client.post("/_upstack/reset").status_code == 200  # the data is gone: the sandbox is new again
    assert client.get(DATASETS, headers=DEV).headers["x-upstack-warning"] == CREATED


def test_strict_mode_refuses_an_unknown_sandbox(client, ctx):
    ctx.settings.strict_members = True
    for path in (DATASETS, "/data/core/ups/config/mergePolicies"):
        r = client.get(path, headers=DEV)
        assert r.status_code == 400, r.text
        text = r.json().get("detail") or r.json()["errors"]["400"][0]["message"]
        assert text.startswith("Sandbox 'dve' does not exist in org 'TESTORG@AdobeOrg'"), text
        assert "POST /_upstack/sandboxes" in text and "UPSTACK_STRICT_MEMBERS" in text
    assert client.get(DATASETS, headers=DEV).json()["title"] == "BadRequestError"  # Catalog's shape
    assert client.get(DATASETS).status_code == 200  # prod always exists
    assert set(journaled(client, "GET", DATASETS)) == {None}  # refused, or prod: nothing to warn of

    r = client.post("/_upstack/sandboxes", json={"org": "TESTORG@AdobeOrg", "sandbox": "dve"})
    assert r.status_code == 201 and r.json() == {"org": "TESTORG@AdobeOrg", "sandbox": "dve", "created": True}
    assert client.post("/_upstack/sandboxes", json={"org": "TESTORG@AdobeOrg", "sandbox": "dve"}).json()[
        "created"] is False
    r = client.get(DATASETS, headers=DEV)
    assert r.status_code == 200 and "x-upstack-warning" not in r.headers
    for bad in ({"org": "TESTORG@AdobeOrg"}, {"org": "O", "sandbox": " dev"}, {"org": "O", "sandbox": "a\nb"},
                {"org": "O", "sandbox": "x" * 256}, {"org": "O", "sandbox": "dev", "typo": 1}):
        assert client.post("/_upstack/sandboxes", json=bad).status_code == 400, bad
