"""The `upstack` command line: every command and option explains itself, and `db upgrade` makes the schema."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from upstack.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def command(*path: str):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def test_top_level_help_lists_the_commands():
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for name in ("serve", "worker", "db", "seed"):
        assert name in result.output
    assert "UPSTACK_" in result.output


def test_no_arguments_shows_help():
    result = runner.invoke(app, [], env=WIDE)
    assert "serve" in result.output and "worker" in result.output


@pytest.mark.parametrize("path", [("serve",), ("worker",), ("db", "upgrade"), ("seed",)])
def test_every_option_is_explained(path):
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    cmd = command(*path)
    assert cmd.help, f"upstack {' '.join(path)} has no description"
    options = [p for p in cmd.params if p.opts[0].startswith("--")]
    assert options
    for param in options:
        assert param.help, f"upstack {' '.join(path)} {param.opts[0]} has no help text"
        assert param.opts[0] in result.output
        assert param.help.split()[0] in result.output


def test_serve_options_name_their_settings():
    help_text = runner.invoke(app, ["serve", "--help"], env=WIDE).output
    for env in ("UPSTACK_HOST", "UPSTACK_PORT", "UPSTACK_WORKERS", "UPSTACK_DATA_DIR", "UPSTACK_DATABASE_URL",
                "UPSTACK_AUTH"):
        assert env in help_text


def test_db_upgrade_creates_the_sqlite_schema(tmp_path, monkeypatch):
    monkeypatch.delenv("UPSTACK_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    db_file = data_dir / "upstack.db"
    assert db_file.is_file()
    assert "database at head" in result.output
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "jobs", "workers", "datasets", "batches"} <= tables

    again = runner.invoke(app, ["db", "upgrade", "--data-dir", str(data_dir)])
    assert again.exit_code == 0, again.output


def test_invalid_option_values_are_refused():
    result = runner.invoke(app, ["serve", "--workers", "-1"], env=WIDE)
    assert result.exit_code != 0
    result = runner.invoke(app, ["worker", "--concurrency", "0"], env=WIDE)
    assert result.exit_code != 0


def test_worker_lanes_are_validated_and_the_flag_named():
    result = runner.invoke(app, ["worker", "--lanes", "user,nightly"], env=WIDE)
    assert result.exit_code == 2
    assert "invalid setting --lanes / UPSTACK_WORKER_LANES='user,nightly'" in result.output
    assert "user, background" in result.output


@pytest.mark.live
def test_serve_with_one_worker_runs_one_user_and_one_background_thread(tmp_path):
    """The embedded default stays one process: `serve --workers 1` registers two threads, one per lane."""
    from tests.live.server import health, server_env, start_server

    proc, base = start_server("upstack-serve-lanes", tmp_path / "data", server_env(), "--workers", "1")
    try:
        rows = [w for w in health(base)["workers"] if w["pid"] == proc.pid]
    finally:
        proc.stop()
    assert sorted(w["lanes"] for w in rows) == [["background"], ["user"]]
    assert all(w["alive"] for w in rows)


def test_version_prints_the_package_version():
    import upstack

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"upstack {upstack.__version__}"


UNREACHABLE = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/nothing"


def test_db_upgrade_with_an_unreachable_database_says_so_in_one_line(tmp_path):
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path), "--database-url", UNREACHABLE])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("upstack: cannot connect to the database "
                                    "postgresql+psycopg://someone:***@127.0.0.1:1/nothing: ")
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_db_upgrade_with_a_data_dir_under_a_file_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("UPSTACK_DATABASE_URL", raising=False)
    (tmp_path / "file").write_text("not a directory")
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path / "file" / "data")])
    assert result.exit_code == 2, result.output
    assert result.output == f"upstack: data dir {tmp_path / 'file' / 'data'} is not usable: Not a directory\n"


def test_invalid_database_url_says_so_in_one_line(tmp_path):
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path), "--database-url",
                                 "nosuchdb://someone:hunter2@host/x"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("upstack: invalid database URL nosuchdb://someone:***@host/x: ")
    assert "hunter2" not in result.output


@pytest.mark.parametrize("args,expected", [
    (["serve", "--port", "1", "--database-url", UNREACHABLE],
     "upstack: cannot connect to the database postgresql+psycopg://someone:***@127.0.0.1:1/nothing: "),
    (["worker", "--database-url", UNREACHABLE],
     "upstack: cannot connect to the database postgresql+psycopg://someone:***@127.0.0.1:1/nothing: "),
    (["serve", "--port", "1", "--data-dir", "{file}/data"], "upstack: data dir {file}/data is not usable: "),
], ids=["serve-database", "worker-database", "serve-data-dir"])
def test_a_process_that_cannot_start_exits_2_with_one_line(tmp_path, args, expected):
    """In a real process (serve and worker set up logging first): exit code 2, no traceback, the password
    hidden, and nothing is served (port 1 would be refused anyway)."""
    (tmp_path / "file").write_text("not a directory")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    if "--data-dir" not in args:
        args += ["--data-dir", str(tmp_path / "data")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSTACK_")}
    done = subprocess.run([sys.executable, "-m", "upstack.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("upstack:")]
    assert len(failures) == 1 and failures[0].startswith(expected.replace("{file}", str(tmp_path / "file"))), done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
