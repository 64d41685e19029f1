"""docs/ARCHITECTURE.md "Layers": imports go one way. The contracts are pyproject.toml's [tool.importlinter]; this
runs `lint-imports` over this checkout's src/upstack, so `make test` (and so CI) fails on an import that reaches up."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_lint_imports_keeps_every_contract():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    # The interpreter running the suite, so the venv's import-linter (the dev extra) analyzes this checkout's source.
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(contracts())} kept, 0 broken" in run.stdout, run.stdout


def test_profiles_and_lake_are_forbidden_every_other_upstack_module():
    """A new top-level module is forbidden to the engines until it is added to the list on purpose."""
    top = {p.stem for p in (SRC / "upstack").glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in (SRC / "upstack").glob("*/__init__.py")}
    pure = contracts()["pure-engines"]
    assert set(pure["source_modules"]) == {"upstack.profiles", "upstack.lake"}
    assert set(pure["forbidden_modules"]) == {f"upstack.{m}" for m in top - {"identitymap", "profiles", "lake"}}


def test_the_layers_are_the_documented_ones():
    layers = contracts()["layers"]["layers"]
    assert layers[2] == "upstack.api | upstack.worker"  # independent: the worker never imports api
    assert layers.index("upstack.api | upstack.worker") < layers.index("upstack.services") \
        < layers.index("upstack.jobs") < layers.index("upstack.storage")
    assert layers[-1] == "upstack.tenant | upstack.profiles | upstack.lake"
