"""Local controls (/_upstack, not part of AEP): health, reset, pacing, failures, faults and the request journal,
callable without AEP headers (CONTRACT §10)."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from upstack.api.deps import ContextDep, JsonBody, read_json
from upstack.api.responses import Json
from upstack.schemas.controls import (
    ControlsUpdate,
    DrainRequest,
    FailureRule,
    FaultRule,
    PacingRule,
    ReleaseRequest,
    ResetRequest,
    Scoped,
)
from upstack.services import admin, controls, journal, metrics
from upstack.services.errors import Invalid

router = APIRouter(prefix="/_upstack", tags=["upstack"])


@router.get("/health")
def health(ctx: ContextDep):
    db_ok = ctx.db.is_usable()
    lake_ok = ctx.lake.is_usable()
    workers = []
    if db_ok:
        with ctx.db.session() as s:
            workers = admin.workers(s, now_ms=time.time() * 1000,
                                    stale_after_ms=3 * ctx.settings.worker_lease_seconds * 1000)
    ok = db_ok and lake_ok
    body = {"status": "ok" if ok else "unavailable", "database": "ok" if db_ok else "unavailable",
            "lake": "ok" if lake_ok else "unavailable", "dataDir": str(ctx.settings.data_dir),
            "workers": workers, "liveWorkers": sum(1 for w in workers if w["alive"])}
    return Json(body, status_code=200 if ok else 503)


@router.post("/reset")
async def reset(request: Request, ctx: ContextDep):
    """Body or query `{"org": ..., "sandbox": ...}` resets one tenant (sandbox optional): its data, its controls
    and its journaled requests. Without either, everything."""
    body = await read_json(request, required=False)
    target = ResetRequest.model_validate(body if body is not None else {})
    org = target.org or request.query_params.get("org") or None
    sandbox = target.sandbox or request.query_params.get("sandbox") or None
    if sandbox and not org:
        raise Invalid("Reset of a sandbox needs its org.")

    def _wipe():
        with ctx.db.session() as s:
            sandboxes = admin.wipe(s, org, sandbox)
        if org is None:
            ctx.lake.remove_all()
        for sb in sandboxes:
            ctx.lake.remove_tenant(org, sb)

    await run_in_threadpool(_wipe)
    request.app.state.faults.invalidate()
    request.app.state.journal.clear(journal.Query(org=org, sandbox=sandbox))
    # Tokens are no tenant's data and stay issued; only this process's cache of them goes, so a token deleted
    # from the database stops working here at once (other processes notice within their recheck interval).
    request.app.state.token_checker.forget_all()
    return Json({"reset": "all" if org is None else {"org": org, "sandbox": sandbox}})


# ---- controls: pacing, forced failures, faults (CONTRACT §10) -------------------------------------------------

@router.get("/controls")
def get_controls(ctx: ContextDep):
    with ctx.db.session() as s:
        return Json(controls.read_all(s))


@router.put("/controls")
@router.post("/controls", include_in_schema=False)
def put_controls(body: JsonBody, request: Request, ctx: ContextDep):
    """Set any of `jobPacing {mode: immediate|delay|manual, delaySeconds, holdAt: NEW|PROCESSING, org, sandbox}`,
    `failNextJobs [{kind, times, code, message, org, sandbox}]`, `faults [{method, path (glob), status, message,
    latencyMs, times, org, sandbox}]`. Omitted keys stay as they are; rules with an org replace that tenant's
    rules only. In force for the very next request."""
    change = ControlsUpdate.model_validate(body)
    with ctx.db.session() as s:
        current = controls.update(s, change)
    request.app.state.faults.invalidate()
    return Json(current)


@router.delete("/controls")
def clear_controls(request: Request, ctx: ContextDep):
    """Clear every control, or one tenant's (`?org=`, `&sandbox=`)."""
    scope = Scoped.model_validate({k: v for k, v in request.query_params.items() if k in ("org", "sandbox")})
    with ctx.db.session() as s:
        controls.clear(s, scope.org, scope.sandbox)
        current = controls.read_all(s)
    request.app.state.faults.invalidate()
    return Json(current)


@router.post("/faults", status_code=201)
def add_fault(body: JsonBody, request: Request, ctx: ContextDep):
    """Add one fault rule (the others stay): `{method, path, status, message, latencyMs, times, org, sandbox}`."""
    rule = FaultRule.model_validate(body)
    with ctx.db.session() as s:
        rule = controls.add_fault(s, rule)
    request.app.state.faults.invalidate()
    return Json(rule.model_dump(exclude_none=True), status_code=201)


@router.post("/failures", status_code=201)
def add_failure(body: JsonBody, ctx: ContextDep):
    """Fail the next `times` jobs of a kind (of a tenant): `{kind, times, code, message, org, sandbox}`."""
    rule = FailureRule.model_validate(body)
    with ctx.db.session() as s:
        rule = controls.add_failure(s, rule)
    return Json(rule.model_dump(exclude_none=True), status_code=201)


@router.put("/pacing")
def set_pacing(body: JsonBody, ctx: ContextDep):
    """Job pacing of a tenant (or the default): `{mode, delaySeconds, holdAt, org, sandbox}`."""
    rule = PacingRule.model_validate(body)
    with ctx.db.session() as s:
        controls.set_pacing(s, rule)
    return Json(rule.model_dump(exclude_none=True))


@router.post("/jobs/release")
async def release_jobs(request: Request, ctx: ContextDep):
    """Release held jobs (held at NEW or at PROCESSING): all, or those matching `{kind, subjectId, org,
    sandbox}`. Export job ids are numbered per tenant, so `org`/`sandbox` keep a release to one test's jobs."""
    body = await read_json(request, required=False)
    target = ReleaseRequest.model_validate(body if body is not None else {})
    subject = str(target.subjectId) if target.subjectId is not None else None

    def _release():
        with ctx.db.session() as s:
            return admin.release_held(s, target.kind, subject, org=target.org, sandbox=target.sandbox)

    return Json({"released": await run_in_threadpool(_release)})


@router.post("/jobs/drain")
async def drain_jobs(request: Request, ctx: ContextDep):
    """Wait until no job (of `{org, sandbox}`, or of anyone) is queued or running, jobs held until release
    aside, at most `timeoutSeconds` (default 30): a test goes on once the server is idle."""
    body = await read_json(request, required=False)
    target = DrainRequest.model_validate(body if body is not None else {})

    def _pending():
        with ctx.db.read_session() as s:
            return admin.pending(s, target.org, target.sandbox)

    deadline = time.monotonic() + target.timeoutSeconds
    while True:
        active, held = await run_in_threadpool(_pending)
        if not active or time.monotonic() >= deadline:
            return Json({"drained": not active, "active": active, "held": held})
        await anyio.sleep(0.05)


# ---- metrics ----------------------------------------------------------------------------------------------------

@router.get("/metrics")
def get_metrics(request: Request):
    """Prometheus text exposition: this process's requests by route template and status, and the jobs, queue and
    totals every process reads alike from the database (services/metrics.py)."""
    body, content_type = metrics.exposition(request.app.state.metrics_registry, request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})


# ---- the request journal (CONTRACT §10) ---------------------------------------------------------------------

@router.get("/requests")
def list_requests(request: Request):
    """Requests this process answered, oldest first. Filters: `method`, `path` (a glob), `org`, `sandbox`,
    `status` (503 or 5xx), `since` (epoch ms); paging: `limit` (default 100, at most 1000) and `after` (the
    `next` of the previous page)."""
    q, limit = journal.parse_query(request.query_params)
    found, more = request.app.state.journal.find(q, limit)
    return Json({"requests": [journal.view(e) for e in found],
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
