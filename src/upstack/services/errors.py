"""The one hierarchy of domain errors; api/errors.py renders each in the AEP shape of its service family."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    title = "BadRequestError"
    code: str | None = None  # UPS error code (Profile family); derived from status when None

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class Invalid(DomainError):
    status = 400
    title = "BadRequestError"
    code = "UPAPI-113434-400"


class MalformedJson(DomainError):
    status = 400
    title = "BadRequestError"
    code = "UPLIB-101206-500"


class NotFound(DomainError):
    status = 404
    title = "NotFoundError"
    code = "UPAPI-113430-404"


class Conflict(DomainError):
    status = 409
    title = "ConflictError"
    code = "UPAPI-113435-409"


class Unprocessable(DomainError):
    status = 422
    title = "UnprocessableEntityError"
    code = "UPAPI-113437-422"


class RequestTimeout(DomainError):
    status = 408
    title = "RequestTimeoutError"
    code = "UPAPI-113408-408"


class TooLarge(DomainError):
    status = 413
    title = "PayloadTooLargeError"
    code = "UPAPI-113436-413"


class UnsupportedMediaType(DomainError):
    status = 415
    title = "UnsupportedMediaTypeError"
    code = "UPAPI-113438-415"


class GatewayError(Exception):
    """Header/auth failures: rendered as {"error_code","message"} whatever the service."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


class Unavailable(DomainError):
    """The database cannot be reached right now; the request may be retried (503 + Retry-After)."""

    status = 503
    title = "ServiceUnavailableError"
    code = "UPAPI-113503-503"


class InsufficientStorage(DomainError):
    """The data directory is full; nothing of the request was kept (507)."""

    status = 507
    title = "InsufficientStorageError"
    code = "UPAPI-113507-507"
