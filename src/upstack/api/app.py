"""The application factory: gateway middleware, one error renderer, one router per AEP service."""

from __future__ import annotations

import importlib
import inspect

from fastapi import FastAPI

from upstack import __version__
from upstack.api import docs, errors
from upstack.api.fastpath import FastPaths
from upstack.api.gateway import GatewayMiddleware
from upstack.api.responses import Json
from upstack.config import Settings
from upstack.context import AppContext
from upstack.services import controls, metrics, sandboxes
from upstack.services.ims import TokenChecker
from upstack.services.journal import Journal

# Routers in the order a reader meets the export loop.
ROUTERS = ("ims", "admin", "catalog", "ingestion", "data_access", "merge_policies", "export_jobs", "entities",
           "segment_definitions", "console")


def _fault_book(ctx: AppContext) -> controls.FaultBook:
    def load():
        with ctx.db.read_session() as s:
            return controls._rules(s, controls.FAULTS_ROW, controls.FaultRule)

    def take(fault_id: str):
        with ctx.db.session() as s:
            return controls.take_fault(s, fault_id)

    return controls.FaultBook(load, take)


# FastAPI 0.16x asks OpenTelemetry's global providers on every request whether telemetry is on (5% of the GET
# route's time in py-spy). upstack configures no provider, so it says so once; older FastAPI has no such option.
_NO_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False}}
                 if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


def create_app(settings: Settings | None = None, ctx: AppContext | None = None,
               routers: tuple[str, ...] | None = None) -> FastAPI:
    settings = settings or (ctx.settings if ctx else Settings())
    ctx = ctx or AppContext.create(settings)
    app = FastAPI(title="upstack", version=__version__, default_response_class=Json, **_NO_TELEMETRY,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,  # api/docs.py serves them
                  description="Local Adobe Experience Platform export-loop APIs (Catalog, Batch Ingestion, "
                              "Data Access, merge policies, Profile export jobs, Profile access, segment definitions).")
    app.state.ctx = ctx
    errors.install(app)
    docs.install(app, settings)
    routes = []  # every route with its full template, for the requests metric's labels
    for name in routers or ROUTERS:
        module = importlib.import_module(f"upstack.api.routers.{name}")
        app.include_router(module.router)
        routes.extend(module.router.routes)
    app.add_middleware(FastPaths, db=ctx.db)  # inside the gateway: runs after its checks
    app.state.token_checker = TokenChecker(ctx.db, settings)  # the local reset empties its cache
    app.state.sandboxes = sandboxes.SandboxBook(ctx.db)  # sandboxes seen to exist; the local reset forgets them
    app.state.faults = _fault_book(ctx)  # the controls routes invalidate it: a change holds for the next request
    # The request journal of this process (GET /_upstack/requests): the gateway fills it, the admin router reads it.
    app.state.journal = Journal(settings.journal_max_requests, settings.journal_max_body_bytes,
                                settings.journal_max_bytes)
    # Requests this process answered, by route template (GET /_upstack/metrics): the gateway counts, a scrape reads.
    app.state.request_metrics = metrics.RequestMetrics()
    app.state.request_metrics.set_routes([*routes, *app.router.routes])
    app.state.metrics_registry = metrics.registry(ctx.db, app.state.request_metrics,
                                                  stale_after_ms=int(3 * settings.worker_lease_seconds * 1000))
    app.add_middleware(GatewayMiddleware, settings=settings, token_checker=app.state.token_checker,
                       render_error=errors.render_for_scope, faults=app.state.faults, journal=app.state.journal,
                       request_metrics=app.state.request_metrics, sandboxes=app.state.sandboxes)
    return app
