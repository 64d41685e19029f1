"""The worker loop: claim from its lanes -> run the handler (heartbeating the lease) -> record the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid

import structlog.contextvars
from sqlalchemy import update
from sqlalchemy.orm import Session

from upstack.context import AppContext
from upstack.jobs import lanes, queue
from upstack.jobs.lanes import lane_of
from upstack.services import controls
from upstack.storage import dialect
from upstack.storage.models import Worker as WorkerRow
from upstack.worker.base import Handler, JobContext, JobLost, PermanentFailure, Yielded

log = logging.getLogger("upstack.worker")


def default_handlers() -> dict[str, Handler]:
    from upstack.worker.export import ExportHandler
    from upstack.worker.ingest import IngestHandler
    from upstack.worker.store import StoreHandler

    return {h.kind: h for h in (IngestHandler(), ExportHandler(), StoreHandler())}


class Worker:
    """One worker thread. Several may run in one process and in many processes against one database.

    It claims only jobs of its `lanes` (`jobs/lanes.py`), trying them in lane order: `serve` and `worker` give
    each thread one lane; tools and tests run every lane on one thread, user work first."""

    def __init__(self, ctx: AppContext, handlers: dict[str, Handler] | None = None, *, name: str | None = None,
                 lanes: tuple[str, ...] = lanes.NAMES):
        self.ctx = ctx
        self.handlers = handlers if handlers is not None else default_handlers()
        self.lanes = lanes
        self._kinds = [(lane, tuple(k for k in self.handlers if lane_of(k) == lane)) for lane in lanes]
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.lease_ms = int(ctx.settings.worker_lease_seconds * 1000)
        self._last_beat = 0.0

    # -- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._register()
        self._thread = threading.Thread(target=self.run_forever, name=f"worker-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread:
            self._thread.join(timeout)
        self._deregister()

    def run_forever(self) -> None:
        poll = self.ctx.settings.worker_poll_seconds
        outage = 0  # consecutive polls that found the database unreachable
        while not self.stop_event.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # a database hiccup must not kill the worker; it retries on the next poll
                worked = False
                if not dialect.is_unavailable(exc):
                    log.exception("worker loop error", extra={"worker_id": self.id})
                elif outage == 0:
                    # One line per outage, not a traceback per poll; polls back off to at most 5 s meanwhile.
                    log.warning("database unavailable; waiting for it",
                                extra={"worker_id": self.id, "exc_type": type(exc).__name__})
                outage += dialect.is_unavailable(exc)
            else:
                if outage:
                    log.info("database reachable again", extra={"worker_id": self.id, "polls": outage})
                outage = 0
            if not worked:
                self.stop_event.wait(min(5.0, poll * 2 ** min(outage, 5)) if outage else poll)

    # -- one job ----------------------------------------------------------------------------------------
    def run_once(self) -> bool:
        """Claim and run at most one job. Returns whether there was one."""
        self._beat(None)
        with self.ctx.db.session() as s:
            for job in queue.give_up_exhausted(s):
                self._give_up_subject(job.kind, job, "WORKER-LOST", "The worker running this job stopped "
                                      f"responding {job.attempts} times; giving up.")
            claimed = self._claim(s)
        if claimed is None:
            return False
        # Whatever the job logs (its handler's lines included) carries the job as fields.
        with structlog.contextvars.bound_contextvars(**_job_fields(claimed)):
            self._run(claimed)
        return True

    def _claim(self, s: Session) -> queue.Claimed | None:
        """The oldest due job of the first lane that has one. A background lane claims nothing while user work
        waits: the job would only yield at its first checkpoint."""
        for lane, kinds in self._kinds:
            if not kinds or (lane != lanes.USER and queue.user_work_waiting(s)):
                continue
            claimed = queue.claim(s, self.id, self.lease_ms, kinds)
            if claimed is not None:
                return claimed
        return None

    def _run(self, claimed: queue.Claimed) -> None:
        handler = self.handlers[claimed.kind]
        jc = JobContext(app=self.ctx, job=claimed, worker_id=self.id)
        started = time.perf_counter()
        log.info("job claimed", extra={"subject_id": claimed.subject_id, "attempt": claimed.attempts,
                                       "max_attempts": claimed.max_attempts, "worker_id": self.id})
        self._beat(claimed.id)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(jc, done), daemon=True)
        beat.start()
        try:
            with self.ctx.db.session() as s:
                forced = controls.take_forced_failure(s, claimed.kind, claimed.org, claimed.sandbox)
            if forced is not None:
                raise PermanentFailure(*forced)
            handler.run(jc)
            outcome = "succeeded"
            with self.ctx.db.session() as s:
                if not queue.succeed(s, claimed.id, self.id, run=(claimed.kind, time.perf_counter() - started)):
                    outcome = "lost"
        except JobLost:
            outcome = "lost"
        except Yielded:
            with self.ctx.db.session() as s:
                given_back = queue.give_back(s, claimed.id, self.id, retry_in_ms=lanes.YIELD_DELAY_MS)
            outcome = "yielded" if given_back else "lost"
            if given_back:
                log.info("job yielded to user work", extra={"retry_in_ms": lanes.YIELD_DELAY_MS})
        except PermanentFailure as exc:
            outcome = "failed"
            with self.ctx.db.session() as s:
                queue.fail(s, claimed.id, self.id, f"{exc.code}: {exc.message}", retry_in_ms=None,
                           run=(claimed.kind, time.perf_counter() - started))
            handler.give_up(self.ctx, claimed, exc.code, exc.message)
        except Exception as exc:  # unexpected: retry while attempts remain
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.exception("job attempt failed", extra={"attempt": claimed.attempts})
            last = claimed.attempts >= claimed.max_attempts
            outcome = "failed" if last else "retrying"
            with self.ctx.db.session() as s:
                queue.fail(s, claimed.id, self.id, detail,
                           retry_in_ms=None if last else queue.backoff_ms(claimed.attempts),
                           run=(claimed.kind, time.perf_counter() - started))
            if last:
                handler.give_up(self.ctx, claimed, "INTERNAL-ERROR", detail)
        finally:
            done.set()
            beat.join(5)
            jc.cleanup()
        with self.ctx.db.session() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == self.id)
                      .values(current_job_id=None, jobs_done=WorkerRow.jobs_done + int(outcome != "yielded")))
        log.info("job finished", extra={"outcome": outcome,
                                        "duration_ms": round((time.perf_counter() - started) * 1000, 3)})

    def _heartbeat(self, jc: JobContext, done: threading.Event) -> None:
        interval = max(0.05, self.lease_ms / 3000)
        while not done.wait(interval):
            try:
                with self.ctx.db.session() as s:
                    if not queue.heartbeat(s, jc.job.id, self.id, self.lease_ms):
                        jc.lost.set()
                        return
                    s.execute(update(WorkerRow).where(WorkerRow.id == self.id).values(heartbeat_ms=queue.now_ms()))
            except Exception as exc:
                # Its own thread: the job's context is not bound here.
                log.warning("job heartbeat failed; will retry", extra=_job_fields(jc.job),
                            exc_info=None if dialect.is_unavailable(exc) else exc)

    def _give_up_subject(self, kind: str, job, code: str, message: str) -> None:
        handler = self.handlers.get(kind)
        if handler is not None:
            claimed = queue.Claimed(job.id, job.kind, job.subject_id, job.org, job.sandbox, job.attempts, job.max_attempts)
            with structlog.contextvars.bound_contextvars(**_job_fields(claimed)):
                handler.give_up(self.ctx, claimed, code, message)

    # -- worker registry (health endpoint) ----------------------------------------------------------------
    def _register(self) -> None:
        t = queue.now_ms()
        with self.ctx.db.session() as s:
            s.merge(WorkerRow(id=self.id, host=socket.gethostname(), pid=os.getpid(), started_ms=t, heartbeat_ms=t,
                              current_job_id=None, jobs_done=0, lanes=",".join(self.lanes)))

    def _deregister(self) -> None:
        try:
            with self.ctx.db.session() as s:
                row = s.get(WorkerRow, self.id)
                if row is not None:
                    s.delete(row)
        except Exception:
            log.warning("worker could not deregister", extra={"worker_id": self.id}, exc_info=True)

    def _beat(self, job_id: int | None) -> None:
        now = time.monotonic()
        if job_id is None and now - self._last_beat < 1.0:
            return
        self._last_beat = now
        with self.ctx.db.session() as s:
            s.execute(update(WorkerRow).where(WorkerRow.id == self.id)
                      .values(heartbeat_ms=queue.now_ms(), current_job_id=job_id))


def _job_fields(job) -> dict:
    """A queue job as log fields: `job_id` (the queue's, unique across tenants), `kind`, `tenant` (org/sandbox)."""
    return {"job_id": job.id, "kind": job.kind, "tenant": f"{job.org}/{job.sandbox}"}
