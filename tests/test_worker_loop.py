"""The worker loop with a handler under test control: success, retry, permanent failure, lost lease."""

from __future__ import annotations

import time

from sqlalchemy import select

from upstack.jobs import queue
from upstack.storage.models import Job
from upstack.storage.models import Worker as WorkerRow
from upstack.worker.base import PermanentFailure
from upstack.worker.loop import Worker


class Recorder:
    kind = "test"

    def __init__(self, script):
        self.script = list(script)  # per run: "ok" | "boom" | "permanent" | ("sleep", s)
        self.runs = []
        self.given_up = []

    def run(self, jc):
        self.runs.append((jc.job.subject_id, jc.job.attempts))
        step = self.script.pop(0) if self.script else "ok"
        if step == "boom":
            raise RuntimeError("transient")
        if step == "permanent":
            raise PermanentFailure("BAD-INPUT", "cannot ever work")
        if isinstance(step, tuple):
            deadline = time.monotonic() + step[1]
            while time.monotonic() < deadline:
                jc.checkpoint()
                time.sleep(0.02)

    def give_up(self, app, job, code, message):
        self.given_up.append((job.subject_id, code, message))


def enqueue(ctx, subject="s1", max_attempts=3):
    with ctx.db.session() as s:
        queue.enqueue(s, "test", subject, "ORG", "prod", max_attempts=max_attempts)


def status(ctx):
    with ctx.db.session() as s:
        return s.scalar(select(Job.status))


def test_success_and_worker_registry(ctx):
    h = Recorder(["ok"])
    enqueue(ctx)
    w = Worker(ctx, {"test": h}, name="w1")
    w._register()
    assert w.run_once() is True
    assert status(ctx) == "succeeded"
    with ctx.db.session() as s:
        assert s.get(WorkerRow, "w1").jobs_done == 1
    assert w.run_once() is False


def test_transient_errors_retry_then_give_up(ctx, monkeypatch):
    monkeypatch.setattr(queue, "backoff_ms", lambda attempt: 0)
    h = Recorder(["boom", "boom", "boom"])
    enqueue(ctx, max_attempts=3)
    w = Worker(ctx, {"test": h}, name="w1")
    w._register()
    while w.run_once():
        pass
    assert [a for _, a in h.runs] == [1, 2, 3]
    assert status(ctx) == "failed"
    assert h.given_up and h.given_up[0][1] == "INTERNAL-ERROR" and "transient" in h.given_up[0][2]


def test_permanent_failure_is_not_retried(ctx):
    h = Recorder(["permanent"])
    enqueue(ctx)
    w = Worker(ctx, {"test": h}, name="w1")
    w._register()
    while w.run_once():
        pass
    assert len(h.runs) == 1
    assert h.given_up == [("s1", "BAD-INPUT", "cannot ever work")]
    assert status(ctx) == "failed"


def test_threaded_workers_share_jobs_and_stop(ctx):
    h = Recorder([])
    for i in range(10):
        enqueue(ctx, f"s{i}")
    workers = [Worker(ctx, {"test": h}, name=f"w{i}") for i in range(3)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ctx.db.session() as s:
            if s.scalar(select(Job).where(Job.status != "succeeded")) is None:
                break
        time.sleep(0.05)
    for w in workers:
        w.stop()
    assert sorted(s for s, _ in h.runs) == sorted(f"s{i}" for i in range(10))
    with ctx.db.session() as s:
        assert s.scalars(select(WorkerRow)).all() == []  # deregistered


def test_lost_lease_stops_the_handler_without_recording(ctx):
    ctx.settings.worker_lease_seconds = 0.3
    h = Recorder([("sleep", 3)])
    enqueue(ctx)
    w = Worker(ctx, {"test": h}, name="slow")
    w._register()
    import threading

    t = threading.Thread(target=w.run_once)
    t.start()
    time.sleep(0.15)
    with ctx.db.session() as s:  # another worker steals the job (as if our lease had expired)
        s.execute(Job.__table__.update().values(lease_owner="thief"))
    t.join(10)
    assert not t.is_alive()
    with ctx.db.session() as s:
        job = s.scalar(select(Job))
    assert job.status == "running" and job.lease_owner == "thief"
    assert h.given_up == []
