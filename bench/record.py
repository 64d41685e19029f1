"""`python -m bench record`: one wide profile record through a live stack, each stage's time and peak RSS apart.

One invocation: `upstack serve --workers 0` (fresh SQLite data dir) and an `upstack worker` process beside it, warmed
up by a tiny ingest and an empty export, and stopped (SIGSTOP) before the server's stages: the server's memory
(lookups, preview) and the jobs' (ingest, background jobs, export) are measured apart and no job runs during a
lookup. Stages, in order:

- ingest: one JSON-lines record of `--fields` leaf fields (flat, or in 20 nested field groups) to `success`
  (the profile store indexes it in the same job);
- background jobs: what the ingest queued, until the queue is empty (nothing since the profile store; a
  checkout from before it built the default policy's profile snapshot here);
- ingest (event), background jobs (with event): an event of the profile with the same fields, into an event
  dataset, and what it queues;
- export, export (eventList): an export job of every profile to SUCCEEDED, without and with eventList (worker);
- lookup (default policy): `GET /access/entities` under the default policy (server);
- dataset preview: `GET /export/datasets/{id}/preview` (server);
- lookup (new pdg policy): the same lookup under a new pdg policy (server).

Peak RSS is the measured process's VmHWM, reset before each stage (a 50 ms sampler doubles as a watchdog). A
process over `--kill-above-mb` is killed, a stage over `--timeout` abandoned, and both reported as such.
`--code DIR` runs another checkout's upstack (e.g. main, for the figures before a change).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    PROFILE_SCHEMA,
    RssSampler,
    Server,
    WorkerProcess,
    check,
    run_dir,
    say,
    write_json,
)

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
ENTITIES = "/data/core/ups/access/entities"
EMAIL = "wide@example.com"
EVENT_SCHEMA = "https://ns.adobe.com/xdm/context/experienceevent"
GROUPS = 20


def wide_record(fields: int, shape: str) -> dict:
    """Exactly `fields` leaf fields: identityMap's Email[].id and Email[].primary, then string fields."""
    n = max(fields - 2, 0)
    ids = {"Email": [{"id": EMAIL, "primary": True}]}
    if shape == "flat":
        return {"identityMap": ids, **{f"f{i}": f"value {i}" for i in range(n)}}
    return {"identityMap": ids, "_tenant": {f"group{g}": {f"field{i}": f"value {i}" for i in range(g, n, GROUPS)}
                                            for g in range(min(GROUPS, n))}}


def _busy_jobs(data_dir: Path) -> int:
    db = sqlite3.connect(f"file:{data_dir / 'upstack.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
    finally:
        db.close()


def _until(done, timeout: float, watch: RssSampler, alive=lambda: True) -> Any:
    """Poll `done()` until it returns something truthy; None when the watch killed the process, `alive()` says it
    died, or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if value:
            return value
        if watch.killed_at_mb is not None or not alive() or time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _stage(seconds: float | None, peak: float, status: str = "", **extra) -> dict:
    return {"seconds": None if seconds is None else round(seconds, 3), "peak_rss_mb": round(peak, 1), "status": status,
            **extra}


def _failed(watch: RssSampler, timeout: float) -> str:
    if watch.killed_at_mb is not None:
        return f"killed above {watch.kill_above_mb:,.0f} MB after {watch.killed_after:.0f} s"
    return f"timeout {timeout:.0f} s"


def _job_stage(worker: WorkerProcess, args, start_job, finished) -> dict:
    """Start a job (start_job()), wait for finished() to return its end state, and measure the worker meanwhile."""
    if worker.proc.poll() is not None:
        return _stage(None, 0.0, "not run: the worker was killed")
    with RssSampler(worker.pid, kill_above_mb=args.kill_above_mb) as watch:
        start = time.monotonic()
        start_job()
        state = _until(finished, args.timeout, watch, alive=lambda: worker.proc.poll() is None)
        seconds = time.monotonic() - start
    if state is None:
        if watch.killed_at_mb is None and worker.proc.poll() is not None:
            return _stage(None, watch.peak_mb, "the worker died")
        return _stage(None, watch.peak_mb, _failed(watch, args.timeout))
    return _stage(seconds, watch.peak_mb, **state)


def _ingest(c, worker: WorkerProcess, dataset: str, body: bytes, args) -> dict:
    batch = check(c.post(f"{IMPORT}/batches", json={"datasetId": dataset, "inputFormat": {"format": "json"}}),
                  201)["id"]
    check(c.put(f"{IMPORT}/batches/{batch}/datasets/{dataset}/files/record.json", content=body,
                headers={"Content-Type": "application/octet-stream"}))

    def finished() -> dict | None:
        b = check(c.get(f"{CATALOG}/batches/{batch}"))[batch]
        if b["status"] not in ("success", "failed"):
            return None
        return {"status": b["status"], "recordsFailed": b["metrics"]["recordsFailed"],
                "errors": [e["code"] for e in b.get("errors", [])]}

    return _job_stage(worker, args, lambda: check(c.post(f"{IMPORT}/batches/{batch}", params={"action": "COMPLETE"})),
                      finished)


def _settle(server: Server, worker: WorkerProcess, args) -> dict:
    """The jobs the last stage queued, to an empty queue."""
    return _job_stage(worker, args, lambda: None,
                      lambda: {"status": "done"} if _busy_jobs(server.data_dir) == 0 else None)


def _export(c, worker: WorkerProcess, args, event_list: bool) -> dict:
    target = check(c.post(f"{CATALOG}/dataSets", json={"name": "export", "schemaRef": {
        "id": "https://ns.adobe.com/xdm/context/profile__union",
        "contentType": "application/vnd.adobe.xed+json;version=1"}}), 201)[0].split("/")[-1]
    body: dict[str, Any] = {"destination": {"datasetId": target}, "schema": {"name": "_xdm.context.profile"}}
    if event_list:
        body["additionalFields"] = {"eventList": {}}  # every event field
    job: dict[str, Any] = {}

    def finished() -> dict | None:
        j = check(c.get(f"/data/core/ups/export/jobs/{job['id']}"))
        return {"status": j["status"]} if j["status"] in ("SUCCEEDED", "FAILED") else None

    return _job_stage(worker, args, lambda: job.update(check(c.post("/data/core/ups/export/jobs", json=body))),
                      finished)


def _policy(c) -> str:
    """A new pdg policy (on checkouts before the profile store it had no snapshot: its lookups merged directly)."""
    return check(c.post("/data/core/ups/config/mergePolicies", json={
        "name": "direct", "schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "timestampOrdered"}}))["id"]


def _server_call(server: Server, args, call) -> dict:
    """One request to the server, its time and the server's peak RSS (VmHWM reset before)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = call()
        except Exception as exc:  # noqa: BLE001 - a killed server or a timeout is a figure, not a crash
            result["error"] = f"{type(exc).__name__}: {exc}"

    with RssSampler(server.pid, kill_above_mb=args.kill_above_mb) as watch:
        start = time.monotonic()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(args.timeout)
        seconds = time.monotonic() - start
    if "response" not in result:
        status = _failed(watch, args.timeout) if watch.killed_at_mb is not None or thread.is_alive() else result.get("error", "?")
        return _stage(None, watch.peak_mb, status)
    r = result["response"]
    return _stage(seconds, watch.peak_mb, str(r.status_code), bytes=len(r.content))


def main(args) -> int:
    out = run_dir(f"record-{args.fields}")
    code = Path(args.code).resolve() if args.code else None
    env = {"UPSTACK_MAX_RECORD_FIELDS": str(args.max_record_fields)} if args.max_record_fields else {}
    say(f"bench record: one profile record of {args.fields:,} leaf fields ({args.shape}), code "
        f"{code or 'this checkout'}; output {out}")
    record = wide_record(args.fields, args.shape)
    body = orjson.dumps(record) + b"\n"
    # One event of the profile (its Email, not primary) as wide, for the export with eventList: the record's fields
    # but two, which _id and timestamp replace.
    event = dict(wide_record(args.fields - 2, args.shape), _id="event-1", timestamp="2024-05-01T10:00:00Z",
                 identityMap={"Email": [{"id": EMAIL, "primary": False}]})
    stages: dict[str, dict] = {}
    with (Server(out / "data", workers=0, env=env, code=code) as server, server.client(timeout=args.timeout) as c,
          WorkerProcess(server) as worker):
        def dataset(name: str, schema: str, profile: bool = True) -> str:
            body: dict[str, Any] = {"name": name, "schemaRef": {
                "id": schema, "contentType": "application/vnd.adobe.xed+json;version=1"}}
            if profile:
                body["tags"] = {"unifiedProfile": ["enabled:true"]}
            return check(c.post(f"{CATALOG}/dataSets", json=body), 201)[0].split("/")[-1]

        # Warm the worker up (imports, first connections) with a tiny ingest and an export of an empty lake.
        _ingest(c, worker, dataset("warm-up", PROFILE_SCHEMA, profile=False), b'{"identityMap": {"E": [{"id": "w"}]}}\n',
                args)
        _export(c, worker, args, event_list=False)
        people = dataset("wide", PROFILE_SCHEMA)
        stages["ingest"] = _ingest(c, worker, people, body, args)
        stages["background jobs"] = _settle(server, worker, args)
        if args.event:
            stages["ingest (event)"] = _ingest(c, worker, dataset("wide events", EVENT_SCHEMA),
                                               orjson.dumps(event) + b"\n", args)
            stages["background jobs (with event)"] = _settle(server, worker, args)
        if stages["ingest"]["status"] == "success":
            stages["export"] = _export(c, worker, args, event_list=False)
            if args.event:
                stages["export (eventList)"] = _export(c, worker, args, event_list=True)
            worker.pause()  # no job beside a lookup
            params = {"schema.name": "_xdm.context.profile", "entityIdNS": "Email", "entityId": EMAIL}
            calls = [("lookup (default policy)", lambda: c.get(ENTITIES, params=params)),
                     ("dataset preview", lambda: c.get(f"/data/foundation/export/datasets/{people}/preview")),
                     # Last: on a stack without bounds this is the request that took the server past 20 GB.
                     ("lookup (new pdg policy)", lambda: c.get(ENTITIES, params=dict(params, mergePolicyId=_policy(c))))]
            for name, call in calls:
                if server.proc.poll() is not None:
                    stages[name] = _stage(None, 0.0, "not run: the server was killed")
                    continue
                stages[name] = _server_call(server, args, call)
    report = {"fields": args.fields, "shape": args.shape, "checkout": str(code or "."), "record_bytes": len(body),
              "max_record_fields": args.max_record_fields, "stages": stages}
    write_json(out / "result.json", report)
    say(f"\n{'stage':28} {'seconds':>9} {'peak RSS MB':>12}  status")
    for name, s in stages.items():
        secs = f"{s['seconds']:.2f}" if s["seconds"] is not None else "-"
        extra = f" {s['errors']}" if s.get("errors") else ""
        say(f"{name:28} {secs:>9} {s['peak_rss_mb']:>12,.0f}  {s['status']}{extra}")
    say(f"\nresult: {out / 'result.json'}")
    return 0 if all(s["seconds"] is not None for s in stages.values()) else 1


def add_arguments(p) -> None:
    p.add_argument("--fields", type=int, default=2000, help="leaf fields of the record (default 2000)")
    p.add_argument("--shape", choices=("flat", "groups"), default="flat",
                   help="flat top-level fields, or 20 nested field groups (_tenant.groupN.fieldM)")
    p.add_argument("--code", metavar="DIR", help="run another checkout's upstack (its src/ first on PYTHONPATH)")
    p.add_argument("--max-record-fields", type=int, help="UPSTACK_MAX_RECORD_FIELDS of the stack (default: its own)")
    p.add_argument("--no-event", dest="event", action="store_false",
                   help="without the event of the same width (and so without the export with eventList)")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per stage (default 900)")
    p.add_argument("--kill-above-mb", type=float, default=8000,
                   help="watchdog: kill the measured process above this RSS (default 8000)")

