"""One id per (org, sandbox) (CONTRACT §1): a dataset's and a batch's `sandboxId`, and the `sandbox.sandboxId` of
a merge policy, are the same UUID for one sandbox, and differ between sandboxes and orgs. Export jobs carry no
sandbox member (Adobe's export job schema has none)."""

from __future__ import annotations

import uuid

from tests.conftest import HEADERS

CATALOG = "/data/foundation/catalog"
UNION = "https://ns.adobe.com/xdm/context/profile__union"
PROFILE_SCHEMA = "https://ns.adobe.com/acme/schemas/person"


def ids_seen(client, headers: dict) -> set[str]:
    def post(path, body, status):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == status, r.text
        return r.json()

    ds = post(f"{CATALOG}/dataSets", {"name": "p", "schemaRef": {"id": PROFILE_SCHEMA}}, 201)[0].split("/")[-1]
    union = post(f"{CATALOG}/dataSets", {"name": "u", "schemaRef": {"id": UNION}}, 201)[0].split("/")[-1]
    batch = post("/data/foundation/import/batches", {"datasetId": ds, "inputFormat": {"format": "json"}}, 201)
    policy = post("/data/core/ups/config/mergePolicies", {
        "name": "mp", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "timestampOrdered"}}, 200)
    job = post("/data/core/ups/export/jobs", {"destination": {"datasetId": union},
                                              "schema": {"name": "_xdm.context.profile"}}, 200)

    def get(path):
        r = client.get(path, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    seen = {
        get(f"{CATALOG}/dataSets/{ds}")[ds]["sandboxId"],
        *(d["sandboxId"] for d in get(f"{CATALOG}/dataSets").values()),
        batch["sandboxId"],
        get(f"{CATALOG}/batches/{batch['id']}")[batch["id"]]["sandboxId"],
        *(b["sandboxId"] for b in get(f"{CATALOG}/batches").values()),
        policy["sandbox"]["sandboxId"],
        get("/data/core/ups/config/mergePolicies/timestampOrdered-none-mp")["sandbox"]["sandboxId"],
    }
    assert "sandbox" not in job and "sandbox" not in get(f"/data/core/ups/export/jobs/{job['id']}")
    name = headers["x-sandbox-name"]
    assert policy["sandbox"]["sandboxName"] == name
    assert get(f"{CATALOG}/dataSets/{ds}")[ds]["sandbox"] == batch["sandbox"] == name
    assert policy["sandbox"]["type"] == ("production" if name == "prod" else "development")
    return seen


def test_one_sandbox_one_id_everywhere_and_sandboxes_differ(client):
    prod = ids_seen(client, HEADERS)
    dev = ids_seen(client, dict(HEADERS, **{"x-sandbox-name": "dev"}))
    other_org = ids_seen(client, dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"}))
    for seen in (prod, dev, other_org):
        assert len(seen) == 1
        assert uuid.UUID(next(iter(seen))).version == 5
    assert len(prod | dev | other_org) == 3
    # derived from (org, sandbox), not stored: the same on every request
    assert ids_seen(client, HEADERS) == prod
