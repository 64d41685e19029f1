"""`python -m build` gives an sdist and a wheel that install into a clean venv and serve: the migrations travel
inside the package, and serving needs neither the dev tools nor pyspark.

Slow (about 100 s on 2 cores when pip downloads the dependencies; less with them in pip's cache): deselect it
with `make test PYTEST_ARGS="-m 'not slow'"`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

import upstack

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted(p.name for p in (ROOT / "src/upstack/migrations/versions").glob("*.py"))
TEMPLATES = sorted(p.name for p in (ROOT / "src/upstack/api/templates/console").glob("*.html"))
# Only the dev and spark extras bring these: a serving install must not have them.
NOT_FOR_SERVING = ("pyspark", "pytest", "hypothesis", "ruff")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def clean_env() -> dict[str, str]:
    """This environment without anything that would let the venv see the source tree or our settings."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("UPSTACK_")}


def run(cmd: list, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_built_wheel_installs_into_a_clean_venv_and_serves(tmp_path):
    # Build from a copy of what the sdist is made of (the Dockerfile copies the same), so the build writes
    # nothing into the working tree and a file missing from the copy would fail here.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    # build's default: the sdist, then the wheel built from that sdist, so the sdist is proven complete too.
    # The builder runs in this environment (where the dev extra put `build`); what it builds is installed and
    # run in a clean one.
    run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=tmp_path, env=dict(os.environ))
    (wheel,) = dist.glob("upstack-*.whl")
    (sdist,) = dist.glob("upstack-*.tar.gz")
    assert wheel.name.startswith(f"upstack-{upstack.__version__}-")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert "upstack/migrations/env.py" in in_wheel
    assert {f"upstack/migrations/versions/{m}" for m in MIGRATIONS} <= in_wheel
    assert {f"upstack/api/templates/console/{t}" for t in TEMPLATES} <= in_wheel  # the console's pages
    in_sdist = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {f"src/upstack/migrations/versions/{m}" for m in MIGRATIONS} <= in_sdist

    # A clean venv (no system site-packages); pip takes the dependencies from its cache or the index.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python, upstack_cmd = venv / "bin" / "python", venv / "bin" / "upstack"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel], cwd=tmp_path, timeout=800)

    assert run([upstack_cmd, "--version"], cwd=tmp_path).strip() == f"upstack {upstack.__version__}"
    probe = ("import importlib.util, upstack; print(upstack.__file__); "
             f"print(*[m for m in {NOT_FOR_SERVING!r} if importlib.util.find_spec(m)])")
    where, extras = (run([python, "-c", probe], cwd=tmp_path).splitlines() + [""])[:2]
    assert Path(where).is_relative_to(venv), f"upstack imported from {where}, not from the installed wheel"
    assert not extras.split(), f"a serving install pulled in {extras}"

    port, data_dir = free_port(), tmp_path / "data"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen([upstack_cmd, "serve", "--port", str(port), "--data-dir", data_dir], cwd=tmp_path,
                                  env=clean_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            status, deadline = None, time.monotonic() + 90
            while status != 200 and time.monotonic() < deadline and server.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_upstack/health", timeout=2) as answer:
                        status = answer.status
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.2)
            assert status == 200, f"no healthy answer (exit code {server.poll()}):\n{log_path.read_text()[-4000:]}"
            # The console renders from the templates the wheel carries (jinja2 is a serving dependency).
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_upstack/console", timeout=10) as answer:
                assert answer.status == 200 and b"upstack console" in answer.read()
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    assert (data_dir / "upstack.db").is_file()
