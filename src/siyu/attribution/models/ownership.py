"""attribution: ownership tables. A customer's current binding per kind (guide, referrer), the log of
every bind, rebind and transfer, and a copy of each order's attribution snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin

BINDING_KINDS = ("guide", "referrer")
# What wrote a history line: a touch bound or rebound the customer; a person or a departure moved them.
HISTORY_ACTIONS = ("bind", "rebind", "transfer", "departure", "adopt", "owner_sync")


class CustomerBinding(IdMixin, Base):
    """The one current binding of a customer per kind: `guide` (a staff member and their store) or
    `referrer` (the customer who brought them: the distributor binding). Unique per customer and kind,
    so concurrent first touches cannot both bind."""

    __tablename__ = "customer_bindings"
    # Brand: all; agent admin and store manager: their stores; guide: the customers bound to them.
    __scope__ = {"store": "store_id", "owner": "guide_id"}

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    guide_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    referrer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    # The touch that made (or last renewed) the binding; None for transfers.
    touch_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(20), default="")
    bound_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    # None: protected for good (客户关系保护期 "permanent").
    protected_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id", "kind"),
        Index("ix_customer_bindings_referrer", "merchant_id", "referrer_customer_id"),
    )


class BindingHistory(IdMixin, Base):
    """Append-only: who moved which customer from whom to whom, why, through which touch, when."""

    __tablename__ = "customer_binding_history"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(20))
    from_guide_id: Mapped[int | None] = mapped_column(BigInteger)
    from_store_id: Mapped[int | None] = mapped_column(BigInteger)
    from_referrer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    to_guide_id: Mapped[int | None] = mapped_column(BigInteger)
    to_store_id: Mapped[int | None] = mapped_column(BigInteger)
    to_referrer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    touch_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor_type: Mapped[str] = mapped_column(String(20), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(String(60), default="")
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_customer_binding_history_customer", "merchant_id", "customer_id", "id"),
        Index("ix_customer_binding_history_merchant", "merchant_id", "id"),
    )


class AttributedOrder(IdMixin, Base):
    """attribution's copy of an order's snapshot (from `order.created`; paid facts from `order.paid`),
    so the source pages and the fission figures read attribution's own rows, never the orders table."""

    __tablename__ = "attributed_orders"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_no: Mapped[str] = mapped_column(String(40), default="")
    customer_id: Mapped[int] = mapped_column(BigInteger)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    guide_id: Mapped[int | None] = mapped_column(BigInteger)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    sharer_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    sharer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    referrer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column(String(20))
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    paid_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "order_id"),
        Index("ix_attributed_orders_customer", "merchant_id", "customer_id", "id"),
    )
