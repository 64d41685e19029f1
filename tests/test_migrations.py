"""The Alembic migrations are the only way the schema is made: they must match the models exactly, and they carry
an existing database's data forward."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from tests.conftest import HEADERS, throwaway_postgres
from upstack.storage.migrate import upgrade
from upstack.storage.models import Base


def test_migrated_schema_matches_models(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path):
    """A database no migration has touched yet (the session databases are already at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        with throwaway_postgres("upstack_migrate") as url:
            yield url


def _old_job(c, job_id: int, org: str, batch_id: str, at: int) -> None:
    """An export job, its batch and its queue row as revision 0003 stored them (ids from one global counter)."""
    c.execute(text(
        "INSERT INTO export_jobs (id, org, sandbox, status, request, request_id, dataset_id, batch_id, "
        "merge_policy_id, merge_policy_version, creation_ms, update_ms, cancel_requested, metrics, errors, "
        "compute_gateway, destination_batches) VALUES (:id, :org, 'prod', 'SUCCEEDED', :req, 'r', 'ds', :b, "
        "'timestampOrdered-none-mp', 1, :at, :at, false, '{}', '[]', '{}', NULL)"),
        {"id": job_id, "org": org, "b": batch_id, "at": at,
         "req": '{"destination": {"datasetId": "ds", "segmentPerBatch": false}, "schema": {"name": '
                '"_xdm.context.profile"}, "mergePolicy": {"id": "timestampOrdered-none-mp", "version": 1}}'})
    c.execute(text(
        "INSERT INTO batches (id, org, sandbox, dataset_id, origin, status, input_format, created_ms, updated_ms, "
        "records_read, records_written, records_failed, errors, export_job_id) VALUES (:b, :org, 'prod', 'ds', "
        "'export', 'success', '{}', :at, :at, 0, 0, 0, '[]', :id)"), {"id": job_id, "org": org, "b": batch_id, "at": at})
    c.execute(text(
        "INSERT INTO jobs (kind, subject_id, org, sandbox, status, attempts, max_attempts, run_after_ms, created_ms, "
        "updated_ms) VALUES ('export', :sid, :org, 'prod', 'succeeded', 1, 3, :at, :at, :at)"),
        {"sid": str(job_id), "org": org, "at": at})


def test_per_tenant_job_ids_keep_existing_jobs_readable(empty_database_url, tmp_path):
    """Jobs created under the global counter keep their ids in their own tenant; each tenant's new ids continue
    after its own largest, and a tenant with no jobs starts at 1."""
    from fastapi.testclient import TestClient

    from tests.profile_data import JOBS, union_dataset
    from upstack.api.app import create_app
    from upstack.config import Settings
    from upstack.context import AppContext

    url, mine, theirs = empty_database_url, HEADERS["x-gw-ims-org-id"], "OTHER@AdobeOrg"
    upgrade(url, "0003")
    engine = create_engine(url)
    with engine.begin() as c:
        for job_id, org in ((1, mine), (2, theirs), (3, mine)):
            _old_job(c, job_id, org, f"batch{job_id}", 1_700_000_000_000 + job_id)
    engine.dispose()
    upgrade(url)

    settings = Settings(data_dir=tmp_path / "data", database_url=url, allowed_hosts="testserver")
    ctx = AppContext.create(settings)
    other, third = dict(HEADERS, **{"x-gw-ims-org-id": theirs}), dict(HEADERS, **{"x-gw-ims-org-id": "THIRD@AdobeOrg"})
    try:
        with TestClient(create_app(settings, ctx), raise_server_exceptions=False) as c:
            c.headers.update(HEADERS)
            for job_id, headers in ((1, HEADERS), (3, HEADERS), (2, other)):
                r = c.get(f"{JOBS}/{job_id}", headers=headers)
                assert r.status_code == 200 and r.json()["destination"]["batchId"] == f"batch{job_id}", r.text
            assert c.get(f"{JOBS}/2").status_code == 404 and c.get(f"{JOBS}/1", headers=other).status_code == 404
            assert [j["id"] for j in c.get(JOBS).json()["records"]] == [3, 1]
            body = {"schema": {"name": "_xdm.context.profile"}}
            for headers, expected in ((HEADERS, 4), (other, 3), (third, 1)):
                target = union_dataset(c, headers=headers)
                r = c.post(JOBS, json=dict(body, destination={"datasetId": target}), headers=headers)
                assert r.status_code == 200 and r.json()["id"] == expected, r.text
    finally:
        ctx.db.dispose()
