"""What a job handler sees: the claimed job, the app context, and checkpoints that stop lost or cancelled work
and make background work give way to user work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from upstack.context import AppContext
from upstack.jobs import lanes, queue
from upstack.jobs.queue import Claimed
from upstack.lake import owner_tag


class JobLost(Exception):
    """Our lease was lost (another worker owns the job now): stop without recording anything."""


class Yielded(Exception):
    """A background job gives way to user work: it goes back to the queue, this run not counted as an attempt."""


class PermanentFailure(Exception):
    """The job cannot succeed by running again (bad input, cancelled): fail it now, no retry."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class JobContext:
    app: AppContext
    job: Claimed
    worker_id: str
    lost: threading.Event = field(default_factory=threading.Event)
    _temp: Path | None = None
    _next_yield_check: float = field(init=False,
                                     default_factory=lambda: time.monotonic() + lanes.YIELD_CHECK_SECONDS)

    @property
    def owner(self) -> str:
        """This run's tag on its staging and scratch directories: the sweep keeps them while its lease lives."""
        return owner_tag(self.job.id, self.job.attempts)

    @property
    def temp_dir(self) -> str:
        """Scratch space of this run (spill files, DuckDB temp files), removed when the run ends."""
        if self._temp is None:
            self._temp = self.app.lake.new_temp_dir(self.owner)
        return str(self._temp)

    def cleanup(self) -> None:
        if self._temp is not None:
            self.app.lake.remove_temp_dir(self._temp)
            self._temp = None

    @property
    def is_last_attempt(self) -> bool:
        return self.job.attempts >= self.job.max_attempts

    def checkpoint(self, *, now: bool = False) -> None:
        """Call between steps of long work. Stops a run whose lease was lost (JobLost) and, at most every
        `lanes.YIELD_CHECK_SECONDS` (or at once with `now`, before a step that would hold resources for a
        while), a background run while user work waits (Yielded): such a run must leave nothing behind that a
        later run would not redo or resume (staging, publish by rename, committed progress)."""
        if self.lost.is_set():
            raise JobLost(f"job {self.job.id} lease lost")
        if not lanes.yields(self.job.kind) or (not now and time.monotonic() < self._next_yield_check):
            return
        with self.app.db.read_session() as s:
            waiting = queue.user_work_waiting(s)
        self._next_yield_check = time.monotonic() + lanes.YIELD_CHECK_SECONDS
        if waiting:
            raise Yielded(f"job {self.job.id} yields to user work")

    def wait_while_held(self, check: Callable[[], None] | None = None, poll_s: float = 0.05) -> None:
        """Manual pacing may hold a running job (at PROCESSING, CONTRACT §10) until it is released: wait here,
        still noticing a lost lease and, through `check`, a cancel."""
        while True:
            with self.app.db.read_session() as s:
                if not queue.is_held(s, self.job.id):
                    return
            self.checkpoint()
            if check is not None:
                check()
            self.lost.wait(poll_s)


class Handler(Protocol):
    kind: str

    def run(self, jc: JobContext) -> None:
        """Do the work idempotently: a job re-claimed after a crash, or given back when it yielded, runs again
        from the start. Let what `jc.checkpoint()` raises (JobLost, Yielded) propagate."""

    def give_up(self, app: AppContext, job: Claimed, code: str, message: str) -> None:
        """The job failed for good: record it on its subject (batch failed, export job FAILED)."""
