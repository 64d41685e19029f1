"""Shared fixtures: every API test runs against SQLite and PostgreSQL, through the real app over HTTP."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from upstack.config import Settings
from upstack.storage.migrate import upgrade
from upstack.storage.models import Base

PG_URL = os.environ.get("UPSTACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ON_CI = os.environ.get("CI", "").lower() == "true"

ORG = "TESTORG@AdobeOrg"
HEADERS = {"Authorization": "Bearer test-token", "x-api-key": "test-key", "x-gw-ims-org-id": ORG,
           "x-sandbox-name": "prod"}


def _pg_reachable() -> str | None:
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - the reason is shown in the skip message
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@contextmanager
def throwaway_postgres(prefix: str):
    """A new, empty PostgreSQL database, dropped afterwards. Skips off CI when PostgreSQL is not
    reachable; on CI (CI=true) that is a failure, since .ci/run starts the server."""
    problem = _pg_reachable()
    if problem:
        if ON_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable on CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({problem}); set UPSTACK_TEST_POSTGRES_URL")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A migrated throwaway PostgreSQL database for this session."""
    with throwaway_postgres("upstack_test") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "upstack.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request):
    return request.getfixturevalue(f"{request.param}_url")


def _wipe(url: str) -> None:
    eng = create_engine(url)
    with eng.begin() as c:
        for table in reversed(Base.metadata.sorted_tables):
            c.execute(table.delete())
    eng.dispose()


@pytest.fixture
def settings(database_url, tmp_path: Path) -> Settings:
    _wipe(database_url)
    # TestClient addresses the app as http://testserver: a name the Host check must be told about.
    return Settings(data_dir=tmp_path / "data", database_url=database_url, worker_lease_seconds=5,
                    worker_poll_seconds=0.05, allowed_hosts="testserver")


@pytest.fixture
def ctx(settings):
    from upstack.context import AppContext

    c = AppContext.create(settings)
    yield c
    c.db.dispose()


@pytest.fixture
def client(ctx):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app

    with TestClient(create_app(ctx.settings, ctx), raise_server_exceptions=False) as c:
        c.headers.update(HEADERS)
        yield c


@pytest.fixture
def run_jobs(ctx):
    """Run queued jobs to completion in this thread (deterministic; the threaded loop has its own tests)."""
    from upstack.worker.loop import Worker

    def _run(max_jobs: int = 100) -> int:
        w = Worker(ctx, name="test-worker")
        w._register()
        n = 0
        while n < max_jobs and w.run_once():
            n += 1
        return n

    return _run
