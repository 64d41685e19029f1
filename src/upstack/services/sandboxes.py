"""Sandboxes this server knows (the `tenants` table): any (org, sandbox) pair is accepted, and the first request
to a sandbox creates it. The platform answers a sandbox that does not exist with an error, so a typo in
`x-sandbox-name` would silently give a client an empty sandbox here: the gateway names such a creation in
`x-upstack-warning` (`prod` excepted, which every org has), or refuses it with UPSTACK_STRICT_MEMBERS until the
sandbox is created (POST /_upstack/sandboxes, or any request to it without strict mode).

Each process keeps the pairs it has seen exist, so only a sandbox's first request in a process reads the
database; the local reset forgets them (a sandbox wiped by another process's reset is seen again without a
warning here: it is recreated lazily, as before).
"""

from __future__ import annotations

import threading

from upstack.services import merge_policies
from upstack.storage import ups_repo
from upstack.storage.db import Database
from upstack.tenant import Tenant

DEFAULT = "prod"
MAX_KNOWN = 100_000  # pairs remembered; past that the set starts over (a first request reads the row again)


def created_warning(t: Tenant) -> str:
    return f"sandbox '{t.sandbox}' did not exist and was created"


def refusal(t: Tenant) -> str:
    return (f"Sandbox '{t.sandbox}' does not exist in org '{t.org}': the platform answers an unknown sandbox with "
            "an error, and this server does not create it implicitly because UPSTACK_STRICT_MEMBERS is set. "
            f"Create it with POST /_upstack/sandboxes {{\"org\": \"{t.org}\", \"sandbox\": \"{t.sandbox}\"}} (or "
            "any request to it without UPSTACK_STRICT_MEMBERS), or check x-sandbox-name for a typo.")


class SandboxBook:
    def __init__(self, db: Database):
        self.db = db
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def known(self, t: Tenant) -> bool:
        """Seen to exist by this process (no I/O: the gateway asks on every request)."""
        return (t.org, t.sandbox) in self._known

    def _remember(self, t: Tenant) -> None:
        with self._lock:
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
            self._known.add((t.org, t.sandbox))

    def first_use(self, t: Tenant, *, create: bool) -> bool:
        """True when the sandbox did not exist: then created with its defaults (the default merge policy) when
        `create`, left absent otherwise. Blocking (the database)."""
        with self.db.session() as s:
            if ups_repo.has_tenant(s, t):
                created = False
            elif not create:
                return True
            else:
                created = merge_policies.ensure_tenant(s, t)
        self._remember(t)
        return created

    def create(self, t: Tenant) -> bool:
        """POST /_upstack/sandboxes: True when it was new."""
        return self.first_use(t, create=True)

    def forget_all(self) -> None:
        with self._lock:
            self._known.clear()
