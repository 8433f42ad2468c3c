"""membership: points lots (for expiry, spent first-in-first-out), their uses, per-order points and the points mall.

The balance itself is a ledger account (kind "points", owner ("customer", id)); the lots say which
points expire when. Invariant: the balance equals the sum of `remaining` over lots not yet expired."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class PointsLot(IdMixin, Base):
    __tablename__ = "membership_points_lots"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(40))
    # The ledger entry that credited it (its idempotency key).
    entry_key: Mapped[str] = mapped_column(String(200))
    ref_type: Mapped[str | None] = mapped_column(String(30))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    earned_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[dt.datetime | None]
    expired_at: Mapped[dt.datetime | None]
    expired_points: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        UniqueConstraint("merchant_id", "entry_key"),
        Index("ix_membership_points_lots_open", "merchant_id", "customer_id", "expired_at", "expires_at"),
        Index("ix_membership_points_lots_due", "expired_at", "expires_at"),
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
    )


class PointsLotUse(IdMixin, Base):
    """Points taken from a lot by one spend (its ledger key), and how many of them came back."""

    __tablename__ = "membership_points_lot_uses"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int] = mapped_column(BigInteger)
    spend_key: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    returned: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_membership_points_lot_uses_key", "merchant_id", "spend_key"),)


class OrderPoints(IdMixin, Base):
    """What an order did with points and growth: spent at checkout (and given back), earned on
    completion (and reversed by refunds)."""

    __tablename__ = "membership_order_points"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    spent_points: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    returned_points: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_points: Mapped[int] = mapped_column(BigInteger, default=0)
    earn_base_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    money_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # Points mall exchange: the item (its points are the spent points).
    mall_item_id: Mapped[int | None] = mapped_column(BigInteger)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "order_id"),)


class PointsMallItem(IdMixin, Base):
    """A product offered in the points mall: exchanged for `points` plus `cash_cents` (may be 0)."""

    __tablename__ = "membership_points_mall_items"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger)
    cash_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    per_order_limit: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
