"""The floor for `GET /export/jobs/{id}`: a bare Starlette route reading the same row with sqlite3.

Served by uvicorn exactly like upstack (one process, same loop and HTTP parser), against the same SQLite
file (``BENCH_DB``). No gateway checks, no ORM, no validation: the difference is what the framework and
upstack's layers cost.
"""

from __future__ import annotations

import os
import sqlite3

import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

_db = sqlite3.connect(os.environ.get("BENCH_DB", ":memory:"), check_same_thread=False)
_db.row_factory = sqlite3.Row


async def get_job(request):
    row = _db.execute("SELECT * FROM export_jobs WHERE id = ?", (int(request.path_params["job_id"]),)).fetchone()
    if row is None:
        return Response(b'{"status":404}', status_code=404, media_type="application/json")
    body = dict(row)
    for key in ("request", "metrics", "errors", "compute_gateway", "destination_batches"):
        if isinstance(body.get(key), str):
            body[key] = orjson.loads(body[key])
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/jobs/{job_id}", get_job)])
