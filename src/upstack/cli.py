"""The `upstack` command: serve | worker | db upgrade | seed."""

from __future__ import annotations

import gc
import logging
import re
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer

from upstack import __version__
from upstack.config import Settings

app = typer.Typer(help="upstack: a local Adobe Experience Platform export loop (Catalog, Batch Ingestion, "
                       "Data Access, merge policies, Profile export jobs). Settings come from UPSTACK_* "
                       "environment variables; flags override them.", no_args_is_help=True,
                  add_completion=False)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
log = logging.getLogger("upstack")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"upstack {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    # Only for --version: the app's own help text stays the one given to typer.Typer above.
    pass


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Root of the SQLite file and the lake "
                                              "(UPSTACK_DATA_DIR, default ./.upstack).")]
DbUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (UPSTACK_DATABASE_URL); "
                                            "default SQLite in the data dir.")]


FLAGS = {"worker_lanes": "--lanes"}  # settings whose flag is not --<setting-name>


def _settings(**overrides) -> Settings:
    """Settings from the environment with the given flags on top, validated as one (a flag gets the same
    checks as its UPSTACK_* variable). A bad value stops the command with one line naming what is allowed."""
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for problem in exc.errors():
            name = ".".join(str(p) for p in problem["loc"])
            flag = FLAGS.get(name, f"--{name.replace('_', '-')}") if name in overrides else None
            where = f"{flag} / UPSTACK_{name.upper()}" if flag else f"UPSTACK_{name.upper()}"
            typer.echo(f"upstack: invalid setting {where}={problem.get('input')!r}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


def _shown_url(url: str) -> str:
    """The database URL as a person may read it: the password replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # unparsable: hide whatever sits between "user:" and "@"
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"upstack: {message}", err=True)
    return typer.Exit(2)


def _data_dir_ready(data_dir: Path) -> None:
    """Create the data dir and prove it writable, or stop with one line: a data dir under a file or on a
    read-only disk would otherwise fail later, in a worker or a request, as a traceback."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        raise _fail(f"data dir {data_dir} is not usable: {exc.strerror or exc}") from None


def _migrate(url: str, revision: str = "head") -> None:
    """Apply migrations; a database that cannot be reached, opened or named stops the command with one line
    (which URL, password hidden, and why) and exit code 2. A failing migration still shows its traceback."""
    from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

    from upstack.storage.migrate import upgrade

    try:
        upgrade(url, revision)
    except (OperationalError, InterfaceError) as exc:
        text = str(exc.orig if exc.orig is not None else exc).strip()
        reason = text.splitlines()[0] if text else type(exc.orig or exc).__name__
        raise _fail(f"cannot connect to the database {_shown_url(url)}: {reason}") from None
    except ArgumentError as exc:
        raise _fail(f"invalid database URL {_shown_url(url)}: {str(exc).splitlines()[0]}") from None


def _prepare(settings: Settings):
    from upstack import logs
    from upstack.context import AppContext

    logs.setup(settings.log_level, settings.log_json)
    _data_dir_ready(settings.data_dir)
    _migrate(settings.resolved_database_url)
    return AppContext.create(settings)


def start_workers(ctx, count: int, lanes: tuple[str, ...]) -> list:
    """`count` worker threads for the user lane and one for the background lane, of the `lanes` asked for (none
    when `count` is 0), plus the sweep of what crashed runs left (every process that writes to the lake runs one,
    API-only servers included: their uploads leave temp files too)."""
    from upstack.jobs.lanes import BACKGROUND, USER
    from upstack.worker.loop import Worker
    from upstack.worker.sweep import Sweeper

    threads = {USER: count, BACKGROUND: min(count, 1)}
    workers = [Worker(ctx, lanes=(lane,)) for lane in lanes for _ in range(threads[lane])]
    for w in workers:
        w.start()
    return [*workers, Sweeper(ctx, ctx.settings.sweep_interval_seconds).start()]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (UPSTACK_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (UPSTACK_PORT, default 8080).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Embedded user-lane worker threads, "
                                                 "plus one background-lane thread (UPSTACK_WORKERS, default 1; "
                                                 "0 = API only; lanes: UPSTACK_WORKER_LANES).")] = None,
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
    pool = start_workers(ctx, settings.workers, settings.lanes)
    log.info("upstack serving", extra={
        "url": f"http://{settings.host}:{settings.port}", "data_dir": str(settings.data_dir),
        "database": ctx.db.engine.url.render_as_string(hide_password=True), "workers": settings.workers,
        "lanes": settings.worker_lanes, "auth": settings.auth})
    app_ = create_app(settings, ctx)
    # Everything imported and built so far lives as long as the process: moved out of the collector's sight, a
    # full collection walks only what requests create (measured: p99 of GET /export/jobs/{id} 2-3x lower).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app_, host=settings.host, port=settings.port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=5)
    finally:
        for w in pool:
            w.stop()
        ctx.db.dispose()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="User-lane worker threads in this process; the "
                                             "background lane runs one.")] = 1,
    lanes: Annotated[str | None, typer.Option("--lanes", help="Job lanes this process serves: user, background "
                                              "or both, comma-separated (UPSTACK_WORKER_LANES, default "
                                              "user,background).")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Run workers only (no API): the production shape, several processes against one PostgreSQL and one lake."""
    settings = _settings(worker_lanes=lanes, data_dir=data_dir, database_url=database_url)
    ctx = _prepare(settings)
    pool = start_workers(ctx, concurrency, settings.lanes)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("upstack worker running", extra={
        "threads": len(pool) - 1, "lanes": settings.worker_lanes,
        "database": ctx.db.engine.url.render_as_string(hide_password=True)})
    stop.wait()
    log.info("upstack worker stopping: running jobs finish or are re-claimed after their lease")
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
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _data_dir_ready(settings.data_dir)
    _migrate(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}: {settings.resolved_database_url.split('@')[-1]}")


@app.command()
def seed(
    profiles: Annotated[int, typer.Option(min=0, help="People to generate.")] = 1000,
    fragments_per_profile: Annotated[int, typer.Option(min=1, help="Profile records (fragments) per person; "
                                                       "fragment j goes to profile dataset j % DATASETS.")] = 2,
    datasets: Annotated[int, typer.Option(min=1, help="Profile-enabled profile datasets to spread fragments "
                                          "over (an event dataset and a profile__union export dataset are "
                                          "created too).")] = 2,
    linked_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of people whose fragments share "
                                                "one ECID, so the pdg graph stitches them into one profile; "
                                                "the others' fragments stand alone.")] = 0.8,
    cross_link_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of fragments carrying an "
                                                    "extra ECID of another random fragment, joining two "
                                                    "profiles under pdg (a high share builds components over "
                                                    "the 50-identity limit).")] = 0.01,
    events_per_profile: Annotated[int, typer.Option(min=0, help="Experience events per person (ECID primary, "
                                                    "in the event dataset).")] = 3,
    custom_timestamp_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of fragments with "
                                                          "extSourceSystemAudit.lastUpdatedDate set (the "
                                                          "others merge by ingestion time).")] = 0.2,
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same "
                                            "records, whatever the batch size.")] = 42,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per batch: each batch is one Parquet "
                                            "upload.")] = 250_000,
    org: Annotated[str, typer.Option(help="IMS org the data belongs to (x-gw-ims-org-id).")] = "MYORG@AdobeOrg",
    sandbox: Annotated[str, typer.Option(help="Sandbox (x-sandbox-name).")] = "prod",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    process: Annotated[bool, typer.Option("--process/--no-process", help="Ingest with embedded workers "
                                          "(default), or leave the ingest jobs to a running server's "
                                          "workers, which must share this database and data dir.")] = True,
    workers: Annotated[int, typer.Option(min=1, help="Embedded ingest workers (with --process).")] = 1,
    timeout: Annotated[float | None, typer.Option(help="Give up (exit 1) if ingestion has not finished "
                                                  "after this many seconds.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (progress "
                                              "goes to stderr).")] = False,
) -> None:
    """Generate realistic XDM profiles and events and load them through the real ingestion path.

    Creates the datasets, one batch per generated Parquet file (upload + COMPLETE), waits until every batch is ingested, and prints the dataset ids and the profile counts an export must produce under the none and pdg identity graphs.
    """
    import os

    import orjson

    from upstack.seed.generate import SeedSpec
    from upstack.seed.load import seed as run_seed
    from upstack.tenant import Tenant

    try:
        spec = SeedSpec(profiles=profiles, fragments_per_profile=fragments_per_profile, datasets=datasets,
                        linked_share=linked_share, cross_link_share=cross_link_share,
                        events_per_profile=events_per_profile, custom_timestamp_share=custom_timestamp_share,
                        seed=seed_value, batch_size=batch_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    # Per-job log lines would tear the progress bar; UPSTACK_LOG_LEVEL still wins when set.
    quiet = None if os.environ.get("UPSTACK_LOG_LEVEL") else "WARNING"
    settings = _settings(data_dir=data_dir, database_url=database_url, log_level=quiet)
    ctx = _prepare(settings)
    try:
        result = run_seed(ctx, Tenant(org, sandbox), spec, process=process, workers=workers, progress=True,
                          timeout_s=timeout)
    except TimeoutError as exc:
        typer.echo(f"seed: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.db.dispose()
    summary = result.as_dict()
    if json_output:
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        expected = result.expected or {}
        typer.echo(f"org {result.org}, sandbox {result.sandbox}")
        typer.echo(f"profile datasets: {', '.join(result.profile_datasets)}")
        typer.echo(f"event dataset:    {result.event_dataset}")
        typer.echo(f"export dataset:   {result.export_dataset} (profile__union)")
        typer.echo(f"records: {result.records_written:,} ingested, {result.records_failed:,} failed, "
                   f"{len(result.batches)} batches in {result.seconds:.1f} s "
                   f"({result.ingest_busy_records_per_s:,.0f} records/s while ingesting)")
        if expected:
            typer.echo(f"an export must give: {expected['none']:,} profiles under 'none', {expected['pdg']:,} "
                       f"under 'pdg' ({expected['pdg_excluded_components']} components over the identity limit)")
    if result.failed_batches or result.records_failed:
        typer.echo(f"seed: {len(result.failed_batches)} batch(es) failed, {result.records_failed} record(s) "
                   "rejected", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
