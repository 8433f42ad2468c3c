"""Stored value (储值): recharge plans, recharges (each bought through a service order), and the
uses of a balance to pay (a checkout payment part, or a whole "balance" payment).

The balances themselves are two ledger accounts per customer (principal and bonus, see
service/stored_value.py); these tables only say where each movement came from and how it split.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class RechargePlan(IdMixin, Base):
    """充500送50: pay `price_cents` (principal), get `bonus_cents` on top."""

    __tablename__ = "recharge_plans"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(60))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    bonus_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    __table_args__ = (
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("bonus_cents >= 0", name="bonus_not_negative"),
    )


class Recharge(IdMixin, Base):
    """One recharge bought by a customer: a service order of kind "recharge"; credited to the
    principal and bonus accounts when the order is paid."""

    __tablename__ = "stored_value_recharges"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    plan_id: Mapped[int | None] = mapped_column(BigInteger)
    plan_name: Mapped[str] = mapped_column(String(60), default="")
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    principal_cents: Mapped[int] = mapped_column(BigInteger)
    bonus_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # pending (waiting for payment) | credited | cancelled (order expired or cancelled) | refunded
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # On refund: the bonus actually taken back (the bonus left, at most the recharge's).
    forfeited_bonus_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    credited_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    refunded_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "order_id"),
        Index("ix_stored_value_recharges_customer", "merchant_id", "customer_id", "id"),
    )


class BalanceUse(IdMixin, Base):
    """Stored value taken to pay: `source` "order" (a checkout payment part, `source_id` = order id)
    or "payment" (the whole "balance" payment method, `source_id` = payment id). Records how it
    split between principal and bonus, and what has been given back (refunds, cancellation)."""

    __tablename__ = "stored_value_uses"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    principal_cents: Mapped[int] = mapped_column(BigInteger)
    bonus_cents: Mapped[int] = mapped_column(BigInteger)
    returned_principal_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    returned_bonus_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # Order refunds seen (their payment-parts cents, all kinds) and their ids: a refund is applied once.
    parts_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_refs: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "source", "source_id"),
        Index("ix_stored_value_uses_order", "merchant_id", "order_id"),
        CheckConstraint("principal_cents + bonus_cents = amount_cents", name="split_sums"),
        CheckConstraint("returned_principal_cents <= principal_cents AND returned_bonus_cents <= bonus_cents",
                        name="returned_within_used"),
    )
