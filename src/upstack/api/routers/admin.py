"""Local controls (/_upstack, not part of AEP): health and reset, callable without AEP headers."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from upstack.api.deps import ContextDep, JsonBody, read_json
from upstack.api.responses import Json
from upstack.jobs import queue
from upstack.services import controls, journal
from upstack.services.errors import Invalid
from upstack.storage import admin_repo, controls_repo

router = APIRouter(prefix="/_upstack", tags=["upstack"])


@router.get("/health")
def health(ctx: ContextDep):
    db_ok = ctx.db.is_usable()
    lake_ok = ctx.lake.is_usable()
    workers = []
    if db_ok:
        now = time.time() * 1000
        stale_after = 3 * ctx.settings.worker_lease_seconds * 1000
        with ctx.db.session() as s:
            for w in admin_repo.workers(s):
                workers.append({"id": w.id, "host": w.host, "pid": w.pid, "heartbeat": w.heartbeat_ms,
                                "alive": now - w.heartbeat_ms < stale_after, "currentJobId": w.current_job_id,
                                "jobsDone": w.jobs_done})
    ok = db_ok and lake_ok
    body = {"status": "ok" if ok else "unavailable", "database": "ok" if db_ok else "unavailable",
            "lake": "ok" if lake_ok else "unavailable", "dataDir": str(ctx.settings.data_dir),
            "workers": workers, "liveWorkers": sum(1 for w in workers if w["alive"])}
    return Json(body, status_code=200 if ok else 503)


@router.post("/reset")
async def reset(request: Request, ctx: ContextDep):
    """Body or query `{"org": ..., "sandbox": ...}` resets one tenant (sandbox optional); nothing resets all."""
    target = await read_json(request, required=False)
    if target is not None and not isinstance(target, dict):
        raise Invalid("Reset body must be a JSON object like {\"org\": \"...\", \"sandbox\": \"prod\"}.")
    target = target or {}
    org = _text_member(target, "org") or request.query_params.get("org")
    sandbox = _text_member(target, "sandbox") or request.query_params.get("sandbox")
    if sandbox and not org:
        raise Invalid("Reset of a sandbox needs its org.")

    def _wipe():
        with ctx.db.session() as s:
            sandboxes = {sandbox} if sandbox else (admin_repo.sandboxes_of(s, org) if org else set())
            admin_repo.wipe(s, org, sandbox)
            if org is None:
                controls_repo.clear(s)
        if org is None:
            ctx.lake.remove_all()
        for sb in sandboxes:
            ctx.lake.remove_tenant(org, sb)

    await run_in_threadpool(_wipe)
    # Tokens are no tenant's data and stay issued; only this process's cache of them goes, so a token deleted
    # from the database stops working here at once (other processes notice within their recheck interval).
    request.app.state.token_checker.forget_all()
    return Json({"reset": "all" if org is None else {"org": org, "sandbox": sandbox}})


@router.get("/controls")
def get_controls(ctx: ContextDep):
    with ctx.db.session() as s:
        return Json(controls.read_all(s))


@router.put("/controls")
@router.post("/controls", include_in_schema=False)
def put_controls(body: JsonBody, ctx: ContextDep):
    """Set any of: `jobPacing {mode: immediate|delay|manual, delaySeconds}`, `failNextJobs [{kind, count, code,
    message}]`, `faults [{method, path (glob), latencyMs, status, message}]`. Omitted keys stay as they are."""
    with ctx.db.session() as s:
        current = controls.update(s, body)
    return Json(current)


@router.delete("/controls")
def clear_controls(ctx: ContextDep):
    with ctx.db.session() as s:
        controls_repo.clear(s)
        return Json(controls.read_all(s))


@router.post("/jobs/release")
async def release_jobs(request: Request, ctx: ContextDep):
    """Release jobs held by manual pacing: all, or those of `{"kind", "subjectId", "org", "sandbox"}` (any of
    them; export job ids are numbered per tenant, so `org`/`sandbox` keep one test's release to its tenant)."""
    target = await read_json(request, required=False)
    if target is not None and not isinstance(target, dict):
        raise Invalid("Release body must be a JSON object like {\"kind\": \"export\", \"subjectId\": \"12\"}.")
    target = target or {}
    kind = _text_member(target, "kind")
    org, sandbox = _text_member(target, "org"), _text_member(target, "sandbox")
    subject = target.get("subjectId")
    if subject is not None and (isinstance(subject, bool) or not isinstance(subject, str | int)):
        raise Invalid("'subjectId' must be a string or an integer.")

    def _release():
        with ctx.db.session() as s:
            return queue.release_held(s, kind, str(subject) if subject is not None else None, org=org,
                                      sandbox=sandbox)

    return Json({"released": await run_in_threadpool(_release)})


def _text_member(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise Invalid(f"'{name}' must be a string of at most 255 characters.")
    return value or None


# ---- the request journal (CONTRACT §10) ---------------------------------------------------------------------

@router.get("/requests")
def list_requests(request: Request):
    """Requests this process answered, oldest first. Filters: `method`, `path` (a glob), `org`, `sandbox`,
    `status` (503 or 5xx), `since` (epoch ms); paging: `limit` (default 100, at most 1000) and `after` (the
    `next` of the previous page)."""
    q, limit = journal.parse_query(request.query_params)
    found, more = request.app.state.journal.find(q, limit)
    return Json({"requests": [e.view() for e in found],
                 "meta": {"count": len(found), "next": found[-1].id if more else None}})


@router.get("/requests/count")
def count_requests(request: Request):
    """How many journaled requests match the filters of GET /_upstack/requests (for verifications)."""
    q, _ = journal.parse_query(request.query_params)
    return Json({"count": request.app.state.journal.count(q)})


@router.delete("/requests")
def clear_requests(request: Request):
    """Forget the journaled requests that match the filters (all of them without a filter)."""
    q, _ = journal.parse_query(request.query_params)
    return Json({"cleared": request.app.state.journal.clear(q)})
