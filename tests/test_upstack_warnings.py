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
