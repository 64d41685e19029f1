"""Local test controls for client developers (CONTRACT §10): job pacing, forced failures, route faults."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from upstack.services.errors import Invalid
from upstack.storage import controls_repo

PACING_MODES = ("immediate", "delay", "manual")


def read_all(s: Session) -> dict[str, Any]:
    return {
        "jobPacing": controls_repo.get(s, "jobPacing") or {"mode": "immediate"},
        "failNextJobs": (controls_repo.get(s, "failNextJobs") or {}).get("rules", []),
        "faults": (controls_repo.get(s, "faults") or {}).get("rules", []),
    }


MAX_LATENCY_MS = 120_000  # a fault holds its request this long at most
MAX_DELAY_SECONDS = 3_600
MAX_RULES = 100
MAX_TEXT = 1_000


def update(s: Session, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("Controls must be a JSON object with jobPacing, failNextJobs and/or faults.")
    unknown = set(body) - {"jobPacing", "failNextJobs", "faults"}
    if unknown:
        raise Invalid(f"Unknown controls: {sorted(unknown)}.")
    if "jobPacing" in body:
        p = body["jobPacing"] or {"mode": "immediate"}
        if not isinstance(p, dict) or p.get("mode") not in PACING_MODES:
            raise Invalid(f"jobPacing.mode must be one of {PACING_MODES}.")
        secs = _number(p.get("delaySeconds", 0), "jobPacing.delaySeconds", MAX_DELAY_SECONDS)
        controls_repo.put(s, "jobPacing", {"mode": p["mode"], "delaySeconds": secs})
    if "failNextJobs" in body:
        rules = _list(body["failNextJobs"] or [], "failNextJobs")
        for r in rules:
            if r.get("kind") not in ("ingest", "export"):
                raise Invalid("failNextJobs entries need kind (ingest|export) and an integer count.")
        controls_repo.put(s, "failNextJobs", {"rules": [
            {"kind": r["kind"], "count": int(_number(r.get("count", 1), "failNextJobs[].count", 1_000_000, integer=True)),
             "code": _text(r.get("code", "FORCED-FAILURE"), "failNextJobs[].code"),
             "message": _text(r.get("message", "Failure forced by /_upstack/controls"), "failNextJobs[].message")}
            for r in rules]})
    if "faults" in body:
        rules = _list(body["faults"] or [], "faults")
        for r in rules:
            if not isinstance(r.get("path"), str) or not r["path"]:
                raise Invalid("faults entries need a path glob, e.g. /data/core/ups/export/jobs/*.")
            status = r.get("status")
            if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                       or not 400 <= status <= 599):
                raise Invalid("faults[].status must be an HTTP error status (400-599).")
        controls_repo.put(s, "faults", {"rules": [
            {"method": _text(r.get("method", "*"), "faults[].method").upper(), "path": _text(r["path"], "faults[].path"),
             "latencyMs": int(_number(r.get("latencyMs", 0), "faults[].latencyMs", MAX_LATENCY_MS)),
             "status": r.get("status"),
             "message": _text(r.get("message", "Fault injected by /_upstack/controls"), "faults[].message")}
            for r in rules]})
    return read_all(s)


def _number(value: Any, name: str, most: float, *, integer: bool = False) -> float:
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value <= most:
        raise Invalid(f"{name} must be {'an integer' if integer else 'a number'} from 0 to {most}.")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise Invalid(f"{name} must be a string of at most {MAX_TEXT} characters.")
    return value


def _list(value: Any, name: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise Invalid(f"{name} must be an array of objects.")
    if len(value) > MAX_RULES:
        raise Invalid(f"{name} holds at most {MAX_RULES} entries.")
    return value


def take_forced_failure(s: Session, kind: str) -> tuple[str, str] | None:
    """Consume one forced failure for `kind`, atomically (row lock), or None."""
    body = controls_repo.get(s, "failNextJobs", for_update=True)
    if not body:
        return None
    for rule in body.get("rules", []):
        if rule["kind"] == kind and rule["count"] > 0:
            rule["count"] -= 1
            controls_repo.put(s, "failNextJobs", body)
            return rule["code"], rule["message"]
    return None


@dataclass(frozen=True)
class Fault:
    method: str
    path: str
    latency_ms: int
    status: int | None
    message: str

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path.rstrip("/") or "/", self.path.rstrip("/"))


def faults(s: Session) -> list[Fault]:
    rules = (controls_repo.get(s, "faults") or {}).get("rules", [])
    return [Fault(r["method"], r["path"], r["latencyMs"], r["status"], r["message"]) for r in rules]
