"""Job lanes on both databases: user work never waits behind background work, and background work yields to it
without losing the job or counting the yield as an attempt."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import select

from upstack.cli import start_workers
from upstack.jobs import lanes, queue
from upstack.jobs.lanes import BACKGROUND, USER
from upstack.storage.models import Job
from upstack.storage.models import Worker as WorkerRow
from upstack.worker.base import Yielded
from upstack.worker.loop import Worker

# Real kinds of each lane, run by handlers under test control.
BG, FG = "store", "ingest"


@pytest.fixture(autouse=True)
def quick_yields(monkeypatch):
    monkeypatch.setattr(lanes, "YIELD_CHECK_SECONDS", 0.05)
    monkeypatch.setattr(lanes, "YIELD_DELAY_MS", 300)


class Busy:
    """A background handler whose first run loops on checkpoint() until it yields; later runs finish at once."""

    kind = BG

    def __init__(self):
        self.runs: list[tuple[int, str]] = []  # (attempt, how the run ended)
        self.starts: list[float] = []
        self.running = threading.Event()

    def run(self, jc):
        self.starts.append(time.monotonic())
        self.running.set()
        ended = "finished"
        try:
            deadline = time.monotonic() + 30
            while not self.runs and time.monotonic() < deadline:
                jc.checkpoint()
                time.sleep(0.01)
        except Yielded:
            ended = "yielded"
            raise
        finally:
            self.runs.append((jc.job.attempts, ended))

    def give_up(self, app, job, code, message):
        raise AssertionError(f"background job given up: {code} {message}")


class Quick:
    """A user handler that takes `seconds`, recording when it started and ended."""

    kind = FG

    def __init__(self, seconds=0.0):
        self.seconds = seconds
        self.spans: list[tuple[float, float]] = []

    def run(self, jc):
        started = time.monotonic()
        time.sleep(self.seconds)
        self.spans.append((started, time.monotonic()))

    def give_up(self, app, job, code, message):
        raise AssertionError(f"user job given up: {code} {message}")


def enqueue(ctx, kind, subject="s", max_attempts=3, delay_ms=None):
    with ctx.db.session() as s:
        return queue.enqueue(s, kind, subject, "ORG", "prod", max_attempts=max_attempts, delay_ms=delay_ms).id


def job(ctx, job_id) -> Job:
    with ctx.db.session() as s:
        row = s.get(Job, job_id)
        s.expunge(row)
        return row


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {timeout} s")


def test_lanes_are_data_and_unknown_kinds_are_user_work():
    assert lanes.lane_of("ingest") == lanes.lane_of("export") == USER
    assert lanes.lane_of("store") == BACKGROUND
    assert lanes.lane_of("something-new") == USER and not lanes.yields("something-new")
    assert lanes.parse("background, user") == (USER, BACKGROUND)  # claim order, whatever the order given
    for bad in ("", "users", "user,nightly"):
        with pytest.raises(ValueError, match="user, background"):
            lanes.parse(bad)


def test_user_work_waiting_counts_due_or_running_user_jobs_of_any_tenant(ctx):
    def waiting():
        with ctx.db.session() as s:
            return queue.user_work_waiting(s)

    enqueue(ctx, BG)
    assert not waiting()  # background work only
    later = enqueue(ctx, FG, "later", delay_ms=60_000)
    assert not waiting()  # not due yet
    with ctx.db.session() as s:
        queue.enqueue(s, "something-new", "x", "OTHER@AdobeOrg", "dev")
    assert waiting()  # an unknown kind is user work; any tenant counts
    with ctx.db.session() as s:
        s.execute(Job.__table__.delete().where(Job.kind == "something-new"))
        s.execute(Job.__table__.update().where(Job.id == later).values(status="running", hold="PROCESSING"))
    assert not waiting()  # held by manual pacing: running, but doing nothing
    with ctx.db.session() as s:
        s.execute(Job.__table__.update().where(Job.id == later).values(hold=None))
    assert waiting()


def test_user_job_is_claimed_at_once_while_an_older_background_job_runs(ctx):
    bg = enqueue(ctx, BG)
    with ctx.db.session() as s:  # the background lane's thread holds it
        assert queue.claim(s, "bg", 60_000, (BG,)).id == bg
    fg = enqueue(ctx, FG)
    user = Worker(ctx, {FG: Quick(), BG: Busy()}, name="user", lanes=(USER,))
    user._register()
    assert user.run_once() is True
    assert job(ctx, fg).status == "succeeded" and job(ctx, bg).status == "running"
    assert user.run_once() is False  # the user lane never takes background work


def test_one_worker_of_every_lane_claims_user_work_first(ctx):
    bg, fg = enqueue(ctx, BG), enqueue(ctx, FG)
    fast = Quick()
    w = Worker(ctx, {FG: fast, BG: Quick()}, name="both")
    w._register()
    assert w.run_once() is True
    assert job(ctx, fg).status == "succeeded" and job(ctx, bg).status == "queued"
    assert w.run_once() is True and job(ctx, bg).status == "succeeded"


def test_background_lane_claims_nothing_while_user_work_waits(ctx):
    bg, fg = enqueue(ctx, BG), enqueue(ctx, FG)
    w = Worker(ctx, {BG: Quick()}, name="bg", lanes=(BACKGROUND,))
    w._register()
    assert w.run_once() is False and job(ctx, bg).status == "queued"
    with ctx.db.session() as s:
        assert queue.claim(s, "user", 60_000, (FG,)).id == fg
    assert w.run_once() is False  # running counts too: it would halve the user job's speed
    with ctx.db.session() as s:
        assert queue.succeed(s, fg, "user")
    assert w.run_once() is True and job(ctx, bg).status == "succeeded"


def test_running_background_job_yields_to_a_user_job_and_finishes_later(ctx, caplog):
    busy, quick = Busy(), Quick(seconds=0.3)
    handlers = {BG: busy, FG: quick}
    pool = [Worker(ctx, handlers, name="user", lanes=(USER,)), Worker(ctx, handlers, name="bg", lanes=(BACKGROUND,))]
    bg = enqueue(ctx, BG, max_attempts=1)
    caplog.set_level(logging.INFO, logger="upstack.worker")
    for w in pool:
        w.start()
    try:
        assert busy.running.wait(20), "the background lane never started its job"
        posted = time.monotonic()
        fg = enqueue(ctx, FG)
        wait_for(lambda: job(ctx, fg).status == "succeeded", what="user job done")
        wait_for(lambda: job(ctx, bg).status == "succeeded", what="background job done")
    finally:
        for w in pool:
            w.stop()
    # The user job started at once, not after the background job; the background job stopped for it, went back
    # to the queue and ran again once the user job was done.
    (fg_started, fg_ended), = quick.spans
    assert fg_started - posted < 2.0
    assert [ended for _, ended in busy.runs] == ["yielded", "finished"]
    assert busy.starts[1] > fg_ended
    assert [attempt for attempt, _ in busy.runs] == [1, 1]  # the yield was not an attempt
    final = job(ctx, bg)
    assert (final.status, final.attempts, final.max_attempts) == ("succeeded", 1, 1)
    yielded = [r for r in caplog.records if r.getMessage() == "job yielded to user work"]
    assert len(yielded) == 1 and yielded[0].retry_in_ms == lanes.YIELD_DELAY_MS


def test_a_job_that_yields_a_hundred_times_never_fails_for_exhaustion(ctx):
    bg = enqueue(ctx, BG, max_attempts=1)
    for _ in range(100):
        with ctx.db.session() as s:
            claimed = queue.claim(s, "bg", 60_000, (BG,))
            assert claimed.id == bg and claimed.attempts == 1
            assert queue.give_back(s, bg, "bg", retry_in_ms=0)
    row = job(ctx, bg)
    assert (row.status, row.attempts, row.lease_owner, row.lease_expires_ms) == ("queued", 0, None, None)
    with ctx.db.session() as s:
        assert queue.claim(s, "bg", 60_000, (BG,)).attempts == 1
        assert queue.succeed(s, bg, "bg")


def test_a_yielded_job_survives_its_process_and_a_lost_lease_is_not_given_back(ctx):
    bg = enqueue(ctx, BG)
    with ctx.db.session() as s:
        queue.claim(s, "first", 60_000, (BG,))
        assert queue.give_back(s, bg, "first", retry_in_ms=60_000)
    # The process that gave it back dies: the row is all there is, queued, due later, and not claimable yet.
    with ctx.db.session() as s:
        assert queue.claim(s, "second", 60_000, (BG,)) is None
        s.execute(Job.__table__.update().where(Job.id == bg).values(run_after_ms=queue.now_ms()))
    with ctx.db.session() as s:  # due again: another process claims it; then it dies mid-run (lease expires)
        assert queue.claim(s, "second", 1, (BG,)).attempts == 1
    time.sleep(0.01)
    with ctx.db.session() as s:  # re-claimed after the lease, as any job: the dead run counted
        assert queue.claim(s, "third", 60_000, (BG,)).attempts == 2
    with ctx.db.session() as s:
        assert queue.give_back(s, bg, "second", retry_in_ms=0) is False  # no longer its job
        assert queue.succeed(s, bg, "third")
    assert job(ctx, bg).status == "succeeded"


@pytest.mark.parametrize("count,names,expected", [
    (1, (USER, BACKGROUND), [(USER,), (BACKGROUND,)]),
    (3, (USER, BACKGROUND), [(USER,), (USER,), (USER,), (BACKGROUND,)]),
    (2, (USER,), [(USER,), (USER,)]),
    (2, (BACKGROUND,), [(BACKGROUND,)]),
    (0, (USER, BACKGROUND), []),
], ids=["serve-default", "three", "user-only", "background-only", "api-only"])
def test_start_workers_runs_n_user_threads_and_one_background_thread(ctx, count, names, expected):
    pool = start_workers(ctx, count, names)
    try:
        workers = [w for w in pool if isinstance(w, Worker)]
        assert [w.lanes for w in workers] == expected
        assert len(pool) == len(workers) + 1  # and the sweep
        with ctx.db.session() as s:
            rows = s.scalars(select(WorkerRow.lanes)).all()
        assert sorted(rows) == sorted(",".join(lanes_) for lanes_ in expected)
    finally:
        for w in pool:
            w.stop()
