"""The one error renderer: every failure becomes the AEP error body of its service family (CONTRACT §2)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from upstack.api.gateway import BodyTooLarge, InjectedFault
from upstack.api.responses import Json
from upstack.lake import is_disk_full
from upstack.services.errors import (
    DomainError,
    GatewayError,
    InsufficientStorage,
    Invalid,
    MalformedJson,
    NotFound,
    TooLarge,
    Unavailable,
)
from upstack.storage import dialect

log = logging.getLogger("upstack.api")

UPS_CODES = {400: "UPAPI-113434-400", 404: "UPAPI-113430-404", 405: "UPAPI-113439-405", 408: "UPAPI-113408-408",
             409: "UPAPI-113435-409", 413: "UPAPI-113436-413", 415: "UPAPI-113438-415", 422: "UPAPI-113437-422",
             429: "UPAPI-113429-429", 500: "UPAPI-113500-500", 503: "UPAPI-113503-503", 507: "UPAPI-113507-507"}
TITLES = {400: "BadRequestError", 404: "NotFoundError", 405: "MethodNotAllowedError", 408: "RequestTimeoutError",
          409: "ConflictError", 413: "PayloadTooLargeError", 415: "UnsupportedMediaTypeError",
          422: "UnprocessableEntityError", 429: "TooManyRequestsError", 500: "InternalServerError",
          503: "ServiceUnavailableError", 507: "InsufficientStorageError"}
RETRY_AFTER_SECONDS = "1"


def family(path: str) -> str:
    return "ups" if path.startswith("/data/core/ups") else "catalog"


def body_for(path: str, status: int, title: str, detail: str, request_id: str, code: str | None = None) -> dict:
    if family(path) == "ups":
        code = code or UPS_CODES.get(status, f"UPAPI-113{status}-{status}")
        return {"requestId": request_id, "type": f"https://ns.adobe.com/aep/errors/{code}", "title": title,
                "status": status, "errors": {str(status): [{"code": code, "message": detail}]}}
    body = {"type": "/placeholder/type/uri", "status": status, "title": title, "detail": detail}
    if status >= 500:
        body["requestId"] = request_id
    return body


def classify(exc: BaseException) -> DomainError | None:
    """Failures of the machine rather than of the request: a full disk is 507, an unreachable or locked
    database 503. Both are answered in the family's shape and pass once the cause is gone."""
    if is_disk_full(exc) or dialect.is_disk_full(exc):
        return InsufficientStorage("The server's data directory or database is out of space; nothing of this "
                                   "request was kept. Free some space and retry.")
    if dialect.is_unavailable(exc):
        return Unavailable("The database is not reachable right now; retry shortly.")
    return None


def render(path: str, exc: Exception, request_id: str, method: str = "") -> Json:
    if isinstance(exc, GatewayError):
        return Json({"error_code": exc.error_code, "message": exc.message}, status_code=exc.status)
    if isinstance(exc, BodyTooLarge):
        exc = TooLarge(str(exc))
    if isinstance(exc, InjectedFault):
        injected = DomainError(exc.message, status=exc.status, code=UPS_CODES.get(exc.status))
        injected.title = TITLES.get(exc.status, "InjectedFault")
        exc = injected
    if not isinstance(exc, DomainError):
        classified = classify(exc)
        if classified is not None:
            # One line, no traceback: the cause is outside the request and says enough by its type.
            log.warning("machine failure answered", extra={
                "request_id": request_id, "method": method, "path": path, "status": classified.status,
                "exc_type": type(exc).__name__})
            exc = classified
    if isinstance(exc, DomainError):
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if exc.status == 503 else None
        body = body_for(path, exc.status, exc.title, exc.detail, request_id, exc.code)
        return Json(body, status_code=exc.status, headers=headers)
    # The one place an unexpected error is logged: once, with its request id, as fields (logs.py bounds the
    # traceback, drops local variables and redacts secrets, on its own thread).
    log.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "method": method, "path": path})
    detail = f"Internal error while serving {path}: {type(exc).__name__}. Request id {request_id}."
    return Json(body_for(path, 500, "InternalServerError", detail, request_id), status_code=500)


def render_for_scope(scope, exc: Exception, request_id: str) -> Json:
    return render(scope["path"], exc, request_id, scope.get("method", ""))


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def dotted(loc) -> str:
    """('filter', 'segments', 0, 'segmentId') -> filter.segments[0].segmentId (FastAPI's leading 'body' dropped)."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p != "body" or out:
            out += f".{p}" if out else str(p)
    return out


def _validation_message(exc: RequestValidationError | ValidationError) -> DomainError:
    """One 400 for the first errors. A check of ours (schemas/: a PydanticCustomError of type `upstack_*`) says
    its message as is, `{loc}` filled with the member's path; pydantic's own ones are `path: message`."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return MalformedJson("Request body is not valid JSON")
    ours = [str(e.get("msg")).replace("{loc}", dotted(e.get("loc", ())) or "body")
            for e in errors if str(e.get("type", "")).startswith("upstack_")]
    if ours:
        return Invalid(" ".join(dict.fromkeys(ours[:5])))
    parts = []
    for e in errors[:5]:
        loc = dotted(e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return Invalid("Invalid request: " + "; ".join(parts))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return render(request.url.path, exc, _request_id(request))

    @app.exception_handler(GatewayError)
    async def _gateway(request: Request, exc: GatewayError):
        return render(request.url.path, exc, _request_id(request))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return render(request.url.path, exc, _request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return render(request.url.path, _validation_message(exc), _request_id(request))

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError):
        # A body a route validated with a schemas/ model itself.
        return render(request.url.path, _validation_message(exc), _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        status = exc.status_code
        if status == 404:
            err: DomainError = NotFound(f"No route for {request.method} {request.url.path}")
        else:
            err = DomainError(str(exc.detail), status=status, code=UPS_CODES.get(status))
            err.title = TITLES.get(status, "Error")
        return render(request.url.path, err, _request_id(request))
    # No handler for Exception here: Starlette would answer and then re-raise it, and the server would log
    # it a second time. Unexpected errors reach the gateway middleware, which renders and logs them once.
