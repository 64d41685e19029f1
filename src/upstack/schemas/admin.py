"""What the local controls (`/_upstack`, CONTRACT §10) and the token endpoint (`/ims/token/v3`) answer, for the
OpenAPI document: the routes build these bodies themselves (api/routers/admin.py, services/journal.py and
services/ims.py), and tests/test_openapi_docs.py holds real answers to these schemas. The controls' request bodies
are schemas/controls.py; their rules are answered as they are kept (`PacingRule`, `FailureRule`, `FaultRule`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from upstack.schemas.base import Answer as _Answer
from upstack.schemas.controls import FailureRule, FaultRule, PacingRule

State = Literal["ok", "unavailable"]


# ---- health and reset -------------------------------------------------------------------------------------------

class UpstackWorker(_Answer):
    id: str
    host: str
    pid: int
    heartbeat: int = Field(description="Epoch ms of its last heartbeat.")
    alive: bool = Field(description="It beat within three leases.")
    currentJobId: int | None = Field(description="The job it runs, or null.")
    jobsDone: int
    lanes: list[str] = Field(description="The job lanes it claims from, in order: user (ingest, export) and "
                             "background (profile maintenance, which gives way to user work).")


class UpstackHealth(_Answer):
    """GET /_upstack/health: 200 when the database and the lake are usable, else 503 with the same body."""

    status: State
    database: State
    lake: State
    dataDir: str
    workers: list[UpstackWorker] = Field(description="Every worker's heartbeat, oldest first.")
    liveWorkers: int


class UpstackResetTenant(_Answer):
    org: str
    sandbox: str | None = Field(description="null: every sandbox of the org.")


class UpstackReset(_Answer):
    """POST /_upstack/reset: what was reset."""

    reset: Literal["all"] | UpstackResetTenant


class UpstackSandbox(_Answer):
    """POST /_upstack/sandboxes: the sandbox, and whether this call created it."""

    org: str
    sandbox: str
    created: bool


# ---- controls -------------------------------------------------------------------------------------------------

class UpstackFailure(FailureRule):
    """A forced-failure rule as kept, with `count`, the name `times` had first."""

    count: int = Field(description="The same as `times`.")


class UpstackControls(BaseModel):
    """The controls in force: GET, PUT and DELETE /_upstack/controls."""

    model_config = ConfigDict(extra="allow")

    jobPacing: PacingRule = Field(description="The default pacing (no org).")
    tenantPacing: list[PacingRule] = Field(description="Pacing rules of one org (or sandbox).")
    failNextJobs: list[UpstackFailure]
    faults: list[FaultRule]


class UpstackReleased(_Answer):
    released: int = Field(description="Held jobs let go on.")


class UpstackDrained(_Answer):
    drained: bool = Field(description="No job is queued or running (held ones aside).")
    active: int = Field(description="Jobs still queued or running.")
    held: int = Field(description="Jobs held until released.")


# ---- the request journal --------------------------------------------------------------------------------------

class UpstackRequestTenant(_Answer):
    org: str
    sandbox: str | None


class UpstackRequest(_Answer):
    """A journaled request: secrets (Authorization, x-api-key, cookies) are `[redacted]`."""

    id: int = Field(description="Increasing; `after` pages from it.")
    requestId: str
    loggedDate: int = Field(description="Epoch ms of its arrival.")
    method: str
    path: str
    query: str
    tenant: UpstackRequestTenant | None = Field(description="null when the gateway refused it before its tenant.")
    headers: dict[str, str]
    body: Any = Field(description="JSON bodies as JSON, other text as text; null for none or an upload (counted only).")
    bodySize: int
    bodyTruncated: bool
    status: int
    durationMs: float = Field(description="Until its answer started.")
    warning: str | None = Field(None, description="The answer's x-upstack-warning, when it had one.")


class UpstackRequestsMeta(_Answer):
    count: int
    next: int | None = Field(description="`after` for the next page; null on the last.")


class UpstackRequests(_Answer):
    """GET /_upstack/requests: one page of journaled requests, oldest first."""

    requests: list[UpstackRequest]
    meta: UpstackRequestsMeta


class UpstackRequestCount(_Answer):
    count: int


class UpstackCleared(_Answer):
    cleared: int = Field(description="Journaled requests forgotten.")


# ---- IMS --------------------------------------------------------------------------------------------------------

class ImsTokenRequest(BaseModel):
    """POST /ims/token/v3, form-encoded (query parameters are read too, the form wins)."""

    grant_type: Literal["client_credentials"] = "client_credentials"
    client_id: str = Field(min_length=1, max_length=255, description="In strict mode, a client of UPSTACK_IMS_CLIENTS; "
                                                                    "its tokens go with `x-api-key: <client_id>`.")
    client_secret: str = Field("", description="Checked in strict mode only.")
    scope: str | None = Field(None, description="Accepted and ignored.")


class ImsToken(_Answer):
    """A bearer token for `Authorization: Bearer <access_token>`."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"access_token": "upstack.kJ2x8Y3p0qvZ4N1hVb7mE6tW9sRcLfGa5uDnQiHoXyA", "token_type": "bearer",
         "expires_in": 86399}]})

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds it stays valid.")
