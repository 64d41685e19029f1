"""The profile store (services/profile_store.py): an incremental identity graph and fragment index per tenant.

Every case compares the store's answer (the lookup merges only its identity's component) with a merge of the
whole lake (the same lookup with no selection), on SQLite and PostgreSQL: a batch that joins two components,
a delete that splits one, a dataset delete, a lake that predates the store, and a hypothesis property over
random batches in random order.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tests.profile_data import CATALOG, EVENT_SCHEMA, MP, Loader, create_dataset, idmap
from tests.profiles.test_grouped import _by_profile as by_profile
from upstack.profiles import ExportQuery, merge_profiles, profile_events
from upstack.services import entities, profile_inputs, profile_store
from upstack.services.errors import NotFound, Unprocessable
from upstack.storage import store_repo
from upstack.tenant import Tenant

_sandboxes = itertools.count()


def tenant(client, headers=None) -> Tenant:
    h = dict(client.headers, **(headers or {}))
    return Tenant(h["x-gw-ims-org-id"], h.get("x-sandbox-name", "prod"))


def plan(ctx, t: Tenant, identity: tuple[str, str], policy_id: str | None = None) -> entities.Lookup:
    with ctx.db.session() as s:
        return entities._plan(s, ctx.lake, t, identity, None, False, policy_id)


def answer(lookup: entities.Lookup):
    try:
        return entities.profile(lookup)
    except NotFound:
        return 404
    except Unprocessable:
        return 422


def assert_store_equals_full_merge(ctx, t: Tenant, identities, policies=(None,)) -> None:
    """For every identity and policy: the lookup is planned from the store, and answers what the merge of the
    whole lake answers (profile and events)."""
    for policy_id in policies:
        for ident in identities:
            lookup = plan(ctx, t, ident, policy_id)
            assert lookup.selected is not None, "not answered from the store"
            full = dataclasses.replace(lookup, selected=None)
            assert answer(lookup) == answer(full), (ident, policy_id)
            try:
                mine = profile_events(lookup.merged, lookup.spec, ident).to_pylist()
            except Exception as exc:  # noqa: BLE001 - the same failure on both sides
                mine = type(exc).__name__
            try:
                theirs = profile_events(full.merged, full.spec, ident).to_pylist()
            except Exception as exc:  # noqa: BLE001
                theirs = type(exc).__name__
            assert mine == theirs, (ident, policy_id)


EXPORT_QUERY = ExportQuery(include_events=True, empty_profiles=True)


def assert_export_by_component_equals_full_merge(ctx, t: Tenant, policies=(None,)) -> None:
    """An export merged group by group from the store's components (a budget that splits it) has exactly the
    rows of a merge of the whole lake, whatever the store has indexed yet."""
    with ctx.db.read_session() as s:
        inputs = profile_inputs.dataset_inputs(s, ctx.lake, t)
        comps = profile_store.export_components(s, ctx.lake, t, inputs)
    assert comps is not None, "the store could not give the export its components"
    for policy_id in policies:
        spec = plan(ctx, t, POOL[0], policy_id).spec
        whole = merge_profiles(inputs, spec, EXPORT_QUERY)
        grouped = merge_profiles(inputs, spec, EXPORT_QUERY, memory_budget_bytes=1, components=lambda: comps)
        assert by_profile(grouped) == by_profile(whole), policy_id


def store_components(ctx, t: Tenant) -> dict[tuple[str, str], int]:
    with ctx.db.session() as s:
        tid = store_repo.tenant_id(s, t)
        from sqlalchemy import select

        from upstack.storage.models import StoreIdentity
        rows = s.execute(select(StoreIdentity.namespace, StoreIdentity.identity, StoreIdentity.component)
                         .where(StoreIdentity.tenant_id == tid)).all()
    return {(ns, i): c for ns, i, c in rows}


def pdg_policy(client, headers=None, order: list[str] | None = None) -> str:
    body = {"name": f"p{next(_sandboxes)}", "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": order} if order else {"type": "timestampOrdered"}}
    r = client.post(MP, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def person(*pairs, first=None, updated=None):
    rec = {"identityMap": idmap(*pairs)}
    if first is not None:
        rec["person"] = {"name": {"firstName": first}}
    if updated is not None:
        rec["extSourceSystemAudit"] = {"lastUpdatedDate": updated}
    return rec


def test_a_batch_that_joins_two_components_merges_them_and_a_delete_splits_them(client, ctx, run_jobs):
    load = Loader(client, ctx, run_jobs)
    crm, web = create_dataset(client, "crm"), create_dataset(client, "web", EVENT_SCHEMA)
    load.ingest(crm, [person(("Email", "a@x"), first="Ann"), person(("Email", "b@x"), first="Bo")])
    load.ingest(web, [{"_id": "e1", "timestamp": "2024-01-01T00:00:00Z", "identityMap": idmap(("ECID", "d1"))}],
                kind="event")
    t = tenant(client)
    comps = store_components(ctx, t)
    assert len({comps[("Email", "a@x")], comps[("Email", "b@x")], comps[("ECID", "d1")]}) == 3
    pdg = pdg_policy(client)
    ids = [("Email", "a@x"), ("Email", "b@x"), ("ECID", "d1"), ("CRMID", "c1")]
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))

    # one record links a@x and b@x through c1, another links c1 to the browser: all three are one component
    join = load.ingest(crm, [person(("CRMID", "c1"), ("Email", "a@x"), ("Email", "b@x"), first="Cy"),
                             person(("CRMID", "c1"), ("ECID", "d1"))])
    comps = store_components(ctx, t)
    assert len({comps[k] for k in ids}) == 1
    found = plan(ctx, t, ("Email", "b@x"), pdg)
    assert sum(len(r) for d in found.selected for r in d.rows) == 5  # the component's records, not the lake's
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))

    # deleting the joining batch splits the component again, once the background job has run
    assert client.delete(f"{CATALOG}/batches/{join}").status_code == 200
    assert_store_equals_full_merge(ctx, t, ids[:3], (None, pdg))  # right at once: the deleted rows are not read
    with pytest.MonkeyPatch.context() as m:
        m.setattr(store_repo, "IN_CHUNK", 1)  # a delete touching more components than one statement may name
        run_jobs()
    comps = store_components(ctx, t)
    assert len({comps[k] for k in ids[:3]}) == 3 and ("CRMID", "c1") not in comps
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))


def test_a_dataset_delete_leaves_the_store(client, ctx, run_jobs):
    load = Loader(client, ctx, run_jobs)
    crm, loyalty = create_dataset(client, "crm"), create_dataset(client, "loyalty")
    load.ingest(crm, [person(("Email", "a@x"), first="Ann")])
    load.ingest(loyalty, [person(("Email", "a@x"), ("Phone", "555"), first="Annie"), person(("Phone", "777"))])
    t = tenant(client)
    pdg = pdg_policy(client)
    ids = [("Email", "a@x"), ("Phone", "555"), ("Phone", "777")]
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))
    assert client.delete(f"{CATALOG}/dataSets/{loyalty}").status_code == 200
    run_jobs()
    comps = store_components(ctx, t)
    assert list(comps) == [("Email", "a@x")]
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))
    with ctx.db.session() as s:
        tid = store_repo.tenant_id(s, t)
        assert len(store_repo.component_records(s, tid, list(comps.values()), live_only=False)) == 1


def user_jobs_only(ctx) -> int:
    """Run the user lane's jobs only (ingests, exports): the background `store` job stays queued."""
    from upstack.worker.loop import Worker

    w = Worker(ctx, name="user-lane", lanes=("user",))
    w._register()
    n = 0
    while w.run_once():
        n += 1
    return n


def test_read_your_writes_before_the_background_job_indexes_the_batch(client, ctx, run_jobs):
    """A `success` batch the index does not have yet is scanned by lookups: they reflect it at once, including
    the components it joins, and answer what they answer once it is indexed."""
    load = Loader(client, ctx, run_jobs)
    crm, web = create_dataset(client, "crm"), create_dataset(client, "web", EVENT_SCHEMA)
    load.ingest(crm, [person(("Email", "a@x"), first="Ann", updated="2024-01-01T00:00:00Z"),
                      person(("Email", "b@x"), first="Bo")])
    load.ingest(web, [{"_id": "e1", "timestamp": "2024-01-01T00:00:00Z", "identityMap": idmap(("ECID", "d1"))}],
                kind="event")
    pdg = pdg_policy(client)
    unindexed = Loader(client, ctx, lambda: user_jobs_only(ctx))
    unindexed.ingest(crm, [person(("Email", "a@x"), ("ECID", "d1"), first="Annie", updated="2024-02-01T00:00:00Z"),
                           person(("Email", "b@x"), ("ECID", "d1"))])
    t = tenant(client)
    with ctx.db.session() as s:
        assert len(store_repo.unindexed_batches(s, t)) == 1  # the background job has not run
    lookup = plan(ctx, t, ("Email", "a@x"))
    (found,) = entities.profile(lookup).values()
    assert found["entity"]["person"]["name"]["firstName"] == "Annie"
    ids = [("Email", "a@x"), ("Email", "b@x"), ("ECID", "d1")]
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))
    stitched = plan(ctx, t, ("Email", "b@x"), pdg)
    assert sum(len(r) for d in stitched.selected for r in d.rows) == 5  # a@x, b@x, the event, and both new rows
    assert run_jobs() == 1  # the store job indexes it
    with ctx.db.session() as s:
        assert not store_repo.unindexed_batches(s, t)
    assert len({store_components(ctx, t)[k] for k in ids}) == 1
    assert_store_equals_full_merge(ctx, t, ids, (None, pdg))


def test_a_lake_from_before_the_store_is_indexed_in_the_background(client, ctx, run_jobs):
    load = Loader(client, ctx, run_jobs)
    crm = create_dataset(client, "crm")
    load.ingest(crm, [person(("Email", "a@x"), ("CRMID", "c1"), first="Ann")], legacy_layout=True)  # not indexed
    t = tenant(client)
    first = plan(ctx, t, ("CRMID", "c1"))
    assert first.selected is not None and answer(first) != 404  # scanned: a small lake is read at once
    with pytest.MonkeyPatch.context() as m:
        m.setattr(profile_store, "DELTA_RECORDS", 0)  # as if it held millions of records
        assert plan(ctx, t, ("CRMID", "c1")).selected is None  # merged whole meanwhile, and a sync is queued
    assert run_jobs() == 1
    assert_store_equals_full_merge(ctx, t, [("CRMID", "c1"), ("Email", "a@x")])


# -- property: random batches in random order, some deleted -> the same profiles as one full merge ---------

POOL = [("Email", f"u{i}@x") for i in range(4)] + [("ECID", f"d{i}") for i in range(3)] + [("CRMID", "c0")]
record_ids = st.lists(st.sampled_from(POOL), min_size=1, max_size=2, unique=True)  # small: components join late
profile_record = st.builds(lambda ids, first, day: person(*ids, first=first, updated=f"2024-01-{day:02d}T00:00:00Z"),
                           record_ids, st.sampled_from(["Ann", "Bo", "Cy"]), st.integers(1, 28))
event_record = st.builds(lambda ids, n, day: {"_id": f"ev{n}", "timestamp": f"2024-02-{day:02d}T00:00:00Z",
                                              "identityMap": idmap(*ids)},
                         record_ids, st.integers(0, 10**6), st.integers(1, 28))
batch = st.tuples(st.integers(0, 2), st.lists(profile_record, min_size=1, max_size=3),
                  st.lists(event_record, min_size=1, max_size=2))
# (batches, which to delete, how many of the last ones the background job has not indexed yet when compared)
plans = st.tuples(st.lists(batch, min_size=2, max_size=6), st.lists(st.integers(0, 5), max_size=2), st.integers(0, 3))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(plan_=plans)
def test_random_batches_give_the_profiles_of_one_full_merge(client, ctx, run_jobs, plan_):
    batches, deletes, late = plan_
    headers = {"x-sandbox-name": f"store{next(_sandboxes)}"}
    client.post("/_upstack/sandboxes", json={"org": tenant(client).org, "sandbox": headers["x-sandbox-name"]})
    load, unindexed = Loader(client, ctx, run_jobs), Loader(client, ctx, lambda: user_jobs_only(ctx))
    datasets = [create_dataset(client, "a", headers=headers), create_dataset(client, "b", headers=headers)]
    events = create_dataset(client, "web", EVENT_SCHEMA, headers=headers)
    ingested = []
    for n, (ds, profiles, evs) in enumerate(batches):
        target = datasets[ds] if ds < 2 else events
        loader = unindexed if n >= len(batches) - late else load
        ingested.append(loader.ingest(target, evs if ds == 2 else profiles, kind="event" if ds == 2 else "profile",
                                      headers=headers))
    for k in sorted(set(deletes)):
        if k < len(ingested):
            assert client.delete(f"{CATALOG}/batches/{ingested[k]}", headers=headers).status_code == 200
    t = tenant(client, headers)
    policies = (None, pdg_policy(client, headers), pdg_policy(client, headers, order=[datasets[1]]))
    assert_store_equals_full_merge(ctx, t, POOL, policies)  # the last batches scanned, deletes not yet applied
    assert_export_by_component_equals_full_merge(ctx, t, policies)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(profile_store, "PART_RECORDS", 1)  # one union-find step (and transaction) per record
        run_jobs()
    assert_store_equals_full_merge(ctx, t, POOL, policies)
    assert_export_by_component_equals_full_merge(ctx, t, policies)
    # The store's components are exactly the graph's (no upsert here drops an edge: every record differs).
    expected = _components(ctx, t)
    got = store_components(ctx, t)
    assert set(got) == set(expected)
    assert _partition(got) == _partition(expected)


def _partition(comps: dict) -> set[frozenset]:
    groups: dict[int, set] = {}
    for key, c in comps.items():
        groups.setdefault(c, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def _components(ctx, t: Tenant) -> dict[tuple[str, str], int]:
    """The identity graph of every record of the tenant's live batches, from scratch."""
    from upstack.profiles.components import file_occurrences, number_nodes
    from upstack.services.profile_inputs import dataset_inputs

    with ctx.db.session() as s:
        inputs = dataset_inputs(s, ctx.lake, t)
    parts, base = [], 0
    for d in inputs:
        for f in d.files:
            n, occ = file_occurrences(f, base=base)
            parts.append(occ)
            base += n
    from upstack.profiles.components import Occurrences

    occ = Occurrences.concat(parts)
    nodes = number_nodes(occ)
    if not nodes.keys:
        return {}
    first = {}
    for k, r in enumerate(occ.record.tolist()):
        first.setdefault(r, k)
    dst = np.array([nodes.node_of[first[r]] for r in occ.record.tolist()], dtype=np.int64)
    n = len(nodes.keys)
    _, label = connected_components(coo_matrix((np.ones(len(dst)), (nodes.node_of, dst)), shape=(n, n)),
                                    directed=False)
    return {key: int(label[i]) for i, key in enumerate(nodes.keys)}


@pytest.mark.parametrize("n", [0])
def test_union_of_nothing_is_nothing(n):
    from upstack.profiles.components import Occurrences, number_nodes, union

    occ = Occurrences.concat([])
    update = union(n, occ, number_nodes(occ), {}, 1)
    assert update.new_components == 0 and not update.moves


def test_identities_no_index_row_can_hold_are_kept_by_digest(client, ctx, run_jobs):
    """Ids and namespaces longer than PostgreSQL's index rows allow, or holding NUL, still index (as digests)
    and still answer lookups that equal the full merge."""
    from upstack.profiles.components import KEY_BYTES

    load = Loader(client, ctx, run_jobs)
    crm = create_dataset(client, "crm")
    long_id, long_ns, nul_id = "x" * 3000, "N" * (KEY_BYTES + 1), "a\x00b"
    load.ingest(crm, [person(("Email", long_id), ("CRMID", "c1"), first="Ann"),
                      person((long_ns, "n1"), ("CRMID", "c1")),
                      person(("Email", nul_id), first="Nul")])
    t = tenant(client)
    with ctx.db.session() as s:
        assert not store_repo.unindexed_batches(s, t)  # the store job indexed it on both databases
    comps = store_components(ctx, t)
    assert all(len(ns.encode()) <= KEY_BYTES and len(i.encode()) <= 3 * KEY_BYTES and "\x00" not in i
               for ns, i in comps)
    assert_store_equals_full_merge(ctx, t, [("Email", long_id), (long_ns, "n1"), ("CRMID", "c1"), ("Email", nul_id)],
                                   (None, pdg_policy(client)))
    (found,) = entities.profile(plan(ctx, t, ("Email", long_id), None)).values()
    assert found["entity"]["person"]["name"]["firstName"] == "Ann"


def test_an_export_split_by_component_writes_what_a_whole_lake_export_writes(client, ctx, run_jobs, monkeypatch):
    """Through the export job: with a budget that splits the export, the parts are groups of the store's
    components (one batch not indexed yet joins two of them), and the rows written are those of one part."""
    import json

    from tests.profile_data import read_batch, union_dataset
    from tests.test_export_jobs import get, new_job
    from upstack.profiles import engine as engine_module

    load = Loader(client, ctx, run_jobs)
    crm, web = create_dataset(client, "crm"), create_dataset(client, "web", EVENT_SCHEMA)
    load.ingest(crm, [person(("Email", "a@x"), first="Ann"), person(("Email", "b@x"), first="Bo"),
                      person(("Phone", "1"), first="Cy", updated="2024-01-01T00:00:00Z")])
    load.ingest(web, [{"_id": "e1", "timestamp": "2024-01-01T00:00:00Z", "identityMap": idmap(("ECID", "d1"))}],
                kind="event")
    Loader(client, ctx, lambda: user_jobs_only(ctx)).ingest(
        crm, [person(("CRMID", "c1"), ("Email", "a@x"), ("ECID", "d1"), first="Annie")])  # joins a@x and d1
    target, pdg = union_dataset(client), pdg_policy(client)
    groups = []
    real = engine_module.grouped_export
    monkeypatch.setattr(engine_module, "grouped_export", lambda *a, **k: groups.append(a[2]) or real(*a, **k))

    def export() -> tuple[list, dict]:
        job = new_job(client, target, mergePolicy={"id": pdg})
        user_jobs_only(ctx)  # the store job stays queued: the joining batch is not indexed
        done = get(client, job["id"])
        assert done["status"] == "SUCCEEDED", done
        rows = read_batch(client, ctx, job["destination"]["batchId"]).to_pylist(maps_as_pydicts="strict")
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows), done["metrics"]

    whole, whole_metrics = export()
    assert not groups
    monkeypatch.setenv("UPSTACK_ENGINE_MEMORY_BUDGET", "1")
    split, split_metrics = export()
    assert groups and groups[0] > 1
    assert split == whole and len(whole) == 3  # Ann+Annie+the browser, Bo, Cy
    for key in ("totalExportedProfileCounter", "exportedProfileByNamespaceCounter"):
        assert split_metrics[key] == whole_metrics[key]
    with ctx.db.session() as s:
        assert len(store_repo.unindexed_batches(s, tenant(client))) == 1
