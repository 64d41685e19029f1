"""Catalog and Batch Ingestion objects shaped as AEP answers them (map form values, batch bodies)."""

from __future__ import annotations

from typing import Any

from upstack.services.tenancy import sandbox_id
from upstack.storage.models import Batch, Dataset


def dataset_view(ds: Dataset) -> dict[str, Any]:
    body = ds.body or {}
    view: dict[str, Any] = {
        "name": ds.name,
        "imsOrg": ds.org,
        "sandboxId": sandbox_id(ds.org, ds.sandbox),
        "sandbox": ds.sandbox,
        "version": ds.version,
        "created": ds.created_ms,
        "updated": ds.updated_ms,
        "createdClient": "upstack",
        "createdUser": "upstack",
        "updatedUser": "upstack",
        "tags": body.get("tags") or {},
        "classification": body.get("classification") or {},
        "fileDescription": body.get("fileDescription") or {"persisted": True, "format": "parquet"},
        "viewId": ds.id,
        "files": f"@/dataSetFiles?dataSetId={ds.id}",
    }
    if ds.last_batch_id:  # Catalog leaves both out until the dataset has a batch ("" is no valid status)
        view["lastBatchId"] = ds.last_batch_id
        view["lastBatchStatus"] = ds.last_batch_status
    for key in ("description", "schemaRef", "namespace"):
        if key in body:
            view[key] = body[key]
    return view


def batch_view(b: Batch) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": b.id,
        "imsOrg": b.org,
        "sandboxId": sandbox_id(b.org, b.sandbox),
        "sandbox": b.sandbox,
        "status": b.status,
        "created": b.created_ms,
        "updated": b.updated_ms,
        "createdClient": "upstack",
        "createdUser": "upstack",
        "updatedUser": "upstack",
        "version": "1.0.0",
        "tags": {},
        "relatedObjects": [{"type": "dataSet", "id": b.dataset_id}],
        "inputFormat": b.input_format or {"format": "parquet"},
        "metrics": {
            "recordsRead": b.records_read,
            "recordsWritten": b.records_written,
            "recordsFailed": b.records_failed,
        },
        "errors": b.errors or [],
    }
    if b.started_ms is not None:
        view["started"] = b.started_ms
        view["metrics"]["startTime"] = b.started_ms
    if b.completed_ms is not None:
        view["completed"] = b.completed_ms
        view["metrics"]["endTime"] = b.completed_ms
    attributes = b.attributes or {}
    for key in ("externalId", "replay", "availableDates", "size"):
        if key in attributes:
            view[key] = attributes[key]
    view["tags"] = dict(attributes.get("tags") or {})
    if b.export_job_id is not None:
        view["tags"]["exportJobId"] = [str(b.export_job_id)]
    return view
