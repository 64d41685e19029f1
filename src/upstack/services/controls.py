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
        secs = p.get("delaySeconds", 0)
        if p["mode"] == "delay" and (not isinstance(secs, int | float) or secs < 0):
            raise Invalid("jobPacing.delaySeconds must be a number >= 0.")
        controls_repo.put(s, "jobPacing", {"mode": p["mode"], "delaySeconds": secs})
    if "failNextJobs" in body:
        rules = body["failNextJobs"] or []
        for r in _list(rules, "failNextJobs"):
            if r.get("kind") not in ("ingest", "export") or not isinstance(r.get("count", 1), int):
                raise Invalid("failNextJobs entries need kind (ingest|export) and an integer count.")
        controls_repo.put(s, "failNextJobs", {"rules": [
            {"kind": r["kind"], "count": r.get("count", 1), "code": r.get("code", "FORCED-FAILURE"),
             "message": r.get("message", "Failure forced by /_upstack/controls")} for r in rules]})
    if "faults" in body:
        rules = body["faults"] or []
        for r in _list(rules, "faults"):
            if not isinstance(r.get("path"), str):
                raise Invalid("faults entries need a path glob, e.g. /data/core/ups/export/jobs/*.")
            status = r.get("status")
            if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
                raise Invalid("faults[].status must be an HTTP error status (400-599).")
        controls_repo.put(s, "faults", {"rules": [
            {"method": str(r.get("method", "*")).upper(), "path": r["path"], "latencyMs": int(r.get("latencyMs", 0)),
             "status": r.get("status"), "message": r.get("message", "Fault injected by /_upstack/controls")}
            for r in rules]})
    return read_all(s)


def _list(value: Any, name: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise Invalid(f"{name} must be an array of objects.")
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
