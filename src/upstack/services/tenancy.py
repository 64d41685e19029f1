"""The one id a sandbox is shown under and the `sandbox` object of answers. The (org, sandbox) pair itself,
`Tenant`, lives in the neutral `upstack.tenant` (storage scopes its queries by it)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

_ORGS = uuid.uuid5(uuid.NAMESPACE_URL, "upstack:org")  # each org's namespace is derived from this one


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
