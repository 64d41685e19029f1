"""Typed dependencies every router uses: the app context, one transaction per request, the tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from upstack.config import Settings
from upstack.context import AppContext
from upstack.lake import Lake
from upstack.tenant import Tenant


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx


def get_session(request: Request) -> Iterator[Session]:
    # The request owns the transaction: services never commit. scope="function" below makes the commit
    # happen before the response is sent, so a client never sees a 2xx for work that then rolled back.
    with request.app.state.ctx.db.session() as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    with request.app.state.ctx.db.read_session() as session:
        yield session


def get_tenant(request: Request) -> Tenant:
    return request.state.tenant


def get_request_id(request: Request) -> str:
    return request.state.request_id


ContextDep = Annotated[AppContext, Depends(get_context)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]  # GETs that never write
TenantDep = Annotated[Tenant, Depends(get_tenant)]
RequestIdDep = Annotated[str, Depends(get_request_id)]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.ctx.settings


def get_lake(request: Request) -> Lake:
    return request.app.state.ctx.lake


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
LakeDep = Annotated[Lake, Depends(get_lake)]


async def read_body(request: Request) -> bytes:
    """A small (JSON or form) body, whole; one that has not fully arrived within the idle timeout is a 408."""
    from upstack.services.errors import RequestTimeout

    timeout = request.app.state.ctx.settings.request_idle_timeout_seconds
    try:
        with anyio.fail_after(timeout):  # such a body is small (max_body_bytes): bound it whole
            return await request.body()
    except TimeoutError:
        raise RequestTimeout(f"The request body did not arrive within {timeout:g} s.") from None


JSON_BODY_TYPES = ("application/json", "text/plain")


async def read_json(request: Request, *, required: bool = True):
    """The request's JSON body, parsed once within the depth bound; wrong media type is 415, malformed or
    too deep JSON the family's 400. With `required=False` an empty body is None.

    CONTRACT §1: the body is JSON when its Content-Type is application/json (or +json), text/plain or absent,
    as Adobe's own samples send it without one; any other type is 415. The /_upstack controls refuse
    text/plain and absent types before this (the gateway's local-control check), as CSRF protection."""
    from upstack.api import jsonbody
    from upstack.services.errors import UnsupportedMediaType

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    settings = request.app.state.ctx.settings
    raw = await read_body(request)
    if not required and not raw.strip():
        return None
    if raw.strip() and ctype and not (ctype in JSON_BODY_TYPES or ctype.endswith("+json")):
        raise UnsupportedMediaType(f"Content-Type must be application/json, got '{ctype}'.")
    max_depth = settings.max_json_depth
    if len(raw) <= jsonbody.INLINE_BYTES:
        return jsonbody.parse(raw, max_depth)
    return await anyio.to_thread.run_sync(jsonbody.parse, raw, max_depth)


async def json_body(request: Request):
    return await read_json(request)


JsonBody = Annotated[object, Depends(json_body)]
