"""What the merge engine reads for one tenant: profile-enabled datasets and the files of their good batches."""

from __future__ import annotations

from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.profiles import DatasetInput
from upstack.storage import catalog_repo
from upstack.tenant import Tenant


def dataset_inputs(s: Session, lake: Lake, t: Tenant) -> list[DatasetInput]:
    """Profile-enabled profile and event datasets with the Parquet files of their `success` batches only:
    files of a batch still being published, failed or aborted are never merged."""
    out = []
    for ds in catalog_repo.profile_datasets(s, t):
        files: list[str] = []
        for batch_id in catalog_repo.successful_batch_ids(s, t, ds.id):
            files.extend(str(f.path) for f in lake.published_files(t.org, t.sandbox, ds.id, batch_id)
                         if f.name.endswith(".parquet"))
        if files:
            out.append(DatasetInput(ds.id, "event" if ds.kind == "event" else "profile", tuple(files)))
    return out
