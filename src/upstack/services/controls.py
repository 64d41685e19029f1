"""Local test controls for client developers (CONTRACT §10): job pacing, forced job failures and route faults,
each for one tenant or for all, so that tests running side by side never steer each other's server."""

from __future__ import annotations

import fnmatch
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from upstack.jobs.queue import PACING_ROW
from upstack.schemas.controls import ControlsUpdate, FailureRule, FaultRule, PacingRule, Scoped
from upstack.storage import controls_repo

FAILURES_ROW, FAULTS_ROW = "failures", "faults"
MAX_RULES = 100


def _rules(s: Session, row: str, model: type, *, for_update: bool = False) -> list:
    return [model.model_validate(r) for r in (controls_repo.get(s, row, for_update=for_update) or {}).get("rules", [])]


def _put(s: Session, row: str, rules: list[Scoped]) -> None:
    controls_repo.put(s, row, {"rules": [r.model_dump(exclude_none=True) for r in rules]} if rules else None)


def read_all(s: Session) -> dict[str, Any]:
    pacing = _rules(s, PACING_ROW, PacingRule)
    default = next((r for r in pacing if r.specificity == 0), PacingRule())
    return {
        "jobPacing": default.model_dump(exclude_none=True),
        "tenantPacing": [r.model_dump(exclude_none=True) for r in pacing if r.specificity],
        "failNextJobs": [_failure_view(r) for r in _rules(s, FAILURES_ROW, FailureRule)],
        "faults": [r.model_dump(exclude_none=True) for r in _rules(s, FAULTS_ROW, FaultRule)],
    }


def _failure_view(rule: FailureRule) -> dict[str, Any]:
    view = rule.model_dump(exclude_none=True)
    view["count"] = rule.times  # the name this control had first
    return view


def update(s: Session, change: ControlsUpdate) -> dict[str, Any]:
    """`PUT /_upstack/controls`. `jobPacing` replaces the rule of its own scope; `failNextJobs` and `faults`
    replace the rules of the scopes they name (all rules when they name none), so a test that sets its
    tenant's faults leaves every other tenant's alone."""
    if change.jobPacing is not None:
        set_pacing(s, change.jobPacing)
    for row, given, model in ((FAILURES_ROW, change.failNextJobs, FailureRule), (FAULTS_ROW, change.faults, FaultRule)):
        if given is None:
            continue
        scopes = {(r.org, r.sandbox) for r in given if r.org is not None}
        kept = [r for r in _rules(s, row, model) if scopes and (r.org, r.sandbox) not in scopes]
        _put(s, row, _bounded(kept + [_with_id(r) for r in given]))
    return read_all(s)


def set_pacing(s: Session, rule: PacingRule) -> PacingRule:
    others = [r for r in _rules(s, PACING_ROW, PacingRule) if (r.org, r.sandbox) != (rule.org, rule.sandbox)]
    _put(s, PACING_ROW, _bounded(others + ([rule] if rule.mode != "immediate" or rule.org else [])))
    return rule


def add_fault(s: Session, rule: FaultRule) -> FaultRule:
    rule = _with_id(rule)
    _put(s, FAULTS_ROW, _bounded(_rules(s, FAULTS_ROW, FaultRule) + [rule]))
    return rule


def add_failure(s: Session, rule: FailureRule) -> FailureRule:
    rule = _with_id(rule)
    _put(s, FAILURES_ROW, _bounded(_rules(s, FAILURES_ROW, FailureRule) + [rule]))
    return rule


def clear(s: Session, org: str | None = None, sandbox: str | None = None) -> None:
    """Remove every control, or those of one tenant (an org's, or one sandbox's of it)."""
    if org is None:
        controls_repo.clear(s)
        return
    for row, model in ((PACING_ROW, PacingRule), (FAILURES_ROW, FailureRule), (FAULTS_ROW, FaultRule)):
        _put(s, row, [r for r in _rules(s, row, model)
                      if not (r.org == org and (sandbox is None or r.sandbox == sandbox))])


def _with_id(rule):
    return rule if rule.id else rule.model_copy(update={"id": uuid.uuid4().hex[:12]})


def _bounded(rules: list) -> list:
    from upstack.services.errors import Invalid

    if len(rules) > MAX_RULES:
        raise Invalid(f"At most {MAX_RULES} rules of a kind are kept; clear some first (DELETE /_upstack/controls).")
    return rules


# -- what the worker and the gateway ask -------------------------------------------------------------------

def take_forced_failure(s: Session, kind: str, org: str, sandbox: str) -> tuple[str, str] | None:
    """Consume one forced failure for a job of `kind` in this tenant, atomically (row lock), or None."""
    rules = _rules(s, FAILURES_ROW, FailureRule, for_update=True)
    matching = [r for r in rules if r.kind == kind and r.times > 0 and r.covers(org, sandbox)]
    if not matching:
        return None
    rule = max(matching, key=lambda r: r.specificity)
    _put(s, FAILURES_ROW, [r.model_copy(update={"times": r.times - 1}) if r is rule else r for r in rules])
    return rule.code, rule.message


def fault_matches(rule: FaultRule, method: str, path: str, org: str | None, sandbox: str | None) -> bool:
    return ((rule.method == "*" or rule.method.upper() == method) and rule.covers(org, sandbox)
            and fnmatch.fnmatchcase(path.rstrip("/") or "/", rule.path.rstrip("/") or "/"))


def take_fault(s: Session, fault_id: str) -> FaultRule | None:
    """Count one use of a fault with `times`, atomically; None once it is used up (or cleared meanwhile)."""
    rules = _rules(s, FAULTS_ROW, FaultRule, for_update=True)
    rule = next((r for r in rules if r.id == fault_id), None)
    if rule is None or (rule.times is not None and rule.times <= 0):
        return None
    if rule.times is not None:
        left = [r.model_copy(update={"times": r.times - 1}) if r is rule else r for r in rules]
        _put(s, FAULTS_ROW, [r for r in left if r.times is None or r.times > 0])
    return rule


class FaultBook:
    """The gateway's view of the fault rules: cached, re-read at once after a change made through this process
    (`invalidate`, called by the controls routes) and at least every `max_age_s` (changes made through another
    API process). Rules with `times` are counted in the database, so they answer exactly that many requests."""

    def __init__(self, load: Callable[[], list[FaultRule]], take: Callable[[str], FaultRule | None],
                 max_age_s: float = 1.0):
        self._load, self._take, self.max_age_s = load, take, max_age_s
        self._rules: list[FaultRule] = []
        self._read_at = float("-inf")
        self._version = 0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._version += 1
            self._read_at = float("-inf")

    def current(self) -> list[FaultRule]:
        """Blocking (reads the database when stale): call it from a worker thread."""
        with self._lock:
            fresh = time.monotonic() - self._read_at < self.max_age_s
            version = self._version
        if fresh:
            return self._rules
        rules = self._load()
        with self._lock:
            if version == self._version:
                self._rules, self._read_at = rules, time.monotonic()
        return rules

    def is_fresh(self) -> bool:
        return time.monotonic() - self._read_at < self.max_age_s

    def cached(self) -> list[FaultRule]:
        return self._rules

    def take(self, rule: FaultRule) -> FaultRule | None:
        """Blocking: a rule without `times` applies as it is; one with `times` is counted first."""
        if rule.times is None:
            return rule
        taken = self._take(rule.id)
        self.invalidate()  # its count changed (or it is gone)
        return taken
