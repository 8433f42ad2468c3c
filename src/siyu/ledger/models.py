"""Ledger accounts (a balance per owner and kind) and their append-only entries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class LedgerAccount(IdMixin, Base):
    """One balance: e.g. kind "stock" of owner ("sku", 42), or kind "points" of ("customer", 7).

    The balance changes only together with a new entry (service.post), and the database itself
    refuses a negative balance."""

    __tablename__ = "ledger_accounts"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    owner_type: Mapped[str] = mapped_column(String(30))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "kind", "owner_type", "owner_id"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
    )


class LedgerEntry(IdMixin, Base):
    """One movement. Never updated or deleted: a correction is a new entry."""

    __tablename__ = "ledger_entries"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    delta: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # A short code ("initial", "restock", "order_reserve" …); the note says more for people.
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(500), default="")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    ref_type: Mapped[str | None] = mapped_column(String(30))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_type: Mapped[str] = mapped_column(String(20), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_ledger_entries_account", "account_id", "id"),
        Index("ix_ledger_entries_ref", "merchant_id", "ref_type", "ref_id"),
    )
