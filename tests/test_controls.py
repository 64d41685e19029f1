"""Local test controls (CONTRACT §10): job pacing, forced failures, injected faults, reset."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.profile_data import JOBS, union_dataset
from upstack.jobs import queue
from upstack.storage.models import Job
from upstack.worker.base import PermanentFailure  # noqa: F401 - documents what a forced failure becomes
from upstack.worker.loop import Worker

PATH = "/data/foundation/catalog/dataSets"


class Noop:
    kind = "ingest"

    def __init__(self):
        self.ran = 0
        self.given_up = []

    def run(self, jc):
        self.ran += 1

    def give_up(self, app, job, code, message):
        self.given_up.append((code, message))


def test_manual_pacing_holds_jobs_until_released(client, ctx):
    r = client.put("/_upstack/controls", json={"jobPacing": {"mode": "manual"}})
    assert r.status_code == 200 and r.json()["jobPacing"]["mode"] == "manual"
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "b1", "ORG", "prod")
    h = Noop()
    w = Worker(ctx, {"ingest": h}, name="w")
    w._register()
    assert w.run_once() is False
    assert client.post("/_upstack/jobs/release", json={"kind": "ingest"}).json() == {"released": 1}
    assert w.run_once() is True and h.ran == 1


def test_delay_pacing(client, ctx):
    client.put("/_upstack/controls", json={"jobPacing": {"mode": "delay", "delaySeconds": 0.3}})
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "b1", "ORG", "prod")
    w = Worker(ctx, {"ingest": Noop()}, name="w")
    w._register()
    assert w.run_once() is False
    time.sleep(0.35)
    assert w.run_once() is True


def test_forced_failures_are_consumed_once(client, ctx):
    client.put("/_upstack/controls", json={"failNextJobs": [{"kind": "ingest", "count": 1, "code": "X-1",
                                                             "message": "forced"}]})
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "b1", "ORG", "prod")
        queue.enqueue(s, "ingest", "b2", "ORG", "prod")
    h = Noop()
    w = Worker(ctx, {"ingest": h}, name="w")
    w._register()
    while w.run_once():
        pass
    assert h.given_up == [("X-1", "forced")] and h.ran == 1
    with ctx.db.session() as s:
        assert sorted(s.scalars(select(Job.status)).all()) == ["failed", "succeeded"]
    assert client.get("/_upstack/controls").json()["failNextJobs"][0]["count"] == 0


def test_injected_fault_and_latency_in_family_shape(client):
    client.put("/_upstack/controls", json={"faults": [
        {"method": "GET", "path": "/data/core/ups/*", "status": 503, "message": "down for test"},
        {"method": "GET", "path": PATH, "latencyMs": 150},
    ]})
    r = client.get("/data/core/ups/export/jobs")
    assert r.status_code == 503
    assert r.json()["errors"]["503"][0]["message"] == "down for test"
    t = time.perf_counter()
    assert client.get(PATH).status_code == 200
    assert time.perf_counter() - t >= 0.14
    assert client.delete("/_upstack/controls").json()["faults"] == []


def test_bad_controls_are_400(client):
    assert client.put("/_upstack/controls", json={"jobPacing": {"mode": "sometimes"}}).status_code == 400
    assert client.put("/_upstack/controls", json={"faults": [{"path": "/x", "status": 200}]}).status_code == 400
    assert client.put("/_upstack/controls", json={"nope": 1}).status_code == 400


def test_reset_one_tenant_keeps_others(client):
    from tests.conftest import HEADERS

    other = dict(HEADERS, **{"x-gw-ims-org-id": "OTHER@AdobeOrg"})
    client.post(PATH, json={"name": "mine"})
    client.post(PATH, json={"name": "theirs"}, headers=other)
    assert client.post("/_upstack/reset", json={"org": "OTHER@AdobeOrg"}).status_code == 200
    assert client.get(PATH, headers=other).json() == {}
    assert len(client.get(PATH).json()) == 1
    assert client.post("/_upstack/reset").status_code == 200
    assert client.get(PATH).json() == {}


# ---- controls that fit a test suite: times, tenant scope, at once, held at PROCESSING, drain ------------------

OTHER_ORG = "OTHER@AdobeOrg"


def other_headers():
    from tests.conftest import HEADERS

    return dict(HEADERS, **{"x-gw-ims-org-id": OTHER_ORG})


def test_a_fault_with_times_answers_that_many_requests_from_the_very_next_one(client):
    r = client.post("/_upstack/faults", json={"method": "POST", "path": "/data/core/ups/export/jobs",
                                               "status": 503, "times": 2, "message": "try again"})
    assert r.status_code == 201 and r.json()["id"] and r.json()["times"] == 2
    answers = [client.post("/data/core/ups/export/jobs", json={}).status_code for _ in range(3)]
    assert answers == [503, 503, 400]  # no second of delay: in force at once, used up after two
    assert client.get("/_upstack/controls").json()["faults"] == []


def test_faults_and_failures_scoped_to_one_tenant(client, ctx):
    from tests.conftest import HEADERS

    client.put("/_upstack/controls", json={"faults": [{"path": PATH, "status": 500, "org": OTHER_ORG}]})
    assert client.get(PATH).status_code == 200
    assert client.get(PATH, headers=other_headers()).status_code == 500
    # A tenant's PUT replaces its own rules only; a DELETE with an org clears that tenant's.
    client.put("/_upstack/controls", json={"faults": [{"path": PATH, "status": 418, "org": HEADERS["x-gw-ims-org-id"]}]})
    assert client.get(PATH).status_code == 418 and client.get(PATH, headers=other_headers()).status_code == 500
    client.delete("/_upstack/controls", params={"org": OTHER_ORG})
    assert client.get(PATH, headers=other_headers()).status_code == 200 and client.get(PATH).status_code == 418
    client.delete("/_upstack/controls")
    client.post("/_upstack/failures", json={"kind": "ingest", "times": 1, "org": OTHER_ORG, "code": "X"})
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "mine", HEADERS["x-gw-ims-org-id"], "prod")
        queue.enqueue(s, "ingest", "theirs", OTHER_ORG, "prod")
    h = Noop()
    w = Worker(ctx, {"ingest": h}, name="w")
    w._register()
    while w.run_once():
        pass
    assert h.ran == 1 and h.given_up == [("X", "Failure forced by /_upstack/controls")]


@pytest.mark.parametrize("body", [{"faults": [{"path": "/x", "stauts": 500}]}, {"jobPacing": {"mode": "manual", "at": "NEW"}},
                                  {"failNextJobs": [{"kind": "export", "count": 1, "org": 5}]}])
def test_unknown_or_mistyped_control_members_are_400(client, body):
    r = client.put("/_upstack/controls", json=body)
    assert r.status_code == 400 and "Invalid request" in r.json()["detail"]


def _wait_status(client, job_id, status, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{JOBS}/{job_id}").json()
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {status}: {job}")


def test_jobs_held_at_processing_then_cancelled_or_released_and_drain(client, ctx):
    from tests.conftest import HEADERS

    target = union_dataset(client)
    client.put("/_upstack/pacing", json={"mode": "manual", "holdAt": "PROCESSING", "org": HEADERS["x-gw-ims-org-id"]})
    worker = Worker(ctx, name="bg")
    worker.start()
    try:
        body = {"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"}}
        held = client.post(JOBS, json=body).json()["id"]
        _wait_status(client, held, "PROCESSING")
        time.sleep(0.5)
        assert client.get(f"{JOBS}/{held}").json()["status"] == "PROCESSING"  # it stays there
        drained = client.post("/_upstack/jobs/drain", json={"timeoutSeconds": 0.2}).json()
        assert drained == {"drained": True, "active": 0, "held": 1}
        assert client.delete(f"{JOBS}/{held}").status_code == 204
        failed = _wait_status(client, held, "FAILED")
        assert failed["errors"][0]["code"] == "EXPORT-CANCELLED"
        second = client.post(JOBS, json=body).json()["id"]
        _wait_status(client, second, "PROCESSING")
        released = client.post("/_upstack/jobs/release", json={"kind": "export", "subjectId": second,
                                                               "org": HEADERS["x-gw-ims-org-id"]}).json()
        assert released == {"released": 1}
        _wait_status(client, second, "SUCCEEDED")
        # Another tenant's jobs were never held by this tenant's pacing.
        their_target = union_dataset(client, headers=other_headers())
        theirs = client.post(JOBS, json=dict(body, destination={"datasetId": their_target}),
                             headers=other_headers()).json()["id"]
        assert client.post("/_upstack/jobs/drain", json={"org": OTHER_ORG, "timeoutSeconds": 30}).json()["drained"]
        assert client.get(f"{JOBS}/{theirs}", headers=other_headers()).json()["status"] == "SUCCEEDED"
    finally:
        worker.stop()


def test_drain_reports_a_timeout(client, ctx):
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "b1", "ORG", "prod")  # no worker runs: it stays queued
    started = time.monotonic()
    assert client.post("/_upstack/jobs/drain", json={"timeoutSeconds": 0.3}).json() == {
        "drained": False, "active": 1, "held": 0}
    assert 0.3 <= time.monotonic() - started < 3
