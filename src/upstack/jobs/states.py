"""Every state machine of upstack as data: the allowed moves, and the one function that applies a move."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

# Queue rows (jobs table). A running job whose lease expired is claimed again (running -> running).
QUEUE = {
    "queued": {"running", "failed"},
    "running": {"running", "queued", "succeeded", "failed"},
    "succeeded": set(),
    "failed": set(),
}

# Export jobs, as the Profile API shows them (CONTRACT §7): no other moves.
EXPORT = {
    "NEW": {"PROCESSING", "FAILED"},
    "PROCESSING": {"SUCCEEDED", "FAILED"},
    "SUCCEEDED": set(),
    "FAILED": set(),
}

# Catalog batches (CONTRACT §3-4). `processing -> processing` lets a re-claimed job restart its work.
BATCH = {
    "loading": {"processing", "aborted", "failed"},
    "processing": {"processing", "success", "failed"},
    "success": set(),
    "failed": set(),
    "aborted": set(),
}


class IllegalTransition(Exception):
    def __init__(self, machine: str, from_states: tuple[str, ...], to_state: str):
        super().__init__(f"{machine}: no move from {from_states} to {to_state}")


def sources_of(table: dict[str, set[str]], to_state: str) -> tuple[str, ...]:
    """The states from which `to_state` may be reached."""
    return tuple(s for s, targets in table.items() if to_state in targets)


def transition(
    session: Session,
    model: Any,
    table: dict[str, set[str]],
    key: Any,
    to_state: str,
    *,
    from_states: tuple[str, ...] | None = None,
    where: tuple = (),
    **values: Any,
) -> bool:
    """Move row `key` of `model` to `to_state` if it is in one of `from_states` (default: every state the
    table allows the move from). One `UPDATE ... WHERE status IN (...)`: a concurrent move wins or loses
    atomically. Returns whether this call made the move."""
    allowed = sources_of(table, to_state)
    if from_states is None:
        from_states = allowed
    elif not set(from_states) <= set(allowed):
        raise IllegalTransition(model.__tablename__, from_states, to_state)
    stmt = (
        update(model)
        .where(model.id == key, model.status.in_(from_states), *where)
        .values(status=to_state, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1
