"""The durable queue on both databases: exclusive claims under concurrency, leases, retries, state tables."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from upstack.jobs import queue
from upstack.jobs.states import BATCH, EXPORT, QUEUE, IllegalTransition, sources_of, transition
from upstack.storage.models import Job


def enqueue_n(ctx, n, kind="ingest"):
    with ctx.db.session() as s:
        for i in range(n):
            queue.enqueue(s, kind, f"subject-{i}", "ORG", "prod", max_attempts=3)


def test_each_job_claimed_exactly_once_by_concurrent_workers(ctx):
    enqueue_n(ctx, 40)
    claimed: list[int] = []
    lock = threading.Lock()
    errors = []

    def worker(name):
        try:
            while True:
                with ctx.db.session() as s:
                    job = queue.claim(s, name, 60_000)
                if job is None:
                    return
                with lock:
                    claimed.append(job.id)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


def test_expired_lease_is_reclaimed_and_heartbeat_of_loser_fails(ctx):
    enqueue_n(ctx, 1)
    with ctx.db.session() as s:
        first = queue.claim(s, "dead-worker", 1)
    assert first.attempts == 1
    time.sleep(0.01)
    with ctx.db.session() as s:
        again = queue.claim(s, "live-worker", 60_000)
    assert again.id == first.id and again.attempts == 2
    with ctx.db.session() as s:
        assert queue.heartbeat(s, first.id, "dead-worker", 1000) is False
        assert queue.heartbeat(s, first.id, "live-worker", 1000) is True
        assert queue.succeed(s, first.id, "dead-worker") is False
        assert queue.succeed(s, first.id, "live-worker") is True
    with ctx.db.session() as s:
        assert queue.claim(s, "x", 1000) is None


def test_live_lease_is_not_reclaimed(ctx):
    enqueue_n(ctx, 1)
    with ctx.db.session() as s:
        assert queue.claim(s, "a", 60_000) is not None
    with ctx.db.session() as s:
        assert queue.claim(s, "b", 60_000) is None


def test_retry_with_backoff_then_exhausted(ctx):
    enqueue_n(ctx, 1)
    with ctx.db.session() as s:
        job = queue.claim(s, "w", 60_000)
        assert queue.fail(s, job.id, "w", "boom", retry_in_ms=0)
    with ctx.db.session() as s:
        job = queue.claim(s, "w", 60_000)
        assert job.attempts == 2
        assert queue.fail(s, job.id, "w", "boom", retry_in_ms=60_000)
    with ctx.db.session() as s:
        assert queue.claim(s, "w", 60_000) is None  # not due yet
        row = s.scalar(select(Job))
        assert row.status == "queued" and row.last_error == "boom"


def test_dead_worker_on_last_attempt_is_given_up(ctx):
    with ctx.db.session() as s:
        queue.enqueue(s, "ingest", "b1", "ORG", "prod", max_attempts=1)
    with ctx.db.session() as s:
        queue.claim(s, "dead", 1)
    time.sleep(0.01)
    with ctx.db.session() as s:
        assert queue.claim(s, "other", 1000) is None  # attempts exhausted: not re-run
        gone = queue.give_up_exhausted(s)
    assert [j.subject_id for j in gone] == ["b1"]
    with ctx.db.session() as s:
        assert s.scalar(select(Job.status)) == "failed"


def test_kind_filter(ctx):
    enqueue_n(ctx, 1, kind="export")
    with ctx.db.session() as s:
        assert queue.claim(s, "w", 1000, ("ingest",)) is None
        assert queue.claim(s, "w", 1000, ("export",)) is not None


def test_state_tables_allow_only_documented_moves():
    assert EXPORT["NEW"] == {"PROCESSING", "FAILED"}
    assert EXPORT["SUCCEEDED"] == set() and EXPORT["FAILED"] == set()
    assert sources_of(EXPORT, "SUCCEEDED") == ("PROCESSING",)
    assert sources_of(BATCH, "success") == ("processing",)
    assert "queued" in QUEUE["running"]


def test_transition_is_conditional_and_rejects_illegal_moves(ctx):
    enqueue_n(ctx, 1)
    with ctx.db.session() as s:
        job_id = s.scalar(select(Job.id))
        with pytest.raises(IllegalTransition):
            transition(s, Job, QUEUE, job_id, "succeeded", from_states=("queued",))
        assert transition(s, Job, QUEUE, job_id, "running", from_states=("queued",)) is True
        assert transition(s, Job, QUEUE, job_id, "running", from_states=("queued",)) is False
        assert transition(s, Job, QUEUE, job_id, "succeeded") is True
        assert transition(s, Job, QUEUE, job_id, "failed") is False  # terminal
