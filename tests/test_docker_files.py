"""The deployment files and the README stay in step with the CLI, the settings and the app (no Docker engine needed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from upstack.cli import app as cli_app
from upstack.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
ENV_VAR = re.compile(r"\bUPSTACK_[A-Z0-9_]+\b")
# Environment variables of the test harness and tools, not of the server.
NOT_SETTINGS = {"UPSTACK_TEST_POSTGRES_URL", "UPSTACK_CONFORMANCE_VENV"}


def settings_table() -> str:
    """The README's settings table, generated from the Settings model."""
    rows = ["| env var | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "(none)" if default is None else "(empty)" if default == "" else f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `UPSTACK_{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows)


def upstack_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if svc.get("image", "").startswith("upstack")}


def command_of(svc: dict) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def dockerfile_json(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE, re.M)
    assert match, f"Dockerfile has no exec-form {instruction}"
    return yaml.safe_load(match.group(1))


def check_command(args: list[str]) -> None:
    """`args` (after `upstack`) names a real subcommand, and every --flag in it is one of its options."""
    # Typer ships its own copy of click: walk its command tree by the `commands` mapping of groups.
    cmd, words = typer.main.get_command(cli_app), list(args)
    while hasattr(cmd, "commands") and words and not words[0].startswith("-"):
        cmd = cmd.commands.get(words.pop(0))
        assert cmd is not None, f"`upstack {' '.join(args)}`: no such subcommand"
    assert not hasattr(cmd, "commands"), f"`upstack {' '.join(args)}` names a group, not a command"
    names = [a for a in args if not a.startswith("-")][: len(args) - len(words)]
    help_out = CliRunner().invoke(cli_app, [*names, "--help"], env={"COLUMNS": "200"})
    assert help_out.exit_code == 0, help_out.output
    options = {opt for p in cmd.params for opt in p.opts}
    for word in words:
        if word.startswith("--") and word != "--help":
            flag = word.split("=", 1)[0]
            assert flag in options, f"`upstack {' '.join(args)}`: {flag} is not an option of that command"
            assert flag in help_out.output


def test_readme_settings_table_is_generated_from_settings():
    table = settings_table()
    assert table in README, f"README's settings table is out of date; paste this one:\n\n{table}\n"


@pytest.mark.parametrize("name,text", [("Dockerfile", DOCKERFILE), ("docker-compose.yml", COMPOSE_TEXT),
                                       ("README.md", README), ("Makefile", MAKEFILE)])
def test_every_env_var_used_is_a_setting(name, text):
    fields = {f"UPSTACK_{n.upper()}" for n in Settings.model_fields}
    unknown = set(ENV_VAR.findall(text)) - fields - NOT_SETTINGS
    assert not unknown, f"{name} uses {sorted(unknown)}, which are not Settings fields"


def test_commands_in_compose_dockerfile_readme_and_makefile_exist():
    entrypoint, cmd = dockerfile_json("ENTRYPOINT"), dockerfile_json("CMD")
    assert entrypoint == ["upstack"]
    check_command(cmd)
    for svc in upstack_services().values():
        check_command(command_of(svc))
    lines = re.findall(r"(?:^|[\s/`])upstack ((?:serve|worker|db upgrade)\b[^\n`#|;&]*)", README + MAKEFILE, re.M)
    assert len(lines) >= 4
    for line in lines:
        check_command([w for w in shlex.split(line) if not w.startswith("$")])


def test_healthcheck_path_is_served_without_aep_headers(tmp_path):
    from fastapi.testclient import TestClient

    from upstack.api.app import create_app
    from upstack.storage.migrate import upgrade

    paths = set(re.findall(r"/_upstack/[a-z_/]+", DOCKERFILE))
    assert paths == {"/_upstack/health"}
    settings = Settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)
    # The image's probe asks http://127.0.0.1:<port>, so that is the Host the check sees.
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8080") as client:
        for path in paths:
            assert client.get(path).status_code == 200


def test_dockerfile_shape():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"pip install \.(\s|$)", DOCKERFILE) and "install -e" not in DOCKERFILE
    assert re.search(r"^VOLUME /data$", DOCKERFILE, re.M)
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)
    assert "UPSTACK_DATA_DIR=/data" in DOCKERFILE and "UPSTACK_HOST=0.0.0.0" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*urllib", DOCKERFILE, re.M | re.S)
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip()[:1] not in ("", "#")]
    assert ignored[0] == "*" and {"!pyproject.toml", "!README.md", "!src/"} <= set(ignored)


def test_compose_production_shape():
    services = COMPOSE["services"]
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.split(":")[0] in COMPOSE["volumes"] for v in pg["volumes"])

    ours = upstack_services()
    api = ours["api"]
    assert command_of(api)[:1] == ["serve"] and "--workers" in command_of(api)
    assert command_of(api)[command_of(api).index("--workers") + 1] == "0"
    # Loopback only by default (permissive auth must not face the network): "127.0.0.1:8080:8080".
    assert [str(p) for p in api["ports"]] == ["127.0.0.1:8080:8080"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"

    workers = {n: s for n, s in ours.items() if command_of(s)[:1] == ["worker"]}
    replicas = sum(s.get("deploy", {}).get("replicas", 1) for s in workers.values())
    assert replicas >= 2
    for svc in workers.values():
        assert svc["depends_on"]["api"]["condition"] == "service_healthy", "workers must wait for the migrated API"
        assert svc["healthcheck"]["disable"] is True

    lake_mounts = {v for s in (api, *workers.values()) for v in s["volumes"] if v.endswith(":/data")}
    assert len(lake_mounts) == 1, f"API and workers must share one lake volume, got {lake_mounts}"
    assert lake_mounts.pop().split(":")[0] in COMPOSE["volumes"]
    for svc in (api, *workers.values()):
        env = svc["environment"]
        assert env["UPSTACK_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["UPSTACK_DATABASE_URL"]
        assert env["UPSTACK_DATA_DIR"] == "/data"


def test_compose_file_validates_with_the_compose_client():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "-f", "docker-compose.yml", "config", "-q"]
    elif shutil.which("docker-compose"):
        cmd = ["docker-compose", "-f", "docker-compose.yml", "config", "-q"]
    else:
        pytest.skip("no docker compose client installed")
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
