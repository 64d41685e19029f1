"""A fresh clone is enough: the README, the docs, the Makefile and CI name nothing outside the repository, their
links resolve, and `make conformance` has its spec and runner in the repository."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "conformance").glob("*.md"))]
BUILD_FILES = [ROOT / "Makefile", ROOT / ".ci" / "run", ROOT / "Dockerfile", ROOT / "docker-compose.yml",
               ROOT / "pyproject.toml"]
SPEC = ROOT / "conformance" / "aep-export-loop.augmented.openapi.json"
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", DOCS + BUILD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(path):
    text = path.read_text()
    assert "../shared" not in text and "/work/" not in text, f"{path.name} points outside the repository"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    for target in MARKDOWN_LINK.findall(path.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{path.relative_to(ROOT)} links to {target}, which does not exist"


def test_the_contract_names_only_real_settings():
    from upstack.config import Settings

    fields = {f"UPSTACK_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bUPSTACK_[A-Z0-9_]+\b", (ROOT / "docs" / "CONTRACT.md").read_text()))
    assert named and not named - fields, f"docs/CONTRACT.md names {sorted(named - fields)}, which are not settings"


def test_the_conformance_target_runs_what_the_repository_holds():
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^conformance:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "conformance/run.py" in target and (ROOT / "conformance" / "run.py").is_file()
    spec = json.loads(SPEC.read_text())
    operations = [m for ops in spec["paths"].values() for m in ops if m in {"get", "put", "post", "patch", "delete", "head"}]
    assert len(operations) == 40


def _runner():
    spec = importlib.util.spec_from_file_location("conformance_run", ROOT / "conformance" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conformance_runner_calls_schemathesis_with_the_vendored_spec_and_aep_headers(monkeypatch):
    run = _runner()
    calls = []
    monkeypatch.setattr(run, "schemathesis", lambda: "/bin/schemathesis")
    people = {"dataset": "d1", "batch": "b1", "file": "b1-1", "part": "part-0.parquet",
              "loading": "b3", "to_finish": "b4", "catalog_batch": "b5", "doomed_catalog_batch": "b6"}
    fixtures = {"people": people, "target": "d9", "dataset": "d7", "doomed_dataset": "d8", "job": 7, "job_batch": "b9", "doomed_job": 8,
                "lookup_policy": "p0", "policy": "p1", "doomed_policy": "p2"}
    monkeypatch.setattr(run, "make_fixtures", lambda base, headers: fixtures)
    monkeypatch.setattr(run.subprocess, "call",
                        lambda cmd: calls.append((cmd, json.loads(Path(cmd[2]).read_text()))) or 0)
    assert run.main(["http://127.0.0.1:9", "7", "--report", "junit"]) == 0
    ((cmd, spec),) = calls
    assert cmd[:2] == ["/bin/schemathesis", "run"] and Path(cmd[2]).name == SPEC.name
    # the vendored spec, with the fixtures' ids as the examples of the parameters (a DELETE gets its own objects)
    assert spec["paths"].keys() == json.loads(SPEC.read_text())["paths"].keys()
    job = spec["paths"]["/data/core/ups/export/jobs/{EXPORT_JOB_ID}"]
    assert [p["example"] for p in job["get"]["parameters"] if p["name"] == "EXPORT_JOB_ID"] == ["7"]
    assert [p["example"] for p in job["delete"]["parameters"] if p["name"] == "EXPORT_JOB_ID"] == ["8"]
    # what a DELETE takes away is never what another path is given
    datasets = spec["paths"]["/data/foundation/catalog/dataSets/{DATASET_ID}"]
    assert [p["example"] for p in datasets["get"]["parameters"] if p["name"] == "DATASET_ID"] == ["d7"]
    assert [p["example"] for p in datasets["delete"]["parameters"] if p["name"] == "DATASET_ID"] == ["d8"]
    preview = spec["paths"]["/data/foundation/export/datasets/{id}/preview"]["get"]
    assert [p["example"] for p in preview["parameters"] if p["name"] == "id"] == ["d1"]
    bulk = spec["paths"]["/data/core/ups/config/mergePolicies/bulk-get"]["post"]["requestBody"]["content"]
    assert bulk["application/json"]["example"] == {"ids": [{"id": "p1"}, {"id": "p0"}]}
    assert cmd[cmd.index("--url") + 1] == "http://127.0.0.1:9" and cmd[cmd.index("--max-examples") + 1] == "7"
    headers = [cmd[i + 1].split(":")[0] for i, word in enumerate(cmd) if word == "-H"]
    assert headers == ["Authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name"]
    assert cmd[-2:] == ["--report", "junit"]


def test_conformance_runner_without_schemathesis_says_how_to_install_it(monkeypatch, capsys):
    run = _runner()
    monkeypatch.setattr(run, "schemathesis", lambda: None)
    assert run.main(["http://127.0.0.1:9"]) == 2
    assert "pip install 'upstack[conformance]'" in capsys.readouterr().err
