"""The (org, sandbox) pair every object and query is scoped by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tenant:
    org: str
    sandbox: str = "prod"
