"""Local controls (/_upstack, not part of AEP): health and reset, callable without AEP headers."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request

from upstack.api.deps import ContextDep
from upstack.api.responses import Json
from upstack.services.errors import Invalid
from upstack.storage import admin_repo

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
    raw = await request.body()
    target = {}
    if raw.strip():
        try:
            target = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Invalid("Reset body must be JSON like {\"org\": \"...\", \"sandbox\": \"prod\"}.") from None
        if not isinstance(target, dict):
            raise Invalid("Reset body must be a JSON object.")
    org = target.get("org") or request.query_params.get("org")
    sandbox = target.get("sandbox") or request.query_params.get("sandbox")
    if sandbox and not org:
        raise Invalid("Reset of a sandbox needs its org.")
    from starlette.concurrency import run_in_threadpool

    def _wipe():
        with ctx.db.session() as s:
            admin_repo.wipe(s, org, sandbox)
        if org is None:
            ctx.lake.remove_all()
        elif sandbox is None:
            ctx.lake.remove_tenant(org, None)
        else:
            ctx.lake.remove_tenant(org, sandbox)

    await run_in_threadpool(_wipe)
    return Json({"reset": "all" if org is None else {"org": org, "sandbox": sandbox}})
