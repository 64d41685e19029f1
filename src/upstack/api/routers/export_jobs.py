"""Profile export job routes (/data/core/ups/export/jobs): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.deps import JsonBody, ReadSessionDep, RequestIdDep, SessionDep, SettingsDep, TenantDep
from upstack.api.paging import export_cursor_page, parse_cursor_query
from upstack.api.responses import Json
from upstack.services import export_jobs

router = APIRouter(prefix="/data/core/ups/export/jobs", tags=["export jobs"])


@router.post("")
@router.post("/", include_in_schema=False)
def create_job(body: JsonBody, s: SessionDep, t: TenantDep, request_id: RequestIdDep, settings: SettingsDep):
    job = export_jobs.create_job(s, t, body, request_id, max_attempts=settings.job_max_attempts)
    return Json(export_jobs.job_view(job), headers={"X-Location": f"/data/core/ups/export/jobs/{job.id}"})


@router.get("")
@router.get("/", include_in_schema=False)
def list_jobs(request: Request, s: ReadSessionDep, t: TenantDep):
    params = request.query_params
    q = parse_cursor_query(params)
    statuses = export_jobs.parse_statuses(params.getlist("status"))
    # One row more than the page holds tells whether there is a next page.
    rows = export_jobs.list_jobs(s, t, sort_field=q.sort_field, descending=q.descending, after=q.after,
                                 skip=q.skip, limit=q.limit + 1, statuses=statuses)
    return Json(export_cursor_page(params, q, rows))


@router.get("/{job_id}")
def get_job(job_id: str, s: ReadSessionDep, t: TenantDep):
    return Json(export_jobs.job_view(export_jobs.get_job(s, t, job_id)))


@router.delete("/{job_id}", status_code=204)
def cancel_job(job_id: str, s: SessionDep, t: TenantDep):
    export_jobs.cancel_job(s, t, job_id)
    return Response(status_code=204)
