"""The durable job queue: enqueue, claim one job in one statement, heartbeat its lease, record its outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from upstack.jobs import lanes
from upstack.jobs.states import QUEUE, transition
from upstack.schemas.controls import PacingRule
from upstack.storage import controls_repo, dialect, metrics_repo
from upstack.storage.models import Job


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    subject_id: str
    org: str
    sandbox: str
    attempts: int
    max_attempts: int


HELD_MS = 253_402_300_799_000  # 9999-12-31: a held job is due only when released


PACING_ROW = "pacing"


def pacing_rule(session: Session, org: str, sandbox: str) -> PacingRule:
    """The job pacing of a tenant (CONTRACT §10): its own rule, else its org's, else the global one, else
    immediate."""
    rules = [PacingRule.model_validate(r) for r in (controls_repo.get(session, PACING_ROW) or {}).get("rules", [])]
    covering = [r for r in rules if r.covers(org, sandbox)]
    return max(covering, key=lambda r: r.specificity) if covering else PacingRule()


def enqueue(session: Session, kind: str, subject_id: str, org: str, sandbox: str, *, max_attempts: int = 3,
            delay_ms: int | None = None) -> Job:
    """A new job. Unless `delay_ms` says when, the tenant's pacing does: now, after a delay, held at NEW (due
    only when released) or held once it runs (`hold`, checked by the handler)."""
    t = now_ms()
    hold = None
    if delay_ms is not None:
        run_after = t + delay_ms
    else:
        pacing = pacing_rule(session, org, sandbox)
        run_after = t + int(pacing.delaySeconds * 1000) if pacing.mode == "delay" else t
        if pacing.mode == "manual":
            if pacing.holdAt == "NEW":
                run_after = HELD_MS
            else:
                hold = "PROCESSING"
    job = Job(kind=kind, subject_id=subject_id, org=org, sandbox=sandbox, status="queued", attempts=0,
              max_attempts=max_attempts, run_after_ms=run_after, created_ms=t, updated_ms=t, hold=hold)
    session.add(job)
    session.flush()
    return job


def enqueue_once(session: Session, kind: str, subject_id: str, org: str, sandbox: str, *,
                 max_attempts: int = 3, delay_ms: int | None = None) -> Job | None:
    """Enqueue unless the same job is already queued and has not started: that run will see everything this
    request would (a debounce). None when it was already queued. Two racing callers may both enqueue; the
    work must be idempotent anyway."""
    waiting = session.scalar(select(Job.id).where(Job.kind == kind, Job.subject_id == subject_id, Job.org == org,
                                                  Job.sandbox == sandbox, Job.status == "queued").limit(1))
    if waiting is not None:
        return None
    return enqueue(session, kind, subject_id, org, sandbox, max_attempts=max_attempts, delay_ms=delay_ms)


def claim(session: Session, worker_id: str, lease_ms: int, kinds: tuple[str, ...] | None = None) -> Claimed | None:
    """Claim the oldest runnable job: queued and due, or running with an expired lease (its worker died).
    PostgreSQL skips rows other workers hold locked; SQLite has one writer at a time (BEGIN IMMEDIATE)."""
    t = now_ms()
    kind_filter = ""
    params = {"now": t, "owner": worker_id, "expires": t + lease_ms}
    if kinds:
        names = [f"k{i}" for i in range(len(kinds))]
        kind_filter = f"AND kind IN ({', '.join(':' + n for n in names)})"
        params.update(dict(zip(names, kinds, strict=True)))
    lock = dialect.skip_locked(session.get_bind())
    sql = f"""
        UPDATE jobs SET status = 'running', lease_owner = :owner, lease_expires_ms = :expires,
                        attempts = attempts + 1, updated_ms = :now
        WHERE id = (
            SELECT id FROM jobs
            WHERE ((status = 'queued' AND run_after_ms <= :now)
                   OR (status = 'running' AND lease_expires_ms < :now AND attempts < max_attempts))
                  {kind_filter}
            ORDER BY id
            LIMIT 1 {lock}
        )
        RETURNING id, kind, subject_id, org, sandbox, attempts, max_attempts
    """
    row = session.execute(text(sql), params).first()
    return Claimed(*row) if row else None


def heartbeat(session: Session, job_id: int, worker_id: str, lease_ms: int) -> bool:
    """Renew the lease. False means the job is no longer ours (lease lost, claimed elsewhere): stop work."""
    t = now_ms()
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == "running")
        .values(lease_expires_ms=t + lease_ms, updated_ms=t)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1


def user_work_waiting(session: Session) -> bool:
    """Whether any tenant has user-lane work queued and due, or running (a job held by manual pacing waits
    without working, and does not count). Background lanes give way while it does."""
    t = now_ms()
    due = (Job.status == "queued") & (Job.run_after_ms <= t)
    working = (Job.status == "running") & Job.hold.is_(None)
    found = session.scalar(select(Job.id).where(Job.kind.not_in(lanes.background_kinds()), due | working).limit(1))
    return found is not None


def give_back(session: Session, job_id: int, worker_id: str, *, retry_in_ms: int) -> bool:
    """Put a running job back in the queue, due after `retry_in_ms`, as if this run had never been claimed: its
    attempt is not counted and its lease is released. For background work yielding to user work."""
    t = now_ms()
    return transition(session, Job, QUEUE, job_id, "queued", from_states=("running",),
                      where=_owned(job_id, worker_id), updated_ms=t, run_after_ms=t + retry_in_ms,
                      attempts=Job.attempts - 1, lease_owner=None, lease_expires_ms=None)


def _owned(job_id: int, worker_id: str) -> tuple:
    return (Job.lease_owner == worker_id,)


def succeed(session: Session, job_id: int, worker_id: str, *, run: tuple[str, float] | None = None) -> bool:
    """Record a successful run. `run` (kind, seconds the run took) goes to the job run totals of
    GET /_upstack/metrics in the same transaction, only if this call made the move."""
    moved = transition(session, Job, QUEUE, job_id, "succeeded", from_states=("running",),
                       where=_owned(job_id, worker_id), updated_ms=now_ms(), lease_expires_ms=None)
    _count_run(session, moved, run, "succeeded")
    return moved


def fail(session: Session, job_id: int, worker_id: str, error: str, *, retry_in_ms: int | None,
         run: tuple[str, float] | None = None) -> bool:
    """Record a failed run: back to the queue after `retry_in_ms`, or failed for good when None."""
    t = now_ms()
    if retry_in_ms is None:
        moved = transition(session, Job, QUEUE, job_id, "failed", from_states=("running",),
                           where=_owned(job_id, worker_id), updated_ms=t, last_error=error, lease_expires_ms=None)
    else:
        moved = transition(session, Job, QUEUE, job_id, "queued", from_states=("running",),
                           where=_owned(job_id, worker_id), updated_ms=t, last_error=error,
                           run_after_ms=t + retry_in_ms, lease_owner=None, lease_expires_ms=None)
    _count_run(session, moved, run, "failed" if retry_in_ms is None else "retried")
    return moved


def _count_run(session: Session, moved: bool, run: tuple[str, float] | None, outcome: str) -> None:
    if moved and run is not None:
        kind, seconds = run
        metrics_repo.add_job_run(session, kind, outcome, seconds)


def give_up_exhausted(session: Session) -> list[Job]:
    """Jobs whose lease expired after their last allowed attempt: failed for good (their worker died
    every time). Returns them so the caller can fail their subjects too."""
    t = now_ms()
    rows = session.scalars(
        select(Job).where(Job.status == "running", Job.lease_expires_ms < t, Job.attempts >= Job.max_attempts)
    ).all()
    done = []
    for job in rows:
        if transition(session, Job, QUEUE, job.id, "failed", from_states=("running",),
                      where=(Job.lease_expires_ms < t,), updated_ms=t, last_error="worker lease expired"):
            done.append(job)
    for job in done:  # after the moves: the totals row stays locked for the rest of this short transaction only
        metrics_repo.add(session, metrics_repo.JOBS_ABANDONED, job.kind)
    return done


def live_runs(session: Session, runs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which (job id, attempt) runs still hold their lease: running, that attempt, lease not expired. A run
    not in the answer is dead (crashed, re-claimed, finished), and its files may be swept."""
    if not runs:
        return set()
    t = now_ms()
    rows = session.execute(select(Job.id, Job.attempts).where(
        Job.id.in_({job_id for job_id, _ in runs}), Job.status == "running", Job.lease_expires_ms > t)).all()
    return {(row.id, row.attempts) for row in rows} & set(runs)


def release_held(session: Session, kind: str | None = None, subject_id: str | None = None, *,
                 org: str | None = None, sandbox: str | None = None) -> int:
    """Let held jobs go on: those held at NEW become due now, those held at PROCESSING run on. Returns how many
    were released. A subject id is unique only within its tenant (export job ids are numbered per tenant):
    `org` and `sandbox` narrow it to one."""
    if not dialect.storable(kind or "", subject_id or "", org or "", sandbox or ""):
        return 0  # names no job could have
    conditions = []
    if kind:
        conditions.append(Job.kind == kind)
    if subject_id:
        conditions.append(Job.subject_id == subject_id)
    if org:
        conditions.append(Job.org == org)
    if sandbox:
        conditions.append(Job.sandbox == sandbox)
    at_new = update(Job).where(Job.status == "queued", Job.run_after_ms >= HELD_MS, *conditions)
    released = session.execute(at_new.values(run_after_ms=now_ms()).execution_options(synchronize_session=False))
    at_processing = update(Job).where(Job.status.in_(("queued", "running")), Job.hold.is_not(None), *conditions)
    held = session.execute(at_processing.values(hold=None).execution_options(synchronize_session=False))
    return released.rowcount + held.rowcount


def is_held(session: Session, job_id: int) -> bool:
    return session.scalar(select(Job.hold).where(Job.id == job_id)) is not None


def pending(session: Session, org: str | None = None, sandbox: str | None = None) -> tuple[int, int]:
    """(jobs queued or running that will finish by themselves, jobs held until released) of a tenant or all."""
    q = select(Job.run_after_ms, Job.hold).where(Job.status.in_(("queued", "running")))
    if org:
        q = q.where(Job.org == org)
    if sandbox:
        q = q.where(Job.sandbox == sandbox)
    rows = session.execute(q).all()
    held = sum(1 for r in rows if r.run_after_ms >= HELD_MS or r.hold is not None)
    return len(rows) - held, held


def backoff_ms(attempt: int) -> int:
    return min(30_000, 500 * 2 ** (attempt - 1))
