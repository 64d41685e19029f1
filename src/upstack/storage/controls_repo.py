"""SQL for the local test controls: one JSON row per control name, read and updated under a row lock."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from upstack.storage.models import Control


def get(s: Session, name: str, *, for_update: bool = False) -> dict[str, Any] | None:
    q = select(Control).where(Control.name == name)
    if for_update:
        q = q.with_for_update()
    row = s.scalar(q)
    return dict(row.body) if row is not None else None


def put(s: Session, name: str, body: dict[str, Any] | None) -> None:
    row = s.get(Control, name)
    if body is None:
        if row is not None:
            s.delete(row)
        return
    now = int(time.time() * 1000)
    if row is None:
        s.add(Control(name=name, body=body, updated_ms=now))
    else:
        row.body = body
        row.updated_ms = now


def clear(s: Session) -> None:
    s.execute(delete(Control))
