"""SQL for segment definitions: one tenant's rows, by id or name, and keyset-free pages (offset, a short list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from upstack.storage.dialect import storable
from upstack.storage.models import SegmentDefinition
from upstack.tenant import Tenant

SORT_COLUMNS = {"creationTime": SegmentDefinition.created_ms, "updateTime": SegmentDefinition.updated_ms,
                "name": SegmentDefinition.name, "id": SegmentDefinition.id}
MODE_COLUMNS = {"batch": SegmentDefinition.batch, "continuous": SegmentDefinition.continuous,
                "synchronous": SegmentDefinition.synchronous}


def _in(t: Tenant) -> tuple:
    return SegmentDefinition.org == t.org, SegmentDefinition.sandbox == t.sandbox


def get_definition(s: Session, t: Tenant, rid: str) -> SegmentDefinition | None:
    if not storable(rid):
        return None
    return s.get(SegmentDefinition, (t.org, t.sandbox, rid))


def get_many(s: Session, t: Tenant, ids: Sequence[str]) -> dict[str, SegmentDefinition]:
    """The tenant's definitions among `ids` (bulk-get: up to 1,500), by id; a few statements, not one per id."""
    wanted = [i for i in dict.fromkeys(ids) if storable(i)]
    found: dict[str, SegmentDefinition] = {}
    for at in range(0, len(wanted), 500):
        chunk = wanted[at:at + 500]
        found.update((d.id, d) for d in s.scalars(select(SegmentDefinition).where(
            *_in(t), SegmentDefinition.id.in_(chunk))))
    return found


def count(s: Session, t: Tenant) -> int:
    return s.scalar(select(func.count()).select_from(SegmentDefinition).where(*_in(t))) or 0


def name_taken(s: Session, t: Tenant, name: str, *, other_than: str | None = None) -> bool:
    q = select(SegmentDefinition.id).where(*_in(t), SegmentDefinition.name == name)
    if other_than is not None:
        q = q.where(SegmentDefinition.id != other_than)
    return s.scalar(q.limit(1)) is not None


def save(s: Session, row: SegmentDefinition, changes: dict[str, Any] | None = None) -> bool:
    """Add a new row, or apply `changes` (attribute: value) to a stored one, and flush; False when the tenant's
    unique name was taken meanwhile (a concurrent create or rename: PostgreSQL makes the later one fail here). The
    changes are made inside the savepoint, so that its rollback takes them back and leaves the session usable
    (opening a savepoint flushes what is pending first, outside of it)."""
    try:
        with s.begin_nested():
            s.add(row)
            for name, value in (changes or {}).items():
                setattr(row, name, value)
            s.flush()
    except IntegrityError:
        return False
    return True


def delete(s: Session, row: SegmentDefinition) -> None:
    s.delete(row)
    s.flush()


def _column(s: Session, field: str):
    """Texts in code point order on both databases: PostgreSQL's default collation follows the locale ("a" before
    "B"), SQLite's is binary ("B" before "a"); "C" is PostgreSQL's binary one."""
    column = SORT_COLUMNS[field]
    if field in ("name", "id") and s.get_bind().dialect.name == "postgresql":
        return column.collate("C")
    return column


def page(s: Session, t: Tenant, *, modes: dict[str, bool], order: Sequence[tuple[str, bool]], skip: int,
         limit: int) -> tuple[int, Sequence[SegmentDefinition]]:
    """(rows matching `modes` {mode: enabled}, one page of them ordered by `order` [(field, descending)], id last)."""
    where = [*_in(t), *(MODE_COLUMNS[m] == enabled for m, enabled in modes.items())]
    total = s.scalar(select(func.count()).select_from(SegmentDefinition).where(*where)) or 0
    by = [_column(s, f).desc() if desc else _column(s, f).asc() for f, desc in order]
    rows = s.scalars(select(SegmentDefinition).where(*where).order_by(*by, _column(s, "id"))
                     .offset(skip).limit(limit)).all()
    return total, rows
