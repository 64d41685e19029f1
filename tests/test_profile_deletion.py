"""Deleting a profile (issue 10 item 3): DELETE /data/core/ups/access/entities answers 202, lookups and exports
leave the profile out while the lake keeps its records, later fragments bring it back, other tenants see nothing
of it; under pdg the identity's whole graph goes."""

from __future__ import annotations

import pytest

from tests.conftest import HEADERS
from tests.profile_data import (
    ENTITIES,
    JOBS,
    PROFILE,
    Loader,
    clean,
    create_dataset,
    idmap,
    load_world,
    read_batch,
    union_dataset,
)

OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})


@pytest.fixture
def world(client, ctx, run_jobs):
    return dict(load_world(client, ctx, run_jobs), target=union_dataset(client))


def lookup(client, ns, ident, headers=None, **params):
    return client.get(ENTITIES, params={**PROFILE, "entityIdNS": ns, "entityId": ident, **params}, headers=headers)


def delete(client, ns, ident, headers=None, **params):
    return client.delete(ENTITIES, params={**PROFILE, "entityIdNS": ns, "entityId": ident, **params}, headers=headers)


def export(client, ctx, run_jobs, target, **body) -> list[dict]:
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"},
                                "fields": "person.name", **body})
    assert r.status_code == 200, r.text
    run_jobs()
    job = client.get(f"{JOBS}/{r.json()['id']}").json()
    assert job["status"] == "SUCCEEDED", job
    return clean(read_batch(client, ctx, job["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict")), job["metrics"]


def first_names(rows):
    return sorted(r["person"]["name"]["firstName"] for r in rows)


def test_delete_hides_the_profile_but_the_lake_keeps_it(client, ctx, run_jobs, world, monkeypatch):
    from upstack.services import entities

    assert lookup(client, "Email", "bob@x.com").status_code == 200
    real = entities.merge_profiles

    def component_only(inputs, *args, **kwargs):
        assert inputs and all(d.rows is not None for d in inputs), "merged the whole lake, not the store's rows"
        return real(inputs, *args, **kwargs)

    with monkeypatch.context() as m:  # prove it: lookups merge only the rows the profile store gives
        m.setattr(entities, "merge_profiles", component_only)
        assert lookup(client, "Email", "bob@x.com").status_code == 200
        assert delete(client, "Email", "bob@x.com").status_code == 202
        assert lookup(client, "Email", "bob@x.com").status_code == 404
    r = lookup(client, "Email", "bob@x.com")
    assert r.status_code == 404 and r.json()["errors"]["404"][0]["code"] == "UPAPI-113430-404"
    assert lookup(client, "Email", "cy@x.com").status_code == 200
    both = client.post(ENTITIES, json={"schema": {"name": "_xdm.context.profile"}, "identities": [
        {"entityId": "bob@x.com", "entityIdNS": {"code": "Email"}}, {"entityId": "cy@x.com", "entityIdNS": {"code": "Email"}}]})
    assert both.status_code == 200 and [v["entityId"] for v in both.json().values()] == ["cy@x.com"]
    rows, metrics = export(client, ctx, run_jobs, world["target"])
    assert first_names(rows) == ["Ann", "Annie", "Cy"]
    assert metrics["totalExportedProfileCounter"] == 3 and metrics["exportedProfileByNamespaceCounter"]["Email"] == 2
    # the data lake still has Bob's record
    preview = client.get(f"/data/foundation/export/datasets/{world['crm']}/preview").json()
    assert "bob@x.com" in str(preview)
    # deleted already: nothing to delete
    assert delete(client, "Email", "bob@x.com").status_code == 404


def test_later_fragments_bring_it_back(client, ctx, run_jobs, world):
    assert delete(client, "Email", "bob@x.com").status_code == 202
    assert lookup(client, "Email", "bob@x.com").status_code == 404
    Loader(client, ctx, run_jobs).ingest(world["crm"], [{"identityMap": idmap(("Email", "bob@x.com")),
                                                         "person": {"name": {"firstName": "Robert"}}}])
    found = lookup(client, "Email", "bob@x.com")
    assert found.status_code == 200, found.text
    rows, _ = export(client, ctx, run_jobs, world["target"])
    assert "Robert" in first_names(rows)


def test_pdg_deletes_the_whole_graph(client, ctx, run_jobs, world):
    pdg = world["pdg"]
    assert lookup(client, "Email", "ann@x.com", mergePolicyId=pdg).status_code == 200
    assert delete(client, "CRMID", "c1", mergePolicyId=pdg).status_code == 202
    for ns, ident in (("Email", "ann@x.com"), ("CRMID", "c1"), ("ECID", "e1")):
        assert lookup(client, ns, ident, mergePolicyId=pdg).status_code == 404, ident
    rows, metrics = export(client, ctx, run_jobs, world["target"], mergePolicy={"id": pdg})
    assert first_names(rows) == ["Bob", "Cy"]
    assert metrics["exportedProfileByNamespaceCounter"] == {"Email": 2}
    # without a graph only the profile of that identity goes: Ann's CRM profile stays
    assert lookup(client, "Email", "ann@x.com").status_code == 200
    rows, _ = export(client, ctx, run_jobs, world["target"])
    assert first_names(rows) == ["Ann", "Bob", "Cy"]


def test_other_tenant_unaffected_and_bad_requests(client, ctx, run_jobs, world):
    other_ds = create_dataset(client, "crm", headers=OTHER)
    Loader(client, ctx, run_jobs).ingest(other_ds, [{"identityMap": idmap(("Email", "bob@x.com")),
                                                     "person": {"name": {"firstName": "Other"}}}], headers=OTHER)
    assert delete(client, "Email", "bob@x.com").status_code == 202
    assert lookup(client, "Email", "bob@x.com", headers=OTHER).status_code == 200
    # unknown identity: 404 in the UPS shape; missing or wrong parameters: 400
    r = delete(client, "Email", "nobody@x.com")
    assert r.status_code == 404 and r.json()["errors"]["404"][0]["code"] == "UPAPI-113430-404"
    for params in ({}, {"schema.name": "_xdm.context.profile", "entityId": "bob@x.com"},
                   {"schema.name": "_xdm.context.profile", "entityIdNS": "Email"},
                   {"schema.name": "_xdm.context.experienceevent", "entityId": "bob@x.com", "entityIdNS": "Email"}):
        r = client.delete(ENTITIES, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"]["400"][0]["code"] == "UPAPI-113434-400"
    # a tenant reset forgets its deletions
    assert client.post("/_upstack/reset", json={"org": HEADERS["x-gw-ims-org-id"]}).status_code == 200
