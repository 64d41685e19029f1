"""Profile lookups answered from snapshots (lake.snapshots + the `snapshot` job): the same answers as the direct
merge, never stale, built after ingestion and on a lookup that finds none, one queued build at a time."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from tests.conftest import ORG
from tests.profile_data import (
    CRM,
    ENTITIES,
    EVENT_SCHEMA,
    LOYALTY,
    MP,
    PROFILE,
    WEB,
    Loader,
    create_dataset,
    idmap,
)
from upstack.schemas.entities import EntityQuery
from upstack.services import entities
from upstack.services.errors import NotFound, Unprocessable
from upstack.storage.models import Job
from upstack.tenant import Tenant

T = Tenant(ORG, "prod")

# Beyond the shared world: an email listed by two CRM profiles (neither's primary), an upsert, a list, a
# profile whose primary is an ECID that also has events, and an event with a second identity.
EXTRA = [
    {"identityMap": idmap(("CRMID", "c7"), ("Email", "family@x.com")), "person": {"name": {"firstName": "Dee"}},
     "items": [{"sku": "a", "qty": 1}, {"sku": "b"}], "loyalty": {"points": 10, "tier": "gold"}},
    {"identityMap": idmap(("CRMID", "c8"), ("Email", "family@x.com")), "person": {"name": {"firstName": "Eve"}}},
    {"identityMap": idmap(("CRMID", "c7")), "person": {"name": {"firstName": "Dee", "lastName": "Doe"}},
     "loyalty": {"points": 12}},
    {"identityMap": idmap(("ECID", "e9"), ("Phone", "+1555")), "mobilePhone": {"number": "+1555"}},
]
EXTRA_WEB = [{"_id": "ev4", "timestamp": "2024-03-04T10:00:00Z", "identityMap": idmap(("ECID", "e5"), ("Email", "x@y"))}]
FIELDS = [None, "person.name.firstName", "person,loyalty.tier,items.sku", "segmentMembership.ups.seg1,nothing.here",
          "mobilePhone.number.extra", "identities"]


@pytest.fixture
def lake_world(client, ctx, run_jobs):
    load = Loader(client, ctx, run_jobs)
    ids = {"crm": create_dataset(client, "crm"), "loyalty": create_dataset(client, "loyalty"),
           "web": create_dataset(client, "web", EVENT_SCHEMA)}
    load.ingest(ids["crm"], CRM + EXTRA)
    load.ingest(ids["loyalty"], LOYALTY)
    load.ingest(ids["web"], WEB + EXTRA_WEB, kind="event")
    # pdg-precedence leaves crm out of `order`: crm's records still link identities (CONTRACT §6).
    for name, graph, merge in (("pdg", "pdg", {"type": "timestampOrdered"}),
                               ("precedence", "none", {"type": "dataSetPrecedence", "order": [ids["loyalty"],
                                                                                               ids["crm"]]}),
                               ("pdg-precedence", "pdg", {"type": "dataSetPrecedence", "order": [ids["loyalty"]]})):
        r = client.post(MP, json={"name": name, "schema": {"name": "_xdm.context.profile"},
                                  "identityGraph": {"type": graph}, "attributeMerge": merge})
        assert r.status_code == 200, r.text
        ids[name] = r.json()["id"]
    return ids


IDENTITIES = sorted({(ns, item["id"]) for rec in CRM + EXTRA + LOYALTY + WEB + EXTRA_WEB
                     for ns, items in rec["identityMap"].items() for item in items}) + [("Email", "nobody@x.com")]


def plan(ctx, ns: str, ident: str, **params) -> entities.Lookup:
    with ctx.db.session() as s:
        query = EntityQuery.from_query({**PROFILE, "entityIdNS": ns, "entityId": ident, **params})
        return entities.plan(s, ctx.lake, T, query)


def direct(lookup: entities.Lookup):
    """What the engine answers without a snapshot: the answer, or the error's class."""
    try:
        return entities.profile(dataclasses.replace(lookup, snapshot=None))
    except (NotFound, Unprocessable) as exc:
        return type(exc)


def snapshot_jobs(ctx, status: str | None = None) -> list[Job]:
    with ctx.db.session() as s:
        q = select(Job).where(Job.kind == "snapshot")
        return list(s.scalars(q.where(Job.status == status) if status else q).all())


def build(client, ctx, run_jobs, policy_id: str | None = None) -> None:
    """Look up once (queues the policy's snapshot) and run the jobs."""
    params = {"mergePolicyId": policy_id} if policy_id else {}
    client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": "ann@x.com", **params})
    run_jobs()
    assert plan(ctx, "Email", "ann@x.com", **params).snapshot is not None


def test_ingest_builds_the_default_snapshot_and_lookups_come_from_it(client, ctx, run_jobs, lake_world, monkeypatch):
    done = snapshot_jobs(ctx)  # one build after each of the three ingests (each ran its jobs before the next)
    assert [(j.status, j.subject_id) for j in done] == [("succeeded", "timestampOrdered-none-mp")] * 3
    lookup = plan(ctx, "Email", "ann@x.com")
    assert lookup.snapshot is not None and lookup.snapshot.is_dir()
    assert [p.name for p in lookup.snapshot.parent.iterdir()] == [lookup.snapshot.name]  # older ones removed
    assert snapshot_jobs(ctx, "queued") == []  # a current snapshot queues nothing

    def no_merge(*args, **kwargs):
        raise AssertionError("answered by the engine, not the snapshot")

    monkeypatch.setattr(entities, "merge_profiles", no_merge)
    r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": "ann@x.com"})
    assert r.status_code == 200, r.text
    ((_, found),) = r.json().items()
    assert found["entityId"] == "ann@x.com" and found["entity"]["person"]["name"]["firstName"] == "Ann"


@pytest.mark.parametrize("policy", ["default", "pdg", "precedence", "pdg-precedence"])
def test_snapshot_answers_equal_the_direct_merge_for_every_identity(client, ctx, run_jobs, lake_world, policy):
    params = {} if policy == "default" else {"mergePolicyId": lake_world[policy]}
    build(client, ctx, run_jobs, params.get("mergePolicyId"))
    answered = 0
    for ns, ident in IDENTITIES:
        for fields in FIELDS if policy == "default" else FIELDS[:3]:
            extra = dict(params, **({"fields": fields} if fields else {}))
            lookup = plan(ctx, ns, ident, **extra)
            assert lookup.snapshot is not None
            expected = direct(lookup)
            r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": ns, "entityId": ident, **extra})
            if isinstance(expected, type):
                assert r.status_code == (404 if expected is NotFound else 422), (ns, ident, fields, r.text)
                continue
            assert r.status_code == 200 and r.json() == expected, (ns, ident, fields)
            answered += entities._from_snapshot(lookup) is not None
    # pdg-precedence: loyalty's profile {c1, e1, and ann@x.com, linked by crm alone} and the events-only
    # groups {e9, +1555 (crm's)} and {e5, x@y}, 7 identities with 3 field lists each.
    assert answered > 20 if policy != "pdg-precedence" else answered == 7 * 3


def test_a_new_batch_is_seen_at_once_and_rebuilt_once(client, ctx, run_jobs, lake_world):
    before = plan(ctx, "CRMID", "c7").snapshot
    assert before is not None
    # Written the way an ingest job publishes, without running one (and so without its rebuild request).
    Loader(client, ctx, run_jobs)._ingest_direct(
        lake_world["crm"], [{"identityMap": idmap(("CRMID", "c7")), "person": {"name": {"firstName": "Dana"}}}],
        "profile", None)
    for _ in range(2):  # the first misses the (new) current snapshot and queues it; the second finds it queued
        r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "CRMID", "entityId": "c7"})
        # an upsert: the new record replaces c7's earlier ones in that dataset
        assert r.status_code == 200 and list(r.json().values())[0]["entity"]["person"]["name"] == \
            {"firstName": "Dana"}
    assert plan(ctx, "CRMID", "c7").snapshot is None
    assert len(snapshot_jobs(ctx, "queued")) == 1
    assert run_jobs() == 1
    after = plan(ctx, "CRMID", "c7").snapshot
    assert after is not None and after != before and not before.exists()  # the stale one is removed
    r = client.get(ENTITIES, params={**PROFILE, "entityIdNS": "CRMID", "entityId": "c7"})
    assert list(r.json().values())[0]["entity"]["person"]["name"]["firstName"] == "Dana"
    assert entities._from_snapshot(plan(ctx, "CRMID", "c7")) is not None


def test_dataset_disabled_for_profile_changes_the_lake_version(client, ctx, run_jobs, lake_world):
    assert plan(ctx, "Email", "ann@x.com").snapshot is not None
    r = client.patch(f"/data/foundation/catalog/dataSets/{lake_world['loyalty']}",
                     json={"tags": {"unifiedProfile": ["enabled:false"]}})
    assert r.status_code == 200, r.text
    assert plan(ctx, "Email", "ann@x.com").snapshot is None


def test_unknown_and_oversized_identities_keep_404_and_422(client, ctx, run_jobs):
    ds = create_dataset(client, "devices")
    chain = []
    for r in range(3):  # 58 identities in one pdg component (see test_entities)
        ids = [("Phone", f"+4100{r}{k:02d}") for k in range(18)]
        prev = ("Email", f"hub{r - 1}@x.com") if r else ("Email", "start@x.com")
        chain.append({"identityMap": idmap(prev, ("Email", f"hub{r}@x.com"), *ids)})
    Loader(client, ctx, run_jobs).ingest(ds, chain + [{"identityMap": idmap(("Email", "solo@x.com"))}])
    pdg = client.post(MP, json={"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
                                "attributeMerge": {"type": "timestampOrdered"}}).json()["id"]
    build(client, ctx, run_jobs, pdg)

    def status(ident, **params):
        return client.get(ENTITIES, params={**PROFILE, "entityIdNS": "Email", "entityId": ident, **params}).status_code

    assert status("hub1@x.com", mergePolicyId=pdg) == 422
    assert status("solo@x.com", mergePolicyId=pdg) == 200
    assert status("nobody@x.com", mergePolicyId=pdg) == 404
    assert status("nobody@x.com") == 404 and status("hub1@x.com") == 200
    r = client.post(ENTITIES, json={"schema": {"name": "_xdm.context.profile"}, "mergePolicyId": pdg,
                                    "identities": [{"entityId": "solo@x.com", "entityIdNS": "Email"},
                                                   {"entityId": "nobody@x.com", "entityIdNS": "Email"}]})
    assert r.status_code == 200 and len(r.json()) == 1


def test_snapshot_job_is_queued_once_until_it_starts(client, ctx, run_jobs, lake_world):
    from upstack.services import profile_snapshots

    with ctx.db.session() as s:
        assert profile_snapshots.request_build(s, T, lake_world["pdg"])
        assert not profile_snapshots.request_build(s, T, lake_world["pdg"])
        assert profile_snapshots.request_build(s, T, lake_world["precedence"])  # another policy: its own job
    with ctx.db.session() as s:
        s.execute(Job.__table__.update().where(Job.kind == "snapshot", Job.status == "queued",
                                               Job.subject_id == lake_world["pdg"]).values(status="running"))
    with ctx.db.session() as s:  # started: it may have read the lake before the change, so queue another
        assert profile_snapshots.request_build(s, T, lake_world["pdg"])
    assert len(snapshot_jobs(ctx, "queued")) == 2
