"""The `upstack` command: serve | worker | db upgrade | seed."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from upstack.config import Settings

app = typer.Typer(help="upstack: a local Adobe Experience Platform export loop (Catalog, Batch Ingestion, "
                       "Data Access, merge policies, Profile export jobs). Settings come from UPSTACK_* "
                       "environment variables; flags override them.", no_args_is_help=True,
                  add_completion=False)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
log = logging.getLogger("upstack")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Root of the SQLite file and the lake "
                                              "(UPSTACK_DATA_DIR, default ./.upstack).")]
DbUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (UPSTACK_DATABASE_URL); "
                                            "default SQLite in the data dir.")]


def _settings(**overrides) -> Settings:
    base = Settings()
    return base.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _prepare(settings: Settings):
    from upstack import logs
    from upstack.api.context import AppContext
    from upstack.storage.migrate import upgrade

    logs.setup(settings.log_level, settings.log_json)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    return AppContext.create(settings)


def start_workers(ctx, count: int) -> list:
    from upstack.worker.loop import Worker

    workers = [Worker(ctx) for _ in range(count)]
    for w in workers:
        w.start()
    return workers


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (UPSTACK_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (UPSTACK_PORT, default 8080).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Embedded worker threads "
                                                 "(UPSTACK_WORKERS, default 1; 0 = API only).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    auth: Annotated[str | None, typer.Option(help="permissive or strict (UPSTACK_AUTH).")] = None,
) -> None:
    """Migrate the database, then serve the API with embedded workers."""
    import uvicorn

    from upstack.api.app import create_app

    settings = _settings(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url,
                         auth=auth)
    ctx = _prepare(settings)
    pool = start_workers(ctx, settings.workers)
    log.info("upstack serving on http://%s:%s (database %s, data dir %s, %d worker(s), auth %s)",
             settings.host, settings.port, ctx.db.engine.url.render_as_string(hide_password=True),
             settings.data_dir, settings.workers, settings.auth)
    try:
        uvicorn.run(create_app(settings, ctx), host=settings.host, port=settings.port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=5)
    finally:
        for w in pool:
            w.stop()
        ctx.db.dispose()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker threads in this process.")] = 1,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Run workers only (no API): the production shape, several processes against one PostgreSQL and one lake."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    ctx = _prepare(settings)
    pool = start_workers(ctx, concurrency)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("upstack worker: %d thread(s) on %s", concurrency, ctx.db.engine.url.render_as_string(hide_password=True))
    stop.wait()
    log.info("upstack worker: stopping (running jobs finish or are re-claimed after their lease)")
    for w in pool:
        w.stop()
    ctx.db.dispose()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Apply Alembic migrations to the configured database."""
    from upstack.storage.migrate import upgrade

    settings = _settings(data_dir=data_dir, database_url=database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}: {settings.resolved_database_url.split('@')[-1]}")


if __name__ == "__main__":
    app()
