"""The `store` job (background lane): bring a tenant's profile store in line with the catalog.

Queued when a batch turns `success` (and when one is deleted, or a lookup finds a lake from before the store).
It removes batches that were deleted (or their dataset) from the index and splits the components they were in,
then indexes `success` batches the store does not have, PART_RECORDS records per transaction, committing its
progress with each part; it gives way to user work (jobs/lanes.py) before every part, and the next run resumes. Idempotent: a re-run finds nothing left to do.
"""

from __future__ import annotations

import logging
import time

from upstack.context import AppContext
from upstack.jobs.queue import Claimed
from upstack.services import profile_store
from upstack.tenant import Tenant
from upstack.worker.base import JobContext

log = logging.getLogger("upstack.worker.store")


class StoreHandler:
    kind = profile_store.KIND

    def run(self, jc: JobContext) -> None:
        app, t = jc.app, Tenant(jc.job.org, jc.job.sandbox)
        started = time.perf_counter()
        with app.db.session() as s:
            removed = profile_store.forget_gone(s, app.lake, t)
        with app.db.session() as s:
            todo = profile_store.unindexed(s, t)
        indexed = 0
        for batch_id, dataset_id, kind, _ in todo:
            jc.checkpoint(now=True)  # before reading a batch: ingests coming one after another go first
            with app.db.session() as s:
                if not profile_store.is_unindexed(s, t, batch_id):  # deleted, or indexed by another run meanwhile
                    continue
            ix = profile_store.BatchIndex(t, profile_store.read_batch(app.lake, t, dataset_id, batch_id, kind))
            with app.db.session() as s:
                ix.begin(s)
            for lo, hi in ix.parts():
                jc.checkpoint(now=True)  # a yield to user work keeps the parts done (the next run resumes)
                with app.db.session() as s:
                    ix.add_part(s, lo, hi)
            with app.db.session() as s:
                ix.finish(s)
            indexed += 1
        log.info("profile store synced", extra={"batches_indexed": indexed, "batches_removed": removed,
                                                "duration_ms": round((time.perf_counter() - started) * 1000, 3)})

    def give_up(self, app: AppContext, job: Claimed, code: str, message: str) -> None:
        # Nothing to record: lookups merge the whole lake until a later sync succeeds.
        log.warning("profile store sync failed for good", extra={"code": code, "detail": message})
