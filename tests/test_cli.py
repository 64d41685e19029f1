"""The `upstack` command line: every command and option explains itself, and `db upgrade` makes the schema."""

from __future__ import annotations

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
