"""upstack's pytest plugin (registered by the package's `pytest11` entry point, so installing upstack is enough).

Fixtures:
- `upstack_server` (session): a real `upstack serve` on a free port with a temp data dir, started on first use
  (once per xdist worker), or the server at `--upstack-url` / `UPSTACK_URL` when given.
- `upstack` (function): an `upstack.testing.Upstack` for a fresh tenant (org + sandbox of its own), reset after
  the test: tests, and xdist workers sharing one server, never see each other's data, jobs or requests.
"""

from __future__ import annotations

import os

import pytest

from upstack.testing.client import Upstack
from upstack.testing.server import UpstackServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("upstack")
    group.addoption("--upstack-url", default=None,
                    help="Use the upstack server at this URL instead of starting one (also UPSTACK_URL).")
    group.addoption("--upstack-keep-data", action="store_true",
                    help="Keep what tests stored (no reset of each test's tenant afterwards), for a look later.")


@pytest.fixture(scope="session")
def upstack_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    url = request.config.getoption("--upstack-url") or os.environ.get("UPSTACK_URL") or None
    if url:
        server = UpstackServer(url)
    else:
        base = tmp_path_factory.mktemp("upstack")
        server = UpstackServer(data_dir=base / "data", log_path=base / "upstack.log", worker_poll_seconds=0.05)
    with server:
        yield server


@pytest.fixture
def upstack(upstack_server: UpstackServer, request: pytest.FixtureRequest) -> Upstack:
    tenant = upstack_server.tenant()
    yield tenant
    if not request.config.getoption("--upstack-keep-data"):
        tenant.reset()
