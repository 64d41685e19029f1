"""Profile snapshots: which one is current for a lookup (policy version + lake version), and asking for a build.

A snapshot is named by what it holds: the merge policy's version and the lake version, a hash of the
`success` batches of the profile-enabled datasets. Any change to those (a new batch, a deleted dataset, a
dataset enabled or disabled for profile, a new policy version) names another snapshot, so a stale one is
never read; the `snapshot` job builds the current one and removes the older ones of the same policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from upstack.jobs import queue
from upstack.lake import Lake, snapshots
from upstack.lake.snapshots import is_complete
from upstack.services import merge_policies
from upstack.storage import catalog_repo
from upstack.tenant import Tenant

KIND = "snapshot"


@dataclass(frozen=True)
class SnapshotKey:
    policy_id: str
    version: int
    lake_version: str

    @property
    def name(self) -> str:
        return f"v{self.version}-{self.lake_version}"

    def path(self, lake: Lake, t: Tenant) -> Path:
        return lake.snapshot_dir(t.org, t.sandbox, self.policy_id, self.name)


def lake_version(s: Session, t: Tenant) -> str:
    """A stable hash of what the merge reads: (dataset id, batch id) of every good batch of profile datasets."""
    h = hashlib.sha256(f"format {snapshots.FORMAT}\x1e".encode())  # a snapshot of an older format is stale
    for dataset_id, batch_id in catalog_repo.profile_batch_keys(s, t):
        h.update(f"{dataset_id}\x1f{batch_id}\x1e".encode())
    return h.hexdigest()[:24]


def current(s: Session, lake: Lake, t: Tenant, policy_id: str, version: int) -> tuple[SnapshotKey, Path | None]:
    """The key a snapshot of the policy version must have now, and its path when it is built."""
    key = SnapshotKey(policy_id, version, lake_version(s, t))
    path = key.path(lake, t)
    return key, path if is_complete(path) else None


def request_build(s: Session, t: Tenant, policy_id: str) -> bool:
    """Queue a build of the policy's current snapshot unless one is queued and not started (debounce).
    Snapshots are internal work: they run at once whatever the job pacing control says."""
    return queue.enqueue_once(s, KIND, policy_id, t.org, t.sandbox, delay_ms=0) is not None


def request_default_build(s: Session, t: Tenant) -> bool:
    """After new profile data: rebuild the snapshot of the sandbox's default policy (what most lookups use)."""
    merge_policies.ensure_tenant(s, t)  # a sandbox's first data may come before its first policy request
    policy_id = merge_policies.default_policy_id(s, t)
    return request_build(s, t, policy_id) if policy_id is not None else False
