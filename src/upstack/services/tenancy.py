"""The (org, sandbox) pair every object and query is scoped by, and the one id a sandbox is shown under."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_ORGS = uuid.uuid5(uuid.NAMESPACE_URL, "upstack:org")  # each org's namespace is derived from this one


@dataclass(frozen=True)
class Tenant:
    org: str
    sandbox: str = "prod"


@lru_cache(maxsize=4096)
def sandbox_id(org: str, sandbox: str) -> str:
    """AEP gives every sandbox of every org its own UUID, and shows that one id wherever the sandbox appears
    (Catalog's `sandboxId`, the `sandbox.sandboxId` of merge policies and export jobs). Ours is derived from
    (org, sandbox name), so it is stable across restarts, needs no table, and two orgs' `prod` differ."""
    return str(uuid.uuid5(uuid.uuid5(_ORGS, org), sandbox))


def sandbox_view(org: str, sandbox: str) -> dict[str, Any]:
    """The `sandbox` object of the Profile family's answers (merge policies, export jobs)."""
    production = sandbox == "prod"
    return {"sandboxId": sandbox_id(org, sandbox), "sandboxName": sandbox,
            "type": "production" if production else "development", "default": production}
