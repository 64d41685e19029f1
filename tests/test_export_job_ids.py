"""Export job ids are numbered per tenant (1, 2, 3 ... for each org and sandbox), so a tenant's ids say nothing of
another tenant's activity, and every reference to a job by id (GET, DELETE, list cursor, fast path, batches, the
queue, the worker) is scoped by tenant: the same id in two tenants names two different jobs."""

from __future__ import annotations

import threading

from tests.conftest import HEADERS
from tests.profile_data import JOBS, UNION, union_dataset

OTHER = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
DEV = dict(HEADERS, **{"x-sandbox-name": "dev"})
SCHEMA = {"name": "_xdm.context.profile"}


def new_job(client, target, headers=None, **body):
    r = client.post(JOBS, json={"destination": {"datasetId": target}, "schema": SCHEMA, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def get(client, job_id, headers=None, **params):
    r = client.get(f"{JOBS}/{job_id}", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_each_tenant_numbers_its_jobs_from_one(client):
    mine, theirs, dev = union_dataset(client), union_dataset(client, headers=OTHER), union_dataset(client, headers=DEV)
    assert [new_job(client, mine)["id"] for _ in range(3)] == [1, 2, 3]
    # A new tenant's first id is 1 whatever the others did: it reveals nothing of their activity.
    assert new_job(client, theirs, headers=OTHER)["id"] == 1
    assert new_job(client, dev, headers=DEV)["id"] == 1  # a sandbox is a tenant of its own
    assert new_job(client, mine)["id"] == 4
    assert new_job(client, theirs, headers=OTHER)["id"] == 2


def test_same_id_in_two_tenants_names_two_jobs(client, run_jobs):
    mine, theirs = union_dataset(client), union_dataset(client, headers=OTHER)
    a = new_job(client, mine, fields="person.name")
    b = new_job(client, theirs, headers=OTHER)
    assert a["id"] == b["id"] == 1
    # Both the fast path and the router read the caller's own job.
    for params in ({}, {"via": "router"}):
        assert get(client, 1, **params)["destination"]["datasetId"] == mine
        assert get(client, 1, headers=OTHER, **params)["destination"]["datasetId"] == theirs
    assert get(client, 1)["fields"] == "person.name" and "fields" not in get(client, 1, headers=OTHER)

    # Cancelling one tenant's job 1 leaves the other's alone, and each export batch stays with its own job.
    assert client.delete(f"{JOBS}/1").status_code == 204
    assert get(client, 1)["status"] == "FAILED" and get(client, 1, headers=OTHER)["status"] == "NEW"
    run_jobs()
    done = get(client, 1, headers=OTHER)
    assert done["status"] == "SUCCEEDED", done
    assert get(client, 1)["status"] == "FAILED" and get(client, 1)["errors"][0]["code"] == "EXPORT-CANCELLED"
    batches = {h["x-gw-ims-org-id"]: client.get(f"/data/foundation/catalog/batches/{job['destination']['batchId']}",
                                                headers=h).json()
               for h, job in ((HEADERS, a), (OTHER, b))}
    assert batches[HEADERS["x-gw-ims-org-id"]][a["destination"]["batchId"]]["status"] == "failed"
    assert batches[OTHER["x-gw-ims-org-id"]][b["destination"]["batchId"]]["status"] == "success"
    assert batches[OTHER["x-gw-ims-org-id"]][b["destination"]["batchId"]]["tags"] == {"exportJobId": ["1"]}


def test_list_cursor_stays_in_the_tenant(client):
    mine, theirs = union_dataset(client), union_dataset(client, headers=OTHER)
    for _ in range(3):
        new_job(client, mine)
        new_job(client, theirs, headers=OTHER)
    seen = []
    page = client.get(JOBS, params={"limit": 1}).json()
    while True:
        seen += [(r["imsOrgId"], r["id"]) for r in page["records"]]
        if not page["link"]["next"]:
            break
        page = client.get("/data/core/ups" + page["link"]["next"]).json()
    assert seen == [(HEADERS["x-gw-ims-org-id"], i) for i in (3, 2, 1)]


def test_concurrent_creates_in_one_tenant_never_collide(ctx):
    """Threads creating jobs at once, in one tenant and in another: every create succeeds, and each tenant's ids
    are exactly 1..N (on PostgreSQL the counter row's lock orders them; SQLite has one writer)."""
    from upstack.schemas.catalog import CatalogDataSetRequest
    from upstack.schemas.export_jobs import CreateExportJob
    from upstack.services import export_jobs
    from upstack.services.catalog import create_dataset
    from upstack.tenant import Tenant

    tenants = [Tenant(HEADERS["x-gw-ims-org-id"], "prod"), Tenant("OTHER@AdobeOrg", "prod")]
    targets = {}
    for t in tenants:
        with ctx.db.session() as s:
            body = CatalogDataSetRequest.model_validate({"name": "out", "schemaRef": {"id": UNION}})
            targets[t] = create_dataset(s, t, body).id
    per_thread, threads = 4, 6
    barrier = threading.Barrier(threads)
    ids: dict = {t: [] for t in tenants}
    errors: list = []

    def create(t):
        try:
            barrier.wait(10)
            for _ in range(per_thread):
                with ctx.db.session() as s:
                    job = export_jobs.create_job(s, t, CreateExportJob.model_validate(
                        {"destination": {"datasetId": targets[t]}, "schema": SCHEMA}), "req")
                    job_id = job.id
                ids[t].append(job_id)
        except Exception as exc:  # noqa: BLE001 - collected and shown by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=create, args=(tenants[k % 2],)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    for t in tenants:
        assert sorted(ids[t]) == list(range(1, per_thread * threads // 2 + 1)), (t, ids[t])


def test_queue_rows_and_release_are_tenant_scoped(client, ctx, run_jobs):
    """Held jobs are released by kind and subject id within one tenant: job 1 of one tenant is not job 1 of another."""
    from upstack.jobs import queue

    mine, theirs = union_dataset(client), union_dataset(client, headers=OTHER)
    assert client.put("/_upstack/controls", json={"jobPacing": {"mode": "manual"}}).status_code == 200
    new_job(client, mine)
    new_job(client, theirs, headers=OTHER)
    with ctx.db.session() as s:
        assert queue.release_held(s, "export", "1", org=OTHER["x-gw-ims-org-id"], sandbox="prod") == 1
    assert run_jobs() == 1
    assert get(client, 1, headers=OTHER)["status"] == "SUCCEEDED" and get(client, 1)["status"] == "NEW"
