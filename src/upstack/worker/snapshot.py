"""The snapshot handler: export every profile of a merge policy's latest version, index it by identity, publish.

The job's subject is the policy's public id; a run builds the snapshot that is current when it starts
(latest policy version, current lake version), so one queued run covers every request made before it.
Idempotent: a snapshot already published under the same name is kept and the run does nothing.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing

from upstack.context import AppContext
from upstack.jobs.queue import Claimed
from upstack.lake.snapshots import SnapshotWriter
from upstack.profiles import ExportQuery, iter_merge_profiles, sort_memory_limit
from upstack.services import merge_policies, profile_inputs, profile_snapshots
from upstack.services.errors import Invalid
from upstack.services.export_jobs import policy_spec
from upstack.tenant import Tenant
from upstack.worker.base import JobContext

log = logging.getLogger("upstack.worker.snapshot")


class SnapshotHandler:
    kind = profile_snapshots.KIND

    def run(self, jc: JobContext) -> None:
        app, t, policy_id = jc.app, Tenant(jc.job.org, jc.job.sandbox), jc.job.subject_id
        started = time.perf_counter()
        with app.db.session() as s:
            try:
                _, version, body = merge_policies.resolve(s, t, policy_id, None)
            except Invalid:
                log.info("snapshot not built: the merge policy is gone", extra={"merge_policy_id": policy_id})
                return
            key, path = profile_snapshots.current(s, app.lake, t, policy_id, version)
            inputs = [] if path is not None else profile_inputs.dataset_inputs(s, app.lake, t)
        if path is not None:
            app.lake.prune_snapshots(t.org, t.sandbox, policy_id, keep=key.name)
            log.info("snapshot already built", extra={"snapshot": key.name, "merge_policy_id": policy_id})
            return
        staging = app.lake.new_staging(f"snapshot-{policy_id}", jc.owner)
        published = False
        writer = SnapshotWriter(staging, temp_dir=jc.temp_dir,
                                memory_limit=sort_memory_limit(app.settings.engine_memory_limit))
        try:
            # The export's own rows (every profile, empty ones included): a lookup answered from the snapshot
            # is the lookup the engine would answer. Parts keep memory bounded; each is written at once.
            parts = iter_merge_profiles(inputs, policy_spec(body), ExportQuery(fields=None, empty_profiles=True),
                                        should_cancel=lambda: jc.checkpoint() or False,
                                        temp_dir=jc.temp_dir,
                                        memory_limit=app.settings.engine_memory_limit,
                                        engine=app.settings.engine, spark_master=app.settings.spark_master)
            excluded = 0
            with closing(parts):
                for part in parts:
                    writer.add(part.profiles, part.meta)
                    excluded = part.excluded_components
                    del part
                    jc.checkpoint()
            manifest = writer.finish({"policyId": policy_id, "version": version, "lakeVersion": key.lake_version,
                                      "excludedComponents": excluded, "createdMs": int(time.time() * 1000)})
            jc.checkpoint()
            app.lake.publish_snapshot(staging, t.org, t.sandbox, policy_id, key.name)
            published = True
        finally:
            writer.close()
            if not published:
                app.lake.discard_staging(staging)
        removed = app.lake.prune_snapshots(t.org, t.sandbox, policy_id, keep=key.name)
        log.info("snapshot built", extra={
            "snapshot": key.name, "merge_policy_id": policy_id, "profiles": manifest["rows"],
            "identities": manifest["index"]["rows"], "datasets": len(inputs), "older_removed": removed,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3)})

    def give_up(self, app: AppContext, job: Claimed, code: str, message: str) -> None:
        # Nothing to record: lookups keep using the direct merge until a later build succeeds.
        log.warning("snapshot failed for good", extra={"merge_policy_id": job.subject_id, "code": code,
                                                       "detail": message})
