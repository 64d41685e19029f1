"""Fixtures of the live suites: real `upstack serve` / `upstack worker` processes over HTTP.

A failing test's report carries the tail of every running process's log.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import throwaway_postgres
from tests.live.server import RUNNING


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for proc in list(RUNNING):
            report.sections.append((f"{proc.name} (pid {proc.pid}) log, last lines", proc.tail()))
    return report


@pytest.fixture(scope="session")
def live_server(upstack_server):
    """`upstack serve` with one embedded worker and a fresh SQLite file, from upstack's own pytest plugin
    (upstack.testing: what client developers use); yields its base URL."""
    return upstack_server.url


@pytest.fixture
def org(upstack) -> str:
    """A tenant of its own for each test (the plugin's), so tests sharing one server never see each other's
    objects."""
    return upstack.org


@pytest.fixture
def api(upstack):
    with httpx.Client(base_url=upstack.url, headers=upstack.headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def empty_postgres_database():
    """A new, empty PostgreSQL database (no schema: `upstack db upgrade` makes it), dropped afterwards."""
    with throwaway_postgres("upstack_live") as url:
        yield url
