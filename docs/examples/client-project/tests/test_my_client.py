"""The client project's tests, against upstack through its pytest plugin (no conftest needed: installing
upstack registers the `upstack` fixture). Run with `pytest -n 2` to see parallel tests keep to themselves."""

from __future__ import annotations

import httpx
import pytest

from my_aep_client import ExportFailed, MyAepClient

PEOPLE = [{"identityMap": {"Email": [{"id": f"p{i}@example.com", "primary": True}]},
           "person": {"name": {"firstName": f"First{i}"}}} for i in range(3)]


@pytest.fixture
def client(upstack):
    return MyAepClient(base_url=upstack.url, token="t", api_key="k", org=upstack.org, sandbox=upstack.sandbox)


@pytest.fixture
def target(upstack):
    crm = upstack.dataset("crm", profile=True)
    upstack.ingest(crm, PEOPLE)
    return upstack.dataset("export target", schema="union")


def test_export_succeeds_and_lists_its_files(client, target):
    state = client.wait(client.start_export(target, fields="person.name"))
    assert state["metrics"]["totalExportedProfileCounter"] == 3
    assert client.exported_files(state)


def test_polling_sees_processing_and_cancel_works(upstack, client, target):
    with upstack.hold_jobs(at="PROCESSING"):
        job = client.start_export(target)
        upstack.wait_for_job(job["id"], status="PROCESSING")
        assert client.poll(job)["status"] == "PROCESSING"
        client.cancel(job)
        with pytest.raises(ExportFailed, match="cancelled"):
            client.wait(job)


def test_retries_ride_out_two_503s_and_the_journal_shows_all_three_calls(upstack, client, target):
    upstack.fail_next(route="POST /data/core/ups/export/jobs", status=503, times=2)
    job = client.start_export_with_retries(target)
    assert job["status"] == "NEW"
    sent = upstack.requests(method="POST", path="/data/core/ups/export/jobs")
    assert [r.status for r in sent] == [503, 503, 200]
    assert sent[-1].body["mergePolicy"]["id"] == "timestampOrdered-none-mp"
    assert sent[-1].headers["authorization"] == "[redacted]"


def test_without_retries_a_503_reaches_the_caller(upstack, client, target):
    upstack.fail_next(route="POST /data/core/ups/export/jobs", status=503)
    with pytest.raises(httpx.HTTPStatusError):
        client.start_export(target)
    assert client.start_export(target)["status"] == "NEW"  # times=1: the next call goes through


@pytest.mark.parametrize("worker", ["a", "b"])
def test_parallel_tests_see_only_their_own_tenant(upstack, worker):
    """Run with -n 2: each test has its own org and sandbox on the shared server."""
    ds = upstack.dataset(f"mine-{worker}")
    listed = httpx.get(f"{upstack.url}/data/foundation/catalog/dataSets", headers=upstack.headers).json()
    assert list(listed) == [ds]
    assert upstack.request_count(path="/data/foundation/catalog/dataSets*") == 2  # its POST and its GET only
