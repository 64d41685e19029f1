"""The (org, sandbox) pair every object and query is scoped by.

A neutral module that imports nothing: repositories in storage scope their queries by it and services, api and
worker pass it down, without storage importing services (docs/ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tenant:
    org: str
    sandbox: str = "prod"
