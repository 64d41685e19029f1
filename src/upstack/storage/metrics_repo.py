"""SQL of `GET /_upstack/metrics`: the cumulative totals (`metric_totals`) and the live state of the queue.

Every query here is bounded whatever the history: the totals table holds a few dozen rows, the queue state reads
only jobs that are queued or running (through `ix_jobs_claim`, whose first column is the status), and the workers
table holds one row per worker thread. Nothing aggregates all jobs or batches ever made."""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import NamedTuple

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from upstack.storage.models import Job, MetricTotal, Worker

# Upper bounds (seconds) of the job run duration buckets. A stored row names its bucket by index, so changing these
# needs a migration that clears the `job_runs` rows.
JOB_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, math.inf)

JOB_RUNS = "job_runs"
JOBS_ABANDONED = "jobs_abandoned"
RECORDS_INGESTED = "records_ingested"
PROFILES_EXPORTED = "profiles_exported"

# One statement adds to a total, creating its row at the first event. SQLite and PostgreSQL both take this text. On
# PostgreSQL the row stays locked until the adding transaction commits: callers add last, just before their commit,
# so concurrent workers wait on it for microseconds.
_ADD = text(
    "INSERT INTO metric_totals (name, kind, outcome, bucket, value, sum_ms) "
    "VALUES (:name, :kind, :outcome, :bucket, :value, :sum_ms) "
    "ON CONFLICT (name, kind, outcome, bucket) DO UPDATE SET value = metric_totals.value + excluded.value, "
    "sum_ms = metric_totals.sum_ms + excluded.sum_ms")


def add(s: Session, name: str, kind: str = "", *, value: int = 1, outcome: str = "", bucket: int = 0,
        sum_ms: int = 0) -> None:
    s.execute(_ADD, {"name": name, "kind": kind, "outcome": outcome, "bucket": bucket, "value": value,
                     "sum_ms": sum_ms})


def add_job_run(s: Session, kind: str, outcome: str, seconds: float) -> None:
    """One run of a job ended (`succeeded`, `failed` for good, or `retried` later), after `seconds`."""
    seconds = max(0.0, seconds)
    add(s, JOB_RUNS, kind, outcome=outcome, bucket=bisect_left(JOB_SECONDS_BUCKETS, seconds),
        sum_ms=round(seconds * 1000))


class Total(NamedTuple):
    name: str
    kind: str
    outcome: str
    bucket: int
    value: int
    sum_ms: int


def totals(s: Session) -> list[Total]:
    t = MetricTotal
    q = select(t.name, t.kind, t.outcome, t.bucket, t.value, t.sum_ms).order_by(t.name, t.kind, t.outcome, t.bucket)
    return [Total(*row) for row in s.execute(q)]


class ActiveJobs(NamedTuple):
    kind: str
    status: str  # queued | running
    jobs: int
    due: int  # queued and due now: waiting for a worker
    oldest_due_ms: int | None  # run_after_ms of the longest-waiting due job


def active_jobs(s: Session, now_ms: int) -> list[ActiveJobs]:
    """Jobs queued or running, by kind and status, with the due part of the queue. Held jobs (due only when
    released) and retries in their backoff are queued but not due."""
    due = (Job.status == "queued") & (Job.run_after_ms <= now_ms)
    q = (select(Job.kind, Job.status, func.count(), func.sum(case((due, 1), else_=0)),
                func.min(case((due, Job.run_after_ms), else_=None)))
         .where(Job.status.in_(("queued", "running")))
         .group_by(Job.kind, Job.status))
    return [ActiveJobs(kind, status, n, int(d or 0), oldest) for kind, status, n, d, oldest in s.execute(q)]


def workers(s: Session, alive_since_ms: int) -> tuple[int, int]:
    """(workers whose heartbeat is recent, registered workers whose heartbeat is not)."""
    alive, total = s.execute(select(func.sum(case((Worker.heartbeat_ms >= alive_since_ms, 1), else_=0)),
                                    func.count()).select_from(Worker)).one()
    return int(alive or 0), int(total or 0) - int(alive or 0)
