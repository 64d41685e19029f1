"""A client project's own AEP code (what upstack users write): export the profiles of an audience.

It knows nothing of upstack: it talks to whatever `base_url` it is given, https://platform.adobe.io in
production, an upstack server in tests.
"""

from __future__ import annotations

import time

import httpx

EXPORT_JOBS = "/data/core/ups/export/jobs"


class ExportFailed(Exception):
    pass


class MyAepClient:
    def __init__(self, base_url: str, token: str, api_key: str, org: str, sandbox: str = "prod"):
        self.http = httpx.Client(base_url=base_url, timeout=30, headers={
            "Authorization": f"Bearer {token}", "x-api-key": api_key, "x-gw-ims-org-id": org,
            "x-sandbox-name": sandbox})

    def start_export(self, dataset_id: str, merge_policy: str = "timestampOrdered-none-mp",
                     fields: str | None = None) -> dict:
        body = {"mergePolicy": {"id": merge_policy, "version": 1},
                "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
                "schema": {"name": "_xdm.context.profile"}}
        if fields:
            body["fields"] = fields
        r = self.http.post(EXPORT_JOBS, json=body)
        r.raise_for_status()
        return r.json()

    def start_export_with_retries(self, dataset_id: str, attempts: int = 5, **kw) -> dict:
        """AEP answers 429/5xx now and then: retry those with a short backoff."""
        for attempt in range(attempts):
            try:
                return self.start_export(dataset_id, **kw)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code < 429 or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def poll(self, job: dict) -> dict:
        r = self.http.get(f"{EXPORT_JOBS}/{job['id']}")
        r.raise_for_status()
        return r.json()

    def wait(self, job: dict, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while (state := self.poll(job))["status"] not in ("SUCCEEDED", "FAILED"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"export job {job['id']} still {state['status']}")
            time.sleep(0.1)
        if state["status"] == "FAILED":
            raise ExportFailed(state["errors"][0]["msg"])
        return state

    def cancel(self, job: dict) -> None:
        self.http.delete(f"{EXPORT_JOBS}/{job['id']}").raise_for_status()

    def exported_files(self, state: dict) -> list[dict]:
        batch = state["destination"]["batchId"]
        r = self.http.get(f"/data/foundation/export/batches/{batch}/files")
        r.raise_for_status()
        return r.json()["data"]
