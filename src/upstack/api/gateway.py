"""The AEP gateway as ASGI middleware: request ids, Host and local-control protection, required headers,
auth, tenancy, body size, injected faults, and the one catch for errors nothing else handled."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import re
import secrets
import time
from fnmatch import fnmatchcase
from functools import partial
from urllib.parse import urlsplit

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstack import logs
from upstack.services.controls import fault_matches
from upstack.services.errors import DomainError, GatewayError, Invalid, UnsupportedMediaType
from upstack.services.journal import BodyCopy
from upstack.services.sandboxes import DEFAULT as DEFAULT_SANDBOX
from upstack.services.sandboxes import created_warning, refusal
from upstack.tenant import Tenant

CONTROLS_PREFIX = "/_upstack"
# The local console's HTML pages (api/routers/console.py): its forms are the one body a browser may send to
# /_upstack, from the console's own pages only (same Origin); in strict mode its session cookie stands for the
# admin token, obtained at the login page by giving that token.
CONSOLE_PREFIX = "/_upstack/console"
CONSOLE_LOGIN = "/_upstack/console/login"
CONSOLE_COOKIE = "upstack_console"
FORM_TYPE = "application/x-www-form-urlencoded"
# The API's own documentation (api/docs.py): the pages, the OpenAPI document, and the page's assets under /docs/.
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json"})
DOCS_ASSETS_PREFIX = "/docs/"
BODY_METHODS = {"POST", "PUT", "PATCH"}
# Body types a browser sends cross-site without a CORS preflight: a local control never accepts them.
SIMPLE_BODY_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
# A client's x-request-id is echoed in headers and logs: only a short token-like one is kept.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


_ID_PREFIX = secrets.token_hex(8)  # this process's; ids are unique across processes and restarts
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    """32 hex characters like a UUID's, without a system call per request: a random prefix and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def is_docs(path: str) -> bool:
    return path.startswith(DOCS_ASSETS_PREFIX) or path.rstrip("/") in DOCS_PATHS


def needs_aep_headers(path: str) -> bool:
    """Every AEP path needs the gateway headers; the token endpoint, the local controls and the docs do not
    (CONTRACT §1, §10). The OpenAPI document declares the headers on exactly these paths (api/docs.py)."""
    return not (path.startswith(("/ims/", CONTROLS_PREFIX)) or is_docs(path))


# What the server let pass that the platform would not see the same way (api/bodies.py: members a typed body
# ignored, field paths no dataset has; the tenant check below: a sandbox created implicitly): the answer names
# them in this header, several joined by "; ", and the request journal keeps the same text.
WARNING_STATE = "upstack_warning"
WARNING_HEADER = b"x-upstack-warning"


def add_warning(state: dict, text: str) -> None:
    """Adds `text` to the request's warning (scope["state"]); api/bodies.warn is the routes' way to it."""
    before = state.get(WARNING_STATE)
    state[WARNING_STATE] = f"{before}; {text}" if before else text


def _journaled(path: str) -> bool:
    return not (path.startswith(CONTROLS_PREFIX) or is_docs(path))




class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, settings, token_checker, render_error, faults=None, journal=None,
                 request_metrics=None, sandboxes=None):
        self.app = app
        self.sandboxes = sandboxes  # services.sandboxes.SandboxBook, or None
        self.journal = journal  # services.journal.Journal, or None
        self.request_metrics = request_metrics  # services.metrics.RequestMetrics, or None
        self.settings = settings
        self.check_token = token_checker  # (token, api_key, org) -> GatewayError | None, blocking (DB)
        self.render_error = render_error  # (scope, exc, request_id) -> Response; logs what it did not expect
        self.faults = faults  # services.controls.FaultBook, or None
        self.hosts = HostPolicy(settings.host, settings.allowed_hosts)
        admin = settings.admin_token
        self.admin_token = admin.get_secret_value() if admin is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given_id = headers.get("x-request-id", "")
        request_id = given_id if given_id and _REQUEST_ID.fullmatch(given_id) else _new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        began = state["started"] = time.perf_counter()
        path, method = scope["path"], scope["method"]
        # Every AEP request (the token endpoint included) is journaled; the local controls and docs are not.
        journal = self.journal if self.journal is not None and self.journal.enabled and _journaled(path) else None
        copy = None
        if journal is not None and method in BODY_METHODS:
            copy = BodyCopy(headers.get("content-type", "").split(";")[0].strip().lower())
            receive = self._tee(receive, copy)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
                warning = state.get(WARNING_STATE)  # add_warning: ignored members, unknown paths, new sandbox
                if warning:
                    message["headers"].append((WARNING_HEADER, warning.encode("latin-1", "replace")))
                if journal is not None:  # before the client can see the answer, so a test asking next finds it
                    journal.record(request_id, began, method, path, scope["query_string"], scope["headers"],
                                   state.get("tenant"), headers, copy, status, warning or "")
            await send(message)

        bound = logs.bind_request(state)  # what is logged inside the request carries its request_id and tenant
        try:
            try:
                self._check_host(headers)
                if path.startswith(CONTROLS_PREFIX):
                    self._check_local_control(scope, headers)
                elif needs_aep_headers(path):
                    tenant = state["tenant"] = await self._check_headers(headers)
                    if self.sandboxes is not None and not self.sandboxes.known(tenant):
                        await self._first_use(state, tenant)
                receive = self._limit_body(scope, headers, receive)
                if not path.startswith(CONTROLS_PREFIX):
                    tenant = state.get("tenant")
                    await self._inject_faults(method, path, tenant.org if tenant else None,
                                              tenant.sandbox if tenant else None)
            except (GatewayError, InjectedFault, BodyTooLarge, DomainError) as exc:
                await self.render_error(scope, exc, request_id)(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            return  # the client went away mid-request: there is no one to answer
        except Exception as exc:  # noqa: BLE001 - the one place an error nothing else handled is answered
            response = self.render_error(scope, exc, request_id)  # logs it once (api/errors.py)
            if not status:
                await response(scope, receive, send_with_id)
            # Once the answer has started (a download cut half-way) there is nothing left to send: the
            # connection ends short, which a client sees as an incomplete body.
        finally:
            if self.request_metrics is not None:  # GET /_upstack/metrics: by route template, not raw path
                self.request_metrics.observe(scope, status, time.perf_counter() - began)
            logs.access(method, path, status or "-", began, request_id, state.get("tenant"))
            logs.unbind_request(bound)

    def _tee(self, receive: Receive, entry: BodyCopy) -> Receive:
        """Copy what the body brings for the journal, up to the journal's bound (uploads: counted only)."""
        keep = 0 if entry.content_type == "application/octet-stream" else self.journal.max_body_bytes

        async def teed() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                entry.body_size += len(chunk)
                room = keep - len(entry.body)
                if room > 0 and chunk:
                    entry.body += chunk[:room]
                if len(chunk) > max(room, 0):
                    entry.body_truncated = entry.body_truncated or bool(keep)
            return message

        return teed

    # -- checks, in the order they answer ---------------------------------------------------------------

    def _check_host(self, headers: dict[str, str]) -> None:
        host = headers.get("host", "")
        if not self.hosts.allows(host):
            raise GatewayError(403, "403025", f"Host '{host[:100]}' is not served here: add it to "
                               "UPSTACK_ALLOWED_HOSTS to reach this server by that name.")

    def _check_local_control(self, scope: Scope, headers: dict[str, str]) -> None:
        """CONTRACT §10: a web page must not reach the local controls, and strict mode guards them."""
        origin = headers.get("origin")
        if origin is not None and not self.hosts.same_origin(origin, headers.get("host", "")):
            raise GatewayError(403, "403026", "Cross-site requests to /_upstack are refused (Origin "
                               f"'{origin[:100]}' is not this server).")
        path = scope["path"]
        console = path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
        if scope["method"] != "GET" and scope["method"] != "HEAD":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            if console:
                # A console form: only from a page of this server. A browser always sends Origin with a POST
                # (checked to be this server above); a request without one is no console page's.
                fetch_site = headers.get("sec-fetch-site")
                if origin is None or (fetch_site is not None and fetch_site != "same-origin"):
                    raise GatewayError(403, "403026", "Console forms are accepted from the console's own "
                                       "pages only (same Origin).")
            if (ctype in SIMPLE_BODY_TYPES and not (console and ctype == FORM_TYPE)) or (has_body and not ctype):
                raise UnsupportedMediaType("Local controls take JSON bodies only: send Content-Type: "
                                           f"application/json (got '{ctype or 'none'}').")
        if self.settings.auth == "strict" and path.rstrip("/") not in ("/_upstack/health", CONSOLE_LOGIN):
            if self.admin_token is None:
                raise GatewayError(403, "403027", "Local controls are off in strict auth mode until "
                                   "UPSTACK_ADMIN_TOKEN is set.")
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(),
                                                                        self.admin_token.encode()):
                if not (console and _has_console_cookie(headers.get("cookie", ""), self.admin_token)):
                    raise GatewayError(401, "401013", "Local controls need Authorization: Bearer <admin token> "
                                       "in strict auth mode" + (f" (or sign in at {CONSOLE_LOGIN})." if console
                                                                else "."))

    async def _check_headers(self, headers: dict[str, str]) -> Tenant:
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
        for name, value in (("x-gw-ims-org-id", org), ("x-sandbox-name", sandbox)):
            if len(value) > 255 or _CONTROL_CHARS.search(value):
                raise Invalid(f"Header {name} must be at most 255 characters without control characters.")
        return Tenant(org=org, sandbox=sandbox)

    async def _first_use(self, state: dict, tenant: Tenant) -> None:
        """The first request to a sandbox in this process: a sandbox other than `prod` that did not exist is
        created and named in the warning header, or refused in strict mode (services/sandboxes.py)."""
        strict = self.settings.strict_members and tenant.sandbox != DEFAULT_SANDBOX
        new = await anyio.to_thread.run_sync(partial(self.sandboxes.first_use, tenant, create=not strict))
        if new and tenant.sandbox != DEFAULT_SANDBOX:
            if strict:
                raise Invalid(refusal(tenant))
            add_warning(state, created_warning(tenant))

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

    async def _inject_faults(self, method: str, path: str, org: str | None, sandbox: str | None) -> None:
        book = self.faults
        if book is None:
            return
        rules = book.cached() if book.is_fresh() else await anyio.to_thread.run_sync(book.current)
        for rule in rules:
            if not fault_matches(rule, method, path, org, sandbox):
                continue
            if rule.times is not None:
                rule = await anyio.to_thread.run_sync(book.take, rule)
                if rule is None:
                    continue  # used up meanwhile: another rule may still match
            if rule.latencyMs:
                await anyio.sleep(rule.latencyMs / 1000)
            if rule.status:
                raise InjectedFault(rule.status, rule.message)
            return


def console_session(admin_token: str) -> str:
    """The console's session cookie value in strict mode: derived from the admin token (which it never holds
    itself), so it is valid exactly as long as that token is configured."""
    return hmac.new(admin_token.encode(), b"upstack console session", hashlib.sha256).hexdigest()


def _has_console_cookie(cookie_header: str, admin_token: str) -> bool:
    expected = console_session(admin_token).encode()
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == CONSOLE_COOKIE and secrets.compare_digest(value.strip().encode(), expected):
            return True
    return False


class HostPolicy:
    """Which Host names the server answers (DNS rebinding, CONTRACT §10).

    A rebinding attack needs a domain name the attacker controls, so IP literals are always safe, as are
    `localhost` and `*.localhost` (browsers resolve those to loopback themselves) and Adobe's own API hosts
    (a developer may point them at upstack in /etc/hosts; no attacker can). Other names must be listed
    (UPSTACK_ALLOWED_HOSTS, or the configured listen host when it is a name).
    """

    ALWAYS = frozenset({"localhost", "platform.adobe.io", "ims-na1.adobelogin.com"})

    def __init__(self, listen_host: str, allowed: str):
        names = {n.strip().lower() for n in allowed.split(",") if n.strip()}
        if listen_host and not _is_ip(listen_host):
            names.add(listen_host.lower())
        self.any = "*" in names
        self.names = names
        self._seen: dict[str, bool] = {}

    def allows(self, host_header: str) -> bool:
        known = self._seen.get(host_header)
        if known is None:
            known = self._allows(host_header)
            if len(self._seen) < 1024:  # clients use a handful of names; a flood of new ones is just not cached
                self._seen[host_header] = known
        return known

    def _allows(self, host_header: str) -> bool:
        if self.any or not host_header:  # no Host at all is HTTP/1.0 from a script, never a browser
            return True
        name = _host_name(host_header)
        if name is None:
            return False
        if _is_ip(name) or name in self.ALWAYS or name.endswith(".localhost"):
            return True
        return any(fnmatchcase(name, pattern) for pattern in self.names)

    def same_origin(self, origin: str, host_header: str) -> bool:
        """Whether a browser's Origin is this server as the request addressed it."""
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file://) and anything odd
        return parts.netloc.lower() == host_header.strip().lower() and self.allows(parts.netloc)


def _host_name(host_header: str) -> str | None:
    value = host_header.strip().lower()
    if value.startswith("["):  # [::1]:8080
        end = value.find("]")
        return value[1:end] if end > 0 else None
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


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
