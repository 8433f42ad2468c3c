"""Tables that belong to no domain: the event outbox, handler runs and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class OutboxEvent(IdMixin, Base):
    __tablename__ = "outbox_events"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    # Set once every handler registered for the event has run.
    processed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_events_pending", "processed_at", "id"),)


class EventHandlerRun(IdMixin, Base):
    """One row per (event, handler) that has run: the idempotency key of every handler."""

    __tablename__ = "event_handler_runs"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    handler: Mapped[str] = mapped_column(String(200))
    ran_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("event_id", "handler"),)


class AuditLog(IdMixin, Base):
    """Who did what: exports, unmasked views of personal data, staff adjustments of money."""

    __tablename__ = "audit_log"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now, index=True)


class IdempotencyKey(IdMixin, Base):
    """The first answer to a POST sent with an `Idempotency-Key` header, replayed on a retry."""

    __tablename__ = "idempotency_keys"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    # Who and what the key is for, e.g. "orders.create:customer:42": keys never collide across callers.
    scope: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "scope", "key"),)
