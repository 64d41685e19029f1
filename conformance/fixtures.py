"""Real objects for the conformance run, so that every operation is reached with ids that exist.

Without them schemathesis only ever sends made-up ids, and 20 of the 40 operations see nothing but 404s.
`make_fixtures` creates, through the API itself, in the run's tenant:
- a profile dataset "people" with an ingested batch (two good records and one bad one, so the batch has a
  file, a Data Access file id and failed rows), two batches still loading (one for the file operations of
  Batch Ingestion, one for its COMPLETE/ABORT/FAIL action), and a Catalog batch to update;
- a finished export job, with its batch;
- merge policies: one for lookups, one for the merge policy operations;
- a second object of each kind that a DELETE operation takes away.

`with_examples` writes them into a copy of the spec as parameter and request body examples. schemathesis
sends each operation's examples in its `examples` phase, then generates requests as before.

schemathesis does not keep an operation to its own examples: it also sends a DELETE the example ids of the
other operations on its path (a DELETE /dataSets/{id} got the GET's id too). So what a DELETE may take away
is never what another path needs: the datasets of the Catalog dataset operations are not the one the
batches, files and profiles live in, the Catalog batch operations have batches of their own, and lookups use
a merge policy the merge policy operations never see.
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
FILE = "records.json"
KEPT_EMAIL = "kept@conformance.example"
GONE_EMAIL = "gone@conformance.example"  # the profile DELETE /access/entities takes away
NEW_BATCH = "conformance-new-batch"  # POST /catalog/batches/{id} creates a batch of this id


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


def _dataset(api: httpx.Client, name: str, schema: str = PROFILE_SCHEMA) -> str:
    body: dict[str, Any] = {"name": name, "schemaRef": {"id": schema,
                                                      "contentType": "application/vnd.adobe.xed+json;version=1"}}
    if schema == PROFILE_SCHEMA:
        body["tags"] = {"unifiedProfile": ["enabled:true"]}
    return _created(api.post(f"{CATALOG}/dataSets", json=body))


def _lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _person(email: str) -> dict:
    return {"identityMap": {"Email": [{"id": email, "primary": True}]}, "person": {"name": {"firstName": "Conf"}}}


def _loading_batch(api: httpx.Client, dataset: str, content: bytes | None) -> str:
    r = api.post(f"{IMPORT}/batches", json={"datasetId": dataset, "inputFormat": {"format": "json"}})
    r.raise_for_status()
    batch = r.json()["id"]
    if content is not None:
        api.put(f"{IMPORT}/batches/{batch}/datasets/{dataset}/files/{FILE}", content=content,
                headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    return batch


def _people(api: httpx.Client) -> dict[str, str]:
    """The dataset every batch, file and profile operation reads; no operation of the run deletes it."""
    ds = _dataset(api, "conformance people")
    good = _lines(_person(KEPT_EMAIL), _person(GONE_EMAIL), {"person": {"name": {"firstName": "no identity"}}})
    batch = _loading_batch(api, ds, good)
    api.post(f"{IMPORT}/batches/{batch}", params={"action": "COMPLETE"}).raise_for_status()
    _wait(lambda: api.get(f"{CATALOG}/batches/{batch}").json()[batch],
          lambda b: b["status"] not in ("loading", "processing"), f"batch {batch}")
    file_id = api.get(f"{EXPORT}/batches/{batch}/files").json()["data"][0]["dataSetFileId"]
    part = api.get(f"{EXPORT}/files/{file_id}").json()["data"][0]["name"]
    catalog_batches = []
    for _ in range(2):
        r = api.post(f"{CATALOG}/batches", json={"datasetId": ds})
        r.raise_for_status()
        catalog_batches.append(_created(r))
    return {"dataset": ds, "batch": batch, "file": file_id, "part": part,
            "loading": _loading_batch(api, ds, _lines(_person(KEPT_EMAIL))),
            "to_finish": _loading_batch(api, ds, _lines(_person(KEPT_EMAIL))),
            "catalog_batch": catalog_batches[0], "doomed_catalog_batch": catalog_batches[1]}


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
        people = _people(api)
        target = _dataset(api, "conformance export", UNION)
        job = _export_job(api, target)
        return {
            "people": people, "target": target,
            "dataset": _dataset(api, "conformance dataset"), "doomed_dataset": _dataset(api, "conformance doomed"),
            "job": job["id"], "job_batch": job["destination"]["batchId"],
            "doomed_job": _export_job(api, target)["id"],
            "lookup_policy": _policy(api, "conformance lookups"),
            "policy": _policy(api, "conformance policy"), "doomed_policy": _policy(api, "conformance doomed policy"),
        }


def _examples(method: str, path: str, f: dict[str, Any]) -> dict[str, Any]:
    """The example of each parameter of one operation: DELETEs get the doomed objects."""
    doomed = method == "delete"
    people = f["people"]
    if path.startswith(f"{CATALOG}/batches/"):
        batch = NEW_BATCH if method == "post" else people["doomed_catalog_batch" if doomed else "catalog_batch"]
    elif path.startswith(f"{EXPORT}/batches/"):
        batch = f["job_batch"] if path.endswith("/files") else people["batch"]
    elif path.startswith(f"{IMPORT}/batches/"):
        batch = people["loading"] if "/datasets/" in path else people["to_finish"]
    else:
        batch = people["batch"]
    if path.startswith(f"{CATALOG}/dataSets/"):
        dataset = f["doomed_dataset" if doomed else "dataset"]
    else:
        dataset = people["dataset"]
    lookups = path.startswith(f"{UPS}/access/")
    return {
        "DATASET_ID": dataset, "datasetId": dataset, "id": dataset,
        "BATCH_ID": batch, "batchId": batch, "dataSetFileId": people["file"], "filePath": FILE,
        # /failed and /meta without `path`: Adobe's spec describes only their listings (its 200 schema), not
        # the file a `path` downloads (tests/test_data_access.py checks those); `None` drops the spec's example.
        "path": None if path.endswith(("/failed", "/meta")) else people["part"],
        "EXPORT_JOB_ID": str(f["doomed_job"] if doomed else f["job"]),  # the spec types it as a string
        "limit": 10, "orderby": "-updateEpoch", "status": "SUCCEEDED" if path == f"{UPS}/export/jobs" else None,
        "mergePolicyId": f["lookup_policy"] if lookups else f["doomed_policy"] if doomed else f["policy"],
        "entityId": GONE_EMAIL if doomed else KEPT_EMAIL, "entityIdNS": "Email",
        "schema.name": "_xdm.context.profile",
    }


def _bodies(method: str, path: str, f: dict[str, Any]) -> Any:
    """Request body examples that name the fixtures (the spec's own name objects that do not exist)."""
    if method == "post" and path == f"{UPS}/config/mergePolicies/bulk-get":
        return {"ids": [{"id": f["policy"]}, {"id": f["lookup_policy"]}]}
    people = f["people"]["dataset"]
    if method == "post" and path in (f"{CATALOG}/batches", f"{CATALOG}/batches/{{BATCH_ID}}"):
        return {"datasetId": people}
    if method == "put" and path == f"{CATALOG}/batches/{{BATCH_ID}}":
        return {"datasetId": people, "status": "success"}
    if method == "post" and path == f"{IMPORT}/batches":
        return {"datasetId": people, "inputFormat": {"format": "json"}}
    if method == "post" and path == f"{UPS}/export/jobs":
        return {"fields": "identityMap,person.name", "mergePolicy": {"id": f["lookup_policy"], "version": 1},
                "destination": {"datasetId": f["target"], "segmentPerBatch": False},
                "schema": {"name": "_xdm.context.profile"}}
    if method == "post" and path == f"{UPS}/access/entities":
        return {"schema": {"name": "_xdm.context.profile"}, "mergePolicyId": f["lookup_policy"],
                "identities": [{"entityId": KEPT_EMAIL, "entityIdNS": {"code": "Email"}}]}
    return None


def with_examples(spec: dict[str, Any], fixtures: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec whose parameters and some request bodies carry the fixtures' ids as examples
    (parameters shared through components are copied into each operation, so that a DELETE can have an
    example of its own)."""
    spec = copy.deepcopy(spec)
    shared = spec.get("components", {}).get("parameters", {})

    def inline(p: dict) -> dict:
        return copy.deepcopy(shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p)

    for path, item in spec["paths"].items():
        common = item.pop("parameters", [])
        for method, op in item.items():
            params = {(p["in"], p["name"]): p for p in map(inline, common)}
            params.update({(p["in"], p["name"]): p for p in map(inline, op.get("parameters", []))})
            examples = _examples(method, path, fixtures)
            for (where, name), p in params.items():
                if where in ("path", "query") and name in examples:
                    p.pop("examples", None)
                    p.pop("example", None)
                    p.get("schema", {}).pop("example", None)
                    if examples[name] is not None:
                        p["example"] = examples[name]
            op["parameters"] = list(params.values())
            body = _bodies(method, path, fixtures)
            if body is not None:
                for media in op["requestBody"]["content"].values():
                    media.pop("examples", None)
                    media["example"] = body
    return spec
