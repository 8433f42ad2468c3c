"""The audit log: every export and every unmasked view of personal data is written here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.models import AuditLog


def record(
    session: Session,
    *,
    actor: Principal,
    action: str,
    target_type: str | None = None,
    target_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    row = AuditLog(
        merchant_id=actor.merchant_id,
        actor_type=actor.kind,
        actor_id=actor.subject_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
    )
    session.add(row)
    session.flush()
    return row


def entries(session: Session, *, merchant_id: int, action: str | None = None, limit: int = 100) -> list[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.merchant_id == merchant_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit)))
