"""The local controls' reads and writes that touch the database (/_upstack: health, reset, held jobs), so the
admin router reaches storage and the job queue only through services (docs/ARCHITECTURE.md, "Layers").
Like every service, these flush and never commit: the router's session does."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.services import controls
from upstack.storage import admin_repo


def workers(s: Session, *, now_ms: float, stale_after_ms: float) -> list[dict[str, Any]]:
    """Every worker's heartbeat, oldest first; `alive` when it beat within `stale_after_ms` of `now_ms`."""
    return [{"id": w.id, "host": w.host, "pid": w.pid, "heartbeat": w.heartbeat_ms,
             "alive": now_ms - w.heartbeat_ms < stale_after_ms, "currentJobId": w.current_job_id,
             "jobsDone": w.jobs_done, "lanes": w.lanes.split(",") if w.lanes else []}
            for w in admin_repo.workers(s)]


def wipe(s: Session, org: str | None, sandbox: str | None) -> set[str]:
    """Delete the data and the controls of one sandbox, of one org (sandbox None) or of everyone (both None).
    Returns the sandboxes of `org` that had data, whose lake directories the caller removes once committed."""
    sandboxes = {sandbox} if sandbox else (admin_repo.sandboxes_of(s, org) if org else set())
    admin_repo.wipe(s, org, sandbox)
    controls.clear(s, org, sandbox)
    return sandboxes


def release_held(s: Session, kind: str | None, subject_id: str | None, *, org: str | None,
                 sandbox: str | None) -> int:
    """Let held jobs go on (all, or those matching); returns how many."""
    return queue.release_held(s, kind, subject_id, org=org, sandbox=sandbox)


def pending(s: Session, org: str | None, sandbox: str | None) -> tuple[int, int]:
    """(jobs queued or running, jobs held until released) of a tenant or of everyone."""
    return queue.pending(s, org, sandbox)
