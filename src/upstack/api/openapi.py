"""What a route declares to /openapi.json beyond its models: the statuses it really answers, each with the error
body of its family (api/errors.body_for, CONTRACT §2), and the query parameters a route reads itself.

    @router.get("/{job_id}", response_model=None, responses=answers(404, *GATEWAY, ok={200: {"model": Job}}))
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from upstack.schemas.errors import CatalogError, GatewayErrorBody, UpsError

GATEWAY = (401, 403, 503)  # every AEP operation may answer these (the gateway, before the route)
SAID = {400: "Malformed or invalid request (a message naming the member).",
        404: "No such object in this sandbox.", 409: "Conflicts with the object's current state.",
        413: "The body is larger than UPSTACK_MAX_BODY_BYTES.",
        408: "The body did not arrive within UPSTACK_REQUEST_IDLE_TIMEOUT_SECONDS.",
        415: "The body is not JSON (application/json, text/plain or no Content-Type are).",
        401: "Missing or invalid token (strict auth).", 403: "Missing gateway headers or api key.",
        503: "The database is not reachable; retry.", 507: "The server is out of disk space."}


def answers(*codes: int, ok: dict | None = None, error: type[BaseModel] = UpsError,
            said: dict[int, str] | None = None) -> dict[int | str, dict]:
    """The statuses an operation really answers: `error` (the family's body) for each code, the gateway's own
    body for 401 and 403, and the successful answers `ok`. `said` overrides a code's description."""
    text = SAID | (said or {})
    out: dict[int | str, dict] = {code: {"description": text[code],
                                         "model": GatewayErrorBody if code in (401, 403) else error}
                                  for code in codes}
    out.update(ok or {})
    return out


def catalog_answers(*codes: int, ok: dict | None = None, said: dict[int, str] | None = None) -> dict[int | str, dict]:
    """`answers` for the /data/foundation families (Catalog, Batch Ingestion, Data Access)."""
    return answers(*codes, ok=ok, error=CatalogError, said=said)


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    """A query parameter a route reads from request.query_params itself, for `openapi_extra={"parameters": [...]}`."""
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def head_answers(*codes: int, ok: dict | None = None, said: dict[int, str] | None = None) -> dict[int | str, dict]:
    """`answers` of a HEAD operation: the same statuses and headers, never a body."""
    return {code: {k: v for k, v in answer.items() if k != "model"}
            for code, answer in catalog_answers(*codes, ok=ok, said=said).items()}
