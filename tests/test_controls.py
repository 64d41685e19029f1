"""Local test controls (CONTRACT §10): job pacing, forced failures, injected faults, reset."""

from __future__ import annotations

import time

from sqlalchemy import select

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
    time.sleep(1.1)  # the gateway re-reads faults at most once a second
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
