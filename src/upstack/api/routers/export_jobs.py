"""Profile export job routes (/data/core/ups/export/jobs): parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from upstack.api.bodies import request_body, typed_body, unknown_field_paths
from upstack.api.deps import LakeDep, ReadSessionDep, RequestIdDep, SessionDep, SettingsDep, TenantDep
from upstack.api.openapi import GATEWAY, answers, query
from upstack.api.paging import export_cursor_page, parse_cursor_query
from upstack.api.responses import Json
from upstack.schemas.export_jobs import CreateExportJob, ExportJob, ExportJobList, split_fields
from upstack.services import export_jobs, field_paths

router = APIRouter(prefix="/data/core/ups/export/jobs", tags=["export jobs"])
CreateBody = typed_body(CreateExportJob)
NOT_FOUND = {404: "No such export job in this sandbox."}


# The list's query (api/paging.parse_cursor_query reads it): declared here, the route reads request.query_params.
LIST_QUERY = {"parameters": [
    query("limit", {"type": "integer", "default": 20}, "Records per page: clamped to 1..1000, never refused."),
    query("offset", {"type": "string"}, "The `<time>_<id>` cursor of `link.next`."),
    query("start", {"type": "integer", "minimum": 0}, "Records to skip."),
    query("page", {"type": "integer", "minimum": 1}, "1-based page number."),
    query("sort", {"type": "string", "default": "createdTime:desc"},
           "`createdTime` or `updateTime`, then `:asc` or `:desc`."),
    query("status", {"type": "string"}, "Only jobs in these states, comma-separated: "
           + ", ".join(export_jobs.STATUSES) + "."),
]}


@router.post("", response_model=None, openapi_extra=request_body(CreateExportJob), responses=answers(
    400, 408, 413, 415, *GATEWAY, 507, ok={200: {"model": ExportJob, "description": "The job, NEW.",
                                            "headers": {"X-Location": {"schema": {"type": "string"},
                                                                       "description": "The job's path."}}}}))
@router.post("/", include_in_schema=False)
def create_job(request: Request, body: CreateBody, s: SessionDep, t: TenantDep, request_id: RequestIdDep,
               settings: SettingsDep, lake: LakeDep):
    events = body.additionalFields.eventList if body.additionalFields else None
    event_fields = events.fields if events is not None else None
    unknown_field_paths(request, field_paths.unknown(
        s, lake, t, split_fields(body.fields) if body.fields else None,
        split_fields(event_fields) if event_fields else None))
    job = export_jobs.create_job(s, t, body, request_id, max_attempts=settings.job_max_attempts)
    return Json(export_jobs.job_view(job), headers={"X-Location": f"/data/core/ups/export/jobs/{job.id}"})


@router.get("", response_model=None, openapi_extra=LIST_QUERY, responses=answers(
    400, *GATEWAY, ok={200: {"model": ExportJobList, "description": "One page of jobs, newest first."}}))
@router.get("/", include_in_schema=False)
def list_jobs(request: Request, s: ReadSessionDep, t: TenantDep):
    params = request.query_params
    q = parse_cursor_query(params)
    statuses = export_jobs.parse_statuses(params.getlist("status"))
    # One row more than the page holds tells whether there is a next page.
    rows = export_jobs.list_jobs(s, t, sort_field=q.sort_field, descending=q.descending, after=q.after,
                                 skip=q.skip, limit=q.limit + 1, statuses=statuses)
    return Json(export_cursor_page(params, q, rows))


@router.get("/{job_id}", response_model=None, responses=answers(
    404, *GATEWAY, said=NOT_FOUND, ok={200: {"model": ExportJob, "description": "The job."}}))
def get_job(job_id: str, s: ReadSessionDep, t: TenantDep):
    return Json(export_jobs.job_view(export_jobs.get_job(s, t, job_id)))


@router.delete("/{job_id}", status_code=204, response_model=None, responses=answers(
    404, *GATEWAY, 507, said=NOT_FOUND, ok={204: {"description": "Cancelled (a finished job is left as it is)."}}))
def cancel_job(job_id: str, s: SessionDep, t: TenantDep):
    export_jobs.cancel_job(s, t, job_id)
    return Response(status_code=204)
