"""Fixtures of the live suites: real `upstack serve` / `upstack worker` processes over HTTP.

A failing test's report carries the tail of every running process's log.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import throwaway_postgres
from tests.live.aep import aep_headers
from tests.live.server import RUNNING, server_env, start_server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for proc in list(RUNNING):
            report.sections.append((f"{proc.name} (pid {proc.pid}) log, last lines", proc.tail()))
    return report


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`upstack serve` with one embedded worker and a fresh SQLite file; yields its base URL."""
    data_dir = tmp_path_factory.mktemp("live-sqlite") / "data"
    server, base = start_server("upstack-serve", data_dir, server_env(workers=1, worker_poll_seconds=0.1))
    yield base
    server.stop()


@pytest.fixture
def org() -> str:
    """A tenant of its own for each test, so tests sharing one server never see each other's objects."""
    return f"LIVE{uuid.uuid4().hex[:12].upper()}@AdobeOrg"


@pytest.fixture
def api(live_server, org):
    with httpx.Client(base_url=live_server, headers=aep_headers(org), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def empty_postgres_database():
    """A new, empty PostgreSQL database (no schema: `upstack db upgrade` makes it), dropped afterwards."""
    with throwaway_postgres("upstack_live") as url:
        yield url
