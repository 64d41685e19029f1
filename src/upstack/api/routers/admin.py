"""Local controls (/_upstack, not part of AEP): health, reset, pacing, failures, faults and the request journal,
callable without AEP headers (CONTRACT §10)."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from upstack.api.bodies import request_body, typed_body
from upstack.api.deps import ContextDep, read_json
from upstack.api.openapi import catalog_answers, query
from upstack.api.responses import Json
from upstack.schemas.admin import (
    UpstackCleared,
    UpstackControls,
    UpstackDrained,
    UpstackHealth,
    UpstackReleased,
    UpstackRequestCount,
    UpstackRequests,
    UpstackReset,
    UpstackSandbox,
)
from upstack.schemas.controls import (
    ControlsUpdate,
    DrainRequest,
    FailureRule,
    FaultRule,
    PacingRule,
    ReleaseRequest,
    ResetRequest,
    SandboxRequest,
    Scoped,
)
from upstack.services import admin, controls, journal, metrics
from upstack.services.errors import Invalid
from upstack.tenant import Tenant

router = APIRouter(prefix="/_upstack", tags=["upstack"])

# What /openapi.json says of the controls. Errors are the Catalog family's body (api/errors.body_for), the gateway's
# for 401 (strict mode without the admin token) and 403 (a cross-site Origin; strict mode without UPSTACK_ADMIN_TOKEN).
LOCAL = (401, 403)
BODY = (400, 408, 413, 415)  # a JSON body: unreadable, slow, too large, or not declared application/json
SAID = {401: "Strict auth mode: `Authorization: Bearer <UPSTACK_ADMIN_TOKEN>` is missing or wrong.",
        403: "A cross-site request (its Origin is not this server), or strict mode without UPSTACK_ADMIN_TOKEN.",
        415: "A body (or a POST, PUT or DELETE) without Content-Type: application/json: refused as a browser's "
             "cross-site form would be."}
TENANT_QUERY = [query("org", {"type": "string"}, "Only this org's."),
                query("sandbox", {"type": "string"}, "Only this sandbox of `org`.")]
JOURNAL_QUERY = {"parameters": [
    query("method", {"type": "string"}, "Only this method."),
    query("path", {"type": "string"}, "Only paths matching this glob, e.g. `/data/core/ups/export/jobs*` "
          "(`urlPattern` is read too)."),
    *TENANT_QUERY,
    query("status", {"type": "string", "pattern": "^([1-5][0-9][0-9]|[1-5]xx)$"}, "A status (503) or a class (5xx)."),
    query("since", {"type": "integer"}, "Only requests logged at or after this epoch ms."),
]}
PAGE_QUERY = [query("limit", {"type": "integer", "default": 100}, f"Requests per page, clamped to 1..{journal.MAX_PAGE}."),
              query("after", {"type": "integer"}, "The `meta.next` of the previous page.")]


def _ok(model: type[BaseModel], description: str, status: int = 200) -> dict:
    return {status: {"model": model, "description": description}}


def _optional(model: type[BaseModel]) -> dict:
    """A JSON body that may be left out (the route reads it itself, `read_json(required=False)`)."""
    extra = request_body(model)
    extra["requestBody"]["required"] = False
    return extra


@router.get("/health", response_model=None, responses=catalog_answers(403, said=SAID, ok={
    **_ok(UpstackHealth, "The database and the lake are usable."),
    503: {"model": UpstackHealth, "description": "The database or the lake is not usable (the same body)."}}))
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


@router.post("/reset", response_model=None, openapi_extra={**_optional(ResetRequest), "parameters": TENANT_QUERY},
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=_ok(UpstackReset, "What was reset.")))
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
    request.app.state.sandboxes.forget_all()  # this process's memory of which sandboxes exist
    return Json({"reset": "all" if org is None else {"org": org, "sandbox": sandbox}})


SandboxBody = typed_body(SandboxRequest)


@router.post("/sandboxes", response_model=None, openapi_extra=request_body(SandboxRequest),
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok={
                 **_ok(UpstackSandbox, "It was created.", 201), **_ok(UpstackSandbox, "It existed already.")}))
def create_sandbox(target: SandboxBody, request: Request):
    """`{"org", "sandbox"}`: the sandbox exists from now on (201 when it is new, 200 when it was there), so its
    requests pass in strict mode and carry no `x-upstack-warning` (CONTRACT §10)."""
    created = request.app.state.sandboxes.create(Tenant(org=target.org, sandbox=target.sandbox))
    return Json({"org": target.org, "sandbox": target.sandbox, "created": created},
                status_code=201 if created else 200)


# ---- controls: pacing, forced failures, faults (CONTRACT §10) -------------------------------------------------

CONTROLS = _ok(UpstackControls, "The controls in force.")
PutControls = typed_body(ControlsUpdate)
FaultBody = typed_body(FaultRule)
FailureBody = typed_body(FailureRule)
PacingBody = typed_body(PacingRule)


@router.get("/controls", response_model=None, responses=catalog_answers(*LOCAL, 503, said=SAID, ok=CONTROLS))
def get_controls(ctx: ContextDep):
    with ctx.db.session() as s:
        return Json(controls.read_all(s))


@router.put("/controls", response_model=None, openapi_extra=request_body(ControlsUpdate),
            responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=CONTROLS))
@router.post("/controls", include_in_schema=False)
def put_controls(change: PutControls, request: Request, ctx: ContextDep):
    """Set any of `jobPacing {mode: immediate|delay|manual, delaySeconds, holdAt: NEW|PROCESSING, org, sandbox}`,
    `failNextJobs [{kind, times, code, message, org, sandbox}]`, `faults [{method, path (glob), status, message,
    latencyMs, times, org, sandbox}]`. Omitted keys stay as they are; rules with an org replace that tenant's
    rules only. In force for the very next request."""
    with ctx.db.session() as s:
        current = controls.update(s, change)
    request.app.state.faults.invalidate()
    return Json(current)


@router.delete("/controls", response_model=None, openapi_extra={"parameters": TENANT_QUERY},
               responses=catalog_answers(400, *LOCAL, 503, said=SAID, ok=CONTROLS))
def clear_controls(request: Request, ctx: ContextDep):
    """Clear every control, or one tenant's (`?org=`, `&sandbox=`)."""
    scope = Scoped.model_validate({k: v for k, v in request.query_params.items() if k in ("org", "sandbox")})
    with ctx.db.session() as s:
        controls.clear(s, scope.org, scope.sandbox)
        current = controls.read_all(s)
    request.app.state.faults.invalidate()
    return Json(current)


@router.post("/faults", status_code=201, response_model=None, openapi_extra=request_body(FaultRule),
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=_ok(FaultRule, "The rule, with its id.", 201)))
def add_fault(rule: FaultBody, request: Request, ctx: ContextDep):
    """Add one fault rule (the others stay): `{method, path, status, message, latencyMs, times, org, sandbox}`."""
    with ctx.db.session() as s:
        rule = controls.add_fault(s, rule)
    request.app.state.faults.invalidate()
    return Json(rule.model_dump(exclude_none=True), status_code=201)


@router.post("/failures", status_code=201, response_model=None, openapi_extra=request_body(FailureRule),
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID,
                                       ok=_ok(FailureRule, "The rule, with its id.", 201)))
def add_failure(rule: FailureBody, ctx: ContextDep):
    """Fail the next `times` jobs of a kind (of a tenant): `{kind, times, code, message, org, sandbox}`."""
    with ctx.db.session() as s:
        rule = controls.add_failure(s, rule)
    return Json(rule.model_dump(exclude_none=True), status_code=201)


@router.put("/pacing", response_model=None, openapi_extra=request_body(PacingRule),
            responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=_ok(PacingRule, "The rule as set.")))
def set_pacing(rule: PacingBody, ctx: ContextDep):
    """Job pacing of a tenant (or the default): `{mode, delaySeconds, holdAt, org, sandbox}`."""
    with ctx.db.session() as s:
        controls.set_pacing(s, rule)
    return Json(rule.model_dump(exclude_none=True))


@router.post("/jobs/release", response_model=None, openapi_extra=_optional(ReleaseRequest),
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=_ok(UpstackReleased, "How many went on.")))
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


@router.post("/jobs/drain", response_model=None, openapi_extra=_optional(DrainRequest),
             responses=catalog_answers(*BODY, *LOCAL, 503, said=SAID, ok=_ok(
                 UpstackDrained, "Idle (`drained`), or what is left when `timeoutSeconds` ran out.")))
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

# response_class only tells /openapi.json that no JSON is answered (Response has no media type of its own).
@router.get("/metrics", response_model=None, response_class=Response, responses=catalog_answers(
    *LOCAL, said=SAID, ok={200: {"description": "Prometheus text format 0.0.4; OpenMetrics when `Accept` asks for it.",
                                 "content": {"text/plain": {"schema": {"type": "string"}},
                                             "application/openmetrics-text": {"schema": {"type": "string"}}}}}))
def get_metrics(request: Request):
    """Prometheus text exposition: this process's requests by route template and status, and the jobs, queue and
    totals every process reads alike from the database (services/metrics.py)."""
    body, content_type = metrics.exposition(request.app.state.metrics_registry, request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})


# ---- the request journal (CONTRACT §10) ---------------------------------------------------------------------

@router.get("/requests", response_model=None, openapi_extra={"parameters": JOURNAL_QUERY["parameters"] + PAGE_QUERY},
            responses=catalog_answers(400, *LOCAL, said=SAID, ok=_ok(UpstackRequests, "One page, oldest first.")))
def list_requests(request: Request):
    """Requests this process answered, oldest first. Filters: `method`, `path` (a glob), `org`, `sandbox`,
    `status` (503 or 5xx), `since` (epoch ms); paging: `limit` (default 100, at most 1000) and `after` (the
    `next` of the previous page)."""
    q, limit = journal.parse_query(request.query_params)
    found, more = request.app.state.journal.find(q, limit)
    return Json({"requests": [journal.view(e) for e in found],
                 "meta": {"count": len(found), "next": found[-1].id if more else None}})


@router.get("/requests/count", response_model=None, openapi_extra=JOURNAL_QUERY, responses=catalog_answers(
    400, *LOCAL, said=SAID, ok=_ok(UpstackRequestCount, "How many match.")))
def count_requests(request: Request):
    """How many journaled requests match the filters of GET /_upstack/requests (for verifications)."""
    q, _ = journal.parse_query(request.query_params)
    return Json({"count": request.app.state.journal.count(q)})


@router.delete("/requests", response_model=None, openapi_extra=JOURNAL_QUERY, responses=catalog_answers(
    400, *LOCAL, said=SAID, ok=_ok(UpstackCleared, "How many were forgotten.")))
def clear_requests(request: Request):
    """Forget the journaled requests that match the filters (all of them without a filter)."""
    q, _ = journal.parse_query(request.query_params)
    return Json({"cleared": request.app.state.journal.clear(q)})
