"""Real objects for the conformance run, so that every operation is reached with ids that exist.

Without them schemathesis only ever sends made-up ids, and 20 of the 40 operations see nothing but 404s.
`make_fixtures` creates, through the API itself, in the run's tenant:
- a profile dataset with a batch of records (its file, its Data Access file id),
- a finished export job, with its batch,
- a merge policy and an identity to look up,
- a second object of each kind for the DELETE operations, so that no deletion takes away what another
  operation is given.

`with_examples` writes them into a copy of the spec as parameter examples. schemathesis sends each
operation's examples in its `examples` phase, then generates requests as before.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
EXPORT = "/data/foundation/export"
UPS = "/data/core/ups"
PROFILE_SCHEMA = "https://ns.adobe.com/conformance/schemas/person"
UNION = "https://ns.adobe.com/xdm/context/profile__union"


def _created(r: httpx.Response) -> str:
    r.raise_for_status()
    return r.json()[0].rsplit("/", 1)[-1]


def _wait(get, done, what: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = get()
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"conformance fixtures: {what} not done after {timeout:.0f} s: {state}")
        time.sleep(0.2)


def _dataset_with_batch(api: httpx.Client, name: str, email: str) -> dict[str, str]:
    ds = _created(api.post(f"{CATALOG}/dataSets", json={
        "name": name, "schemaRef": {"id": PROFILE_SCHEMA, "contentType": "application/vnd.adobe.xed+json;version=1"},
        "tags": {"unifiedProfile": ["enabled:true"]}}))
    batch = api.post(f"{IMPORT}/batches", json={"datasetId": ds, "inputFormat": {"format": "json"}})
    batch.raise_for_status()
    batch_id = batch.json()["id"]
    record = {"identityMap": {"Email": [{"id": email, "primary": True}]}, "person": {"name": {"firstName": "Conf"}}}
    api.put(f"{IMPORT}/batches/{batch_id}/datasets/{ds}/files/records.json", content=json.dumps(record).encode(),
            headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    api.post(f"{IMPORT}/batches/{batch_id}", params={"action": "COMPLETE"}).raise_for_status()
    _wait(lambda: api.get(f"{CATALOG}/batches/{batch_id}").json()[batch_id],
          lambda b: b["status"] not in ("loading", "processing"), f"batch {batch_id}")
    files = api.get(f"{EXPORT}/batches/{batch_id}/files").json()["data"]
    return {"dataset": ds, "batch": batch_id, "file": files[0]["dataSetFileId"], "email": email}


def _policy(api: httpx.Client, name: str) -> str:
    r = api.post(f"{UPS}/config/mergePolicies", json={
        "name": name, "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "timestampOrdered"}})
    r.raise_for_status()
    return r.json()["id"]


def _export_job(api: httpx.Client, target: str) -> dict[str, Any]:
    r = api.post(f"{UPS}/export/jobs", json={"destination": {"datasetId": target},
                                            "schema": {"name": "_xdm.context.profile"}})
    r.raise_for_status()
    job_id = r.json()["id"]
    return _wait(lambda: api.get(f"{UPS}/export/jobs/{job_id}").json(),
                 lambda j: j["status"] in ("SUCCEEDED", "FAILED"), f"export job {job_id}")


def make_fixtures(base: str, headers: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
        kept = _dataset_with_batch(api, "conformance people", "kept@conformance.example")
        doomed = _dataset_with_batch(api, "conformance doomed", "doomed@conformance.example")
        target = _created(api.post(f"{CATALOG}/dataSets", json={"name": "conformance export",
                                                               "schemaRef": {"id": UNION}}))
        job = _export_job(api, target)
        doomed_job = _export_job(api, target)
        return {
            "kept": kept, "doomed": doomed, "job": job["id"], "job_batch": job["destination"]["batchId"],
            "doomed_job": doomed_job["id"], "policy": _policy(api, "conformance policy"),
            "doomed_policy": _policy(api, "conformance doomed policy"),
        }


def _examples(method: str, path: str, f: dict[str, Any]) -> dict[str, Any]:
    """The example of each parameter of one operation: DELETEs get the doomed objects."""
    doomed = method == "delete"
    data = f["doomed"] if doomed else f["kept"]
    batch = data["batch"]
    if path.startswith(f"{EXPORT}/batches/") and not doomed:
        batch = f["job_batch"] if path.endswith("/files") else data["batch"]
    return {
        "DATASET_ID": data["dataset"], "datasetId": data["dataset"], "id": data["dataset"],
        "BATCH_ID": batch, "batchId": batch, "dataSetFileId": data["file"], "filePath": "records.json",
        "EXPORT_JOB_ID": f["doomed_job"] if doomed else f["job"],
        "mergePolicyId": f["doomed_policy"] if doomed else f["policy"],
        "entityId": data["email"], "entityIdNS": "Email", "schema.name": "_xdm.context.profile",
    }


def with_examples(spec: dict[str, Any], fixtures: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec whose parameters carry the fixtures' ids as examples (parameters shared through
    components are copied into each operation, so that a DELETE can have an example of its own)."""
    spec = copy.deepcopy(spec)
    shared = spec.get("components", {}).get("parameters", {})

    def inline(p: dict) -> dict:
        return copy.deepcopy(shared[p["$ref"].rsplit("/", 1)[-1]]) if "$ref" in p else p

    for path, item in spec["paths"].items():
        common = [inline(p) for p in item.pop("parameters", [])]
        for method, op in item.items():
            params = {(p["in"], p["name"]): p for p in common}
            params.update({(p["in"], p["name"]): p for p in map(inline, op.get("parameters", []))})
            examples = _examples(method, path, fixtures)
            for (where, name), p in params.items():
                if where in ("path", "query") and name in examples:
                    p.pop("examples", None)
                    p["example"] = examples[name]
                    p.get("schema", {}).pop("example", None)
            op["parameters"] = list(params.values())
    return spec
