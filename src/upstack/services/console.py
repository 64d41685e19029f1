"""Read models of the local console (`/_upstack/console`): one tenant's datasets, batches, export jobs and merge
policies, bounded so a big tenant cannot make a page huge. Only reads through the other services and the
repositories; the console's forms change things through `services.controls` like the JSON controls do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from upstack.lake import Lake
from upstack.services import catalog, data_access, export_jobs, merge_policies
from upstack.services.errors import Invalid, NotFound
from upstack.storage import admin_repo, catalog_repo, ups_repo
from upstack.storage.models import Batch, Dataset, DatasetFile, FailedRow
from upstack.tenant import Tenant

# The tenant shown when the query names none: the gateway's default sandbox, and the org `upstack seed` loads.
DEFAULT_ORG = "MYORG@AdobeOrg"
DEFAULT_SANDBOX = "prod"
MAX_NAME = 255  # the gateway's bound on x-gw-ims-org-id and x-sandbox-name
MAX_ROWS = 100  # newest datasets, export jobs, row errors, journal entries shown
MAX_BATCHES = 200  # newest batches of the tenant, shown under their datasets
MAX_TENANTS = 50
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def tenant(org: str | None, sandbox: str | None) -> Tenant:
    """The console's tenant from its query, checked like the gateway checks the AEP headers (400 otherwise)."""
    org = (org or "").strip() or DEFAULT_ORG
    sandbox = (sandbox or "").strip() or DEFAULT_SANDBOX
    for name, value in (("org", org), ("sandbox", sandbox)):
        if len(value) > MAX_NAME or _CONTROL_CHARS.search(value):
            raise Invalid(f"Query parameter '{name}' must be at most {MAX_NAME} characters without control "
                          "characters.")
    return Tenant(org=org, sandbox=sandbox)


@dataclass
class DatasetRow:
    dataset: Dataset
    batches: list[Batch] = field(default_factory=list)


@dataclass
class JobRow:
    view: dict[str, Any]
    files: list[DatasetFile]  # the dataSetFiles of its output batch(es), once SUCCEEDED


@dataclass
class Overview:
    datasets: list[DatasetRow]
    more_datasets: bool
    more_batches: bool
    jobs: list[JobRow]
    more_jobs: bool
    policies: list[dict[str, Any]]
    tenants: list[tuple[str, str]]


def overview(s: Session, t: Tenant) -> Overview:
    datasets = list(catalog_repo.recent_datasets(s, t, MAX_ROWS + 1))
    rows = {d.id: DatasetRow(d) for d in datasets[:MAX_ROWS]}
    batches = list(catalog_repo.recent_batches(s, t, MAX_BATCHES + 1))
    for b in batches[:MAX_BATCHES]:
        if b.dataset_id in rows:
            rows[b.dataset_id].batches.append(b)
    found = export_jobs.list_jobs(s, t, sort_field="createdTime", descending=True, after=None, skip=0,
                                  limit=MAX_ROWS + 1, statuses=())
    jobs = [JobRow(view, job_files(s, t, view)) for _, _, view in found[:MAX_ROWS]]
    policies = policy_choices(s, t)
    return Overview(list(rows.values()), len(datasets) > MAX_ROWS, len(batches) > MAX_BATCHES, jobs,
                    len(found) > MAX_ROWS, policies, admin_repo.tenants(s, MAX_TENANTS))


def job_batch_ids(view: dict[str, Any]) -> list[str]:
    dest = view["destination"]
    ids = [b.get("batchId") for b in dest.get("batches", [])] if dest.get("segmentPerBatch") else [dest.get("batchId")]
    return [i for i in ids if i]


def job_files(s: Session, t: Tenant, view: dict[str, Any]) -> list[DatasetFile]:
    if view["status"] != "SUCCEEDED":
        return []
    files: list[DatasetFile] = []
    for batch_id in job_batch_ids(view):
        try:
            files.extend(data_access.batch_files(s, t, batch_id))
        except NotFound:  # deleted meanwhile
            continue
    return files


def policy_choices(s: Session, t: Tenant) -> list[dict[str, Any]]:
    """The tenant's merge policies as stored: unlike the API's list, looking does not seed a tenant never seen
    (its default policy appears with its first use), so browsing the console writes nothing."""
    return [merge_policies.policy_view(p) for p in ups_repo.list_policies(s, t)[:MAX_ROWS]]


@dataclass
class BatchDetail:
    batch: Batch
    dataset: Dataset | None
    failed_rows: list[FailedRow]
    failed_total: int
    files: list[DatasetFile]


def batch_detail(s: Session, t: Tenant, batch_id: str) -> BatchDetail:
    b = catalog.get_batch(s, t, batch_id)  # 404 for another tenant's batch
    return BatchDetail(b, catalog_repo.get_dataset(s, t, b.dataset_id), list(catalog_repo.failed_rows(s, b.id, 0, MAX_ROWS)),
                       catalog_repo.count_failed_rows(s, b.id), data_access.batch_files(s, t, b.id))


def file_detail(s: Session, t: Tenant, lake: Lake, file_id: str):
    """A dataSetFile and its parts (names and sizes), as Data Access lists them."""
    f, parts = data_access.file_parts(s, t, lake, file_id)
    return f, parts[:MAX_ROWS]
