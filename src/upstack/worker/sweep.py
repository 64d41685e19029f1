"""The sweep: removes what crashed processes left in the lake's staging and tmp directories, never what a
live job run or a running upload still uses (CONTRACT §4)."""

from __future__ import annotations

import logging
import threading

from upstack.context import AppContext
from upstack.jobs import queue
from upstack.lake import parse_owner_tag
from upstack.storage import dialect

log = logging.getLogger("upstack.worker.sweep")

# Files of older versions carry no owner: they are left this long (far above any job's lease) before removal.
UNOWNED_GRACE_SECONDS = 24 * 3600


def sweep_once(ctx: AppContext) -> list[str]:
    """One pass: a job run's staging and scratch directories go once that run no longer holds its lease."""
    def alive(tag: str) -> bool:
        run = parse_owner_tag(tag)
        with ctx.db.session() as s:
            return run in queue.live_runs(s, [run])

    removed = ctx.lake.sweep(alive, unowned_older_than_s=UNOWNED_GRACE_SECONDS)
    if removed:
        log.info("sweep removed leftovers of stopped jobs and uploads",
                 extra={"removed": len(removed), "paths": removed[:20]})
    return removed


class Sweeper:
    """Sweeps at start, then every `interval_s`, on a daemon thread of `upstack serve` and `upstack worker`."""

    def __init__(self, ctx: AppContext, interval_s: float):
        self.ctx = ctx
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstack-sweep", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                sweep_once(self.ctx)
            except Exception as exc:  # a database hiccup: try again next time
                log.warning("sweep failed; retrying", extra={"retry_in_s": self.interval_s},
                            exc_info=None if dialect.is_unavailable(exc) else exc)
            if self._stop.wait(self.interval_s):
                return
