"""SQL for the IMS tokens this server issued (strict auth mode checks them)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from upstack.storage import dialect
from upstack.storage.models import ImsToken


def add_token(s: Session, token: str, client_id: str, expires_ms: int) -> None:
    s.add(ImsToken(token=token, client_id=client_id, expires_ms=expires_ms))


def get_token(s: Session, token: str) -> ImsToken | None:
    return s.get(ImsToken, token) if dialect.storable(token) else None
