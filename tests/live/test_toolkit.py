"""upstack.testing as a client developer uses it: the pytest plugin's `upstack` fixture (a fresh tenant on the
session's server), `UpstackServer` for scripts, and the example client project of docs/TESTING.md run whole,
its tests in parallel (pytest-xdist), once with a server per worker and once against one shared server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from upstack.testing import UpstackError, UpstackServer

pytestmark = pytest.mark.live

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "client-project"
PERSON = {"identityMap": {"Email": [{"id": "a@example.com", "primary": True}]}, "person": {"name": {"firstName": "A"}}}


def test_fixture_helpers_hold_release_fail_drain_and_journal(upstack):
    crm = upstack.dataset("crm")
    with upstack.hold_jobs(at="NEW"):
        batch = upstack.ingest(crm, [PERSON], wait=False)
        assert upstack.batch(batch["id"])["status"] == "processing"
        assert upstack.drain(timeout=5)["held"] >= 1  # held jobs do not keep a drain waiting
        assert upstack.release(kind="ingest") == 1
        assert upstack.wait_for_batch(batch["id"])["status"] == "success"
    upstack.fail_jobs("ingest", times=1, code="DISK-ON-FIRE")
    failed = upstack.ingest(crm, [PERSON])
    assert failed["status"] == "failed" and failed["errors"][0]["code"] == "DISK-ON-FIRE"
    assert upstack.ingest(crm, [PERSON])["status"] == "success"
    upstack.drain()
    puts = upstack.requests(method="PUT")
    assert len(puts) == 3 and all(r.body is None and r.status == 200 for r in puts)  # uploads: counted only
    assert upstack.request_count(status="4xx") == 0
    upstack.clear_requests()
    assert upstack.requests() == []


def test_fault_helper_routes_and_latency(upstack):
    upstack.fail_next("/data/foundation/catalog/dataSets", status=429, times=1, message="slow down")
    r = upstack.request("GET", "/data/foundation/catalog/dataSets")
    assert r.status == 429 and r.json()["detail"] == "slow down"
    assert upstack.request("GET", "/data/foundation/catalog/dataSets").status == 200
    with pytest.raises(UpstackError, match="400"):
        upstack.fail_next("POST /x", status=200)


def test_server_context_manager_for_scripts():
    with UpstackServer(workers=1) as server:
        first, second = server.tenant(), server.tenant()
        ds = first.dataset("mine")
        assert first.ingest(ds, [PERSON])["status"] == "success"
        assert second.request("GET", "/data/foundation/catalog/dataSets").json() == {}
        url = server.url
    with pytest.raises(OSError):
        import urllib.request

        urllib.request.urlopen(url + "/_upstack/health", timeout=2)


def _run_example(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", *args],
                          cwd=EXAMPLE, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.timeout(600)
def test_the_example_client_project_passes_in_parallel():
    result = _run_example()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


@pytest.mark.timeout(600)
def test_the_example_client_project_against_one_shared_server(upstack_server):
    result = _run_example(env={"UPSTACK_URL": upstack_server.url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
