"""The AEP gateway as ASGI middleware: request ids, required headers, auth, tenancy, body size and type."""

from __future__ import annotations

import time
import uuid

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstack.services.errors import GatewayError
from upstack.services.tenancy import Tenant

# Paths that need no AEP headers: the token endpoint and the local controls (CONTRACT §1, §10).
OPEN_PREFIXES = ("/ims/", "/_upstack", "/docs", "/openapi.json", "/redoc")
BODY_METHODS = {"POST", "PUT", "PATCH"}


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, settings, token_checker, render_error, fault_source=None):
        self.app = app
        self.settings = settings
        self.check_token = token_checker  # (token, api_key, org) -> GatewayError | None, blocking (DB)
        self.render_error = render_error  # (scope, exc, request_id) -> Response
        self.fault_source = fault_source  # () -> list of injected faults, blocking (DB); cached 1 s
        self._faults: list = []
        self._faults_read = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started"] = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        path = scope["path"]
        try:
            if not path.startswith(OPEN_PREFIXES):
                state["tenant"] = await self._check_headers(scope["method"], headers)
            receive = self._limit_body(scope, headers, receive)
            if not path.startswith("/_upstack"):
                await self._inject_faults(scope["method"], path)
        except (GatewayError, InjectedFault, BodyTooLarge) as exc:
            await self.render_error(scope, exc, request_id)(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)

    async def _inject_faults(self, method: str, path: str) -> None:
        if self.fault_source is None:
            return
        if time.monotonic() - self._faults_read > 1.0:
            self._faults = await anyio.to_thread.run_sync(self.fault_source)
            self._faults_read = time.monotonic()
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.latency_ms:
                    await anyio.sleep(fault.latency_ms / 1000)
                if fault.status:
                    raise InjectedFault(fault.status, fault.message)
                return

    async def _check_headers(self, method: str, headers: dict[str, str]) -> Tenant:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if not auth or scheme.lower() != "bearer" or not token:
            raise GatewayError(403, "403010", "Oauth token is missing.")
        api_key = headers.get("x-api-key", "").strip()
        org = headers.get("x-gw-ims-org-id", "").strip()
        if self.settings.auth == "strict":
            problem = await anyio.to_thread.run_sync(self.check_token, token, api_key, org)
            if problem is not None:
                raise problem
        if not api_key:
            raise GatewayError(403, "403000", "Api Key is required")
        if not org:
            raise GatewayError(400, "400003", "Missing header")
        sandbox = headers.get("x-sandbox-name", "").strip() or "prod"
        return Tenant(org=org, sandbox=sandbox)

    def _limit_body(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Receive:
        """JSON bodies are capped at max_body_bytes, uploads at max_upload_bytes (checked again while
        streaming, since Content-Length can be absent)."""
        if scope["method"] not in BODY_METHODS:
            return receive
        is_upload = "/files/" in scope["path"] and scope["path"].startswith("/data/foundation/import/")
        limit = self.settings.max_upload_bytes if is_upload else self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return limited


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"Request body is larger than the limit of {limit} bytes")
        self.limit = limit


class InjectedFault(Exception):
    """An error answer injected by the local test controls (rendered in the route's family shape)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
