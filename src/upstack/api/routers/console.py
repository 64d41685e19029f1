"""The local console (/_upstack/console, not part of AEP): server-rendered pages over one tenant's data and the
local controls, calling the same services as the JSON routes. Read pages are GETs; the control forms POST here,
which the gateway accepts from the console's own pages only (same Origin; in strict mode its session cookie or
the admin token). No JavaScript; Jinja2 escapes every value."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from upstack.api.deps import ContextDep, read_body
from upstack.api.errors import _validation_message
from upstack.api.gateway import CONSOLE_COOKIE, CONSOLE_PREFIX, console_session
from upstack.schemas.controls import FailureRule, FaultRule, PacingRule
from upstack.schemas.entities import EntityQuery
from upstack.services import admin, console, controls, data_access, entities, journal
from upstack.services.errors import DomainError, Invalid
from upstack.tenant import Tenant

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(prefix=CONSOLE_PREFIX, include_in_schema=False)

MAX_FORM_FIELDS = 20
MAX_LOOKUP_ID = 1_000
# No script, no frames, forms to this server only.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with a form POST, which the
    # gateway refuses as cross-site.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ms(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(value)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "console"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
TEMPLATES.filters.update(ms=_ms, pretty=_json, seg=lambda v: quote(str(v), safe=""))


class Page:
    """One request's rendering context: the tenant and links that keep it."""

    def __init__(self, request: Request, tenant: Tenant | None):
        self.request = request
        self.tenant = tenant
        self.strict = request.app.state.ctx.settings.auth == "strict"

    def qs(self, **extra: Any) -> str:
        params = {"org": self.tenant.org, "sandbox": self.tenant.sandbox} if self.tenant else {}
        params.update({k: v for k, v in extra.items() if v not in (None, "")})
        return urlencode(params)

    def url(self, where: str = "", /, **extra: Any) -> str:
        query = self.qs(**extra)
        return f"{CONSOLE_PREFIX}{where}" + (f"?{query}" if query else "")

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(name).render(page=self, prefix=CONSOLE_PREFIX, **values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def error(self, exc: DomainError | ValidationError) -> HTMLResponse:
        if isinstance(exc, ValidationError):
            exc = _validation_message(exc)
        return self.render("error.html", status=exc.status, status_code=exc.status, message=exc.detail)


def _page(request: Request) -> Page:
    """The page and its tenant (`?org=&sandbox=`); a bad tenant still gets a page, without one."""
    try:
        return Page(request, console.tenant(request.query_params.get("org"), request.query_params.get("sandbox")))
    except DomainError:
        return Page(request, None)


def _tenant(page: Page) -> Tenant:
    q = page.request.query_params
    if page.tenant is None:
        console.tenant(q.get("org"), q.get("sandbox"))  # raises the reason
    return page.tenant


# ---- pages ---------------------------------------------------------------------------------------------------

def _read_page(request: Request, ctx, render: Callable[[Page, Session, Tenant], Response]) -> Response:
    """A page of the request's tenant rendered inside one read session (the rows are ORM objects), or the
    error page of what went wrong."""
    page = _page(request)
    try:
        t = _tenant(page)
        with ctx.db.read_session() as s:
            return render(page, s, t)
    except DomainError as exc:
        return page.error(exc)


@router.get("")
@router.get("/")
def overview(request: Request, ctx: ContextDep):
    return _read_page(request, ctx, lambda page, s, t: page.render(
        "overview.html", data=console.overview(s, t), batch_ids=console.job_batch_ids, max_rows=console.MAX_ROWS))


@router.get("/batches/{batch_id}")
def batch_page(batch_id: str, request: Request, ctx: ContextDep):
    return _read_page(request, ctx, lambda page, s, t: page.render(
        "batch.html", d=console.batch_detail(s, t, batch_id), max_rows=console.MAX_ROWS))


@router.get("/files/{file_id}")
def file_page(file_id: str, request: Request, ctx: ContextDep):
    def render(page: Page, s: Session, t: Tenant) -> Response:
        f, parts = console.file_detail(s, t, ctx.lake, file_id)
        return page.render("file.html", f=f, parts=parts)

    return _read_page(request, ctx, render)


@router.get("/files/{file_id}/download")
def download(file_id: str, request: Request, ctx: ContextDep):
    """One part of a dataSetFile, as Data Access serves it at /data/foundation/export/files/{id}?path=."""
    page = _page(request)
    try:
        t = _tenant(page)
        name = request.query_params.get("path") or ""
        if not name:
            raise Invalid("Query parameter 'path' is required: the name of one file of this dataSetFile.")
        with ctx.db.read_session() as s:
            path = data_access.file_part(s, t, ctx.lake, file_id, name)
    except DomainError as exc:
        return page.error(exc)
    return FileResponse(path, media_type="application/octet-stream", filename=Path(name).name,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.get("/lookup")
def lookup(request: Request, ctx: ContextDep):
    """A profile by identity and merge policy, through the Profile Access service (as GET /access/entities)."""
    page = _page(request)
    q = request.query_params
    form = {"namespace": q.get("namespace") or "", "id": q.get("id") or "", "mergePolicyId": q.get("mergePolicyId") or ""}
    try:
        t = _tenant(page)
        with ctx.db.read_session() as s:
            policies = console.policy_choices(s, t)
    except DomainError as exc:
        return page.error(exc)
    entity, problem, status = None, None, 200
    if form["id"] or form["namespace"]:
        try:
            if len(form["id"]) > MAX_LOOKUP_ID or len(form["namespace"]) > console.MAX_NAME:
                raise Invalid(f"The identity is at most {MAX_LOOKUP_ID} characters, its namespace {console.MAX_NAME}.")
            params = {"schema.name": entities.PROFILE, "entityId": form["id"], "entityIdNS": form["namespace"],
                      "mergePolicyId": form["mergePolicyId"]}
            query = EntityQuery.from_query(params)
            with ctx.db.session() as s:
                planned = entities.plan(s, ctx.lake, t, query)
            entity = entities.profile(planned)
        except ValidationError as exc:  # the query's model refused it, as GET /access/entities would (400)
            problem, status = _validation_message(exc).detail, 400
        except DomainError as exc:
            problem, status = exc.detail, exc.status
    return page.render("lookup.html", status=status, form=form, policies=policies, entity=entity, problem=problem)


@router.get("/requests")
def requests_page(request: Request):
    """The request journal, newest first; `all=1` shows every tenant's."""
    page = _page(request)
    q = request.query_params
    try:
        t = _tenant(page)
        every = q.get("all") == "1"
        params = {k: q.get(k) for k in ("method", "path", "status") if q.get(k)}
        if not every:
            params.update(org=t.org, sandbox=t.sandbox)
        query, _ = journal.parse_query(params)
    except DomainError as exc:
        return page.error(exc)
    found = request.app.state.journal.latest(query, console.MAX_ROWS)
    return page.render("requests.html", entries=[journal.view(e) for e in found], every=every,
                       filters={k: q.get(k) or "" for k in ("method", "path", "status")}, max_rows=console.MAX_ROWS)


@router.get("/controls")
def controls_page(request: Request, ctx: ContextDep):
    page = _page(request)
    try:
        _tenant(page)
        with ctx.db.read_session() as s:
            current = controls.read_all(s)
    except DomainError as exc:
        return page.error(exc)
    return page.render("controls.html", current=current, done=request.query_params.get("done") or "")


# ---- control forms (POST, same-origin only: see api/gateway.py) ------------------------------------------------

async def _form(request: Request) -> dict[str, str]:
    raw = await read_body(request)  # bounded by the gateway's max_body_bytes
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("The form could not be read.") from None
    return {k: v.strip() for k, v in pairs if v.strip()}


def _scoped(form: dict[str, str], t: Tenant, *names: str) -> dict[str, Any]:
    unknown = sorted(set(form) - set(names))
    if unknown:  # as the JSON controls refuse unknown members: a typo must not leave a control off
        raise Invalid(f"Unknown form field(s): {', '.join(n[:50] for n in unknown[:5])}.")
    body: dict[str, Any] = dict(form)
    return dict(body, org=t.org, sandbox=t.sandbox)


def _back(page: Page, done: str) -> RedirectResponse:
    return RedirectResponse(page.url("/controls", done=done), status_code=303, headers=HEADERS)


@router.post("/controls/{action}")
async def change_controls(action: str, request: Request, ctx: ContextDep):
    """pacing | fault | failure | clear | release, for the page's tenant, through services.controls and the queue."""
    page = _page(request)
    try:
        t = _tenant(page)
        form = await _form(request)
        if action == "pacing":
            rule = PacingRule.model_validate(_scoped(form, t, "mode", "delaySeconds", "holdAt"), strict=False)
            change = lambda s: controls.set_pacing(s, rule)  # noqa: E731
        elif action == "fault":
            fault = FaultRule.model_validate(_scoped(form, t, "method", "path", "status", "message", "latencyMs",
                                                     "times"), strict=False)
            change = lambda s: controls.add_fault(s, fault)  # noqa: E731
        elif action == "failure":
            failure = FailureRule.model_validate(_scoped(form, t, "kind", "times", "code", "message"), strict=False)
            change = lambda s: controls.add_failure(s, failure)  # noqa: E731
        elif action == "clear":
            change = lambda s: controls.clear(s, t.org, t.sandbox)  # noqa: E731
        elif action == "release":
            change = lambda s: admin.release_held(s, None, None, org=t.org, sandbox=t.sandbox)  # noqa: E731
        else:
            return page.render("error.html", status=404, status_code=404, message=f"No console control '{action[:50]}'.")

        def _apply():
            with ctx.db.session() as s:
                change(s)

        await run_in_threadpool(_apply)
    except (DomainError, ValidationError) as exc:
        return page.error(exc)
    request.app.state.faults.invalidate()  # in force for the very next request, as with PUT /_upstack/controls
    return _back(page, action)


# ---- strict mode: a session cookie in place of the admin token -------------------------------------------------

@router.get("/login")
def login_page(request: Request):
    page = _page(request)
    return page.render("login.html", failed=False)


@router.post("/login")
async def login(request: Request, ctx: ContextDep):
    page = _page(request)
    try:
        form = await _form(request)
    except DomainError as exc:
        return page.error(exc)
    admin = ctx.settings.admin_token
    if not page.strict:
        return RedirectResponse(page.url(), status_code=303, headers=HEADERS)
    given = form.get("token", "")
    if admin is None or not secrets.compare_digest(given.encode(), admin.get_secret_value().encode()):
        return page.render("login.html", status=401, failed=True)
    response: Response = RedirectResponse(page.url(), status_code=303, headers=HEADERS)
    response.set_cookie(CONSOLE_COOKIE, console_session(admin.get_secret_value()), httponly=True, samesite="strict",
                        path=CONSOLE_PREFIX, secure=request.url.scheme == "https")
    return response
