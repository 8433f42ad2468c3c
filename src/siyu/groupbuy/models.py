"""Group buying tables: compounds and community groups (the community map), leaders and their pickup
points, the customer's remembered point, waves and their items, the wave's orders and lines, the
cut-off snapshot (manifest lines), commissions, and customer notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class Compound(IdMixin, Base):
    """A residential compound (小区) or development (楼盘): where leaders and groups are planned."""

    __tablename__ = "groupbuy_compounds"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(40), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    households: Mapped[int] = mapped_column(Integer, default=0)
    # For a new development: when the homes are handed over (people move in).
    delivery_date: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class CommunityGroup(IdMixin, Base):
    """A community group (usually a WeChat group) of a compound, run by a leader or another owner."""

    __tablename__ = "groupbuy_groups"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("groupbuy_compounds.id"), index=True)
    leader_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_name: Mapped[str] = mapped_column(String(40), default="")
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Leader(IdMixin, Base):
    """A community leader (团长) and their pickup point (自提点): a shop customer who applied and was
    approved. One point per leader."""

    __tablename__ = "groupbuy_leaders"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20))
    point_name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200))
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("groupbuy_compounds.id"), index=True)
    compound_name: Mapped[str] = mapped_column(String(80), default="")
    region: Mapped[str] = mapped_column(String(40), default="")
    # The delivery route the point is on (the manifest groups by it).
    route: Mapped[str] = mapped_column(String(40), default="")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    opening_hours: Mapped[str] = mapped_column(String(60), default="")
    photo_url: Mapped[str] = mapped_column(String(500), default="")
    # The leader's own commission rate; a wave or a wave item may set another.
    commission_bps: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    applied_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    approved_at: Mapped[dt.datetime | None]
    approved_by: Mapped[int | None] = mapped_column(BigInteger)
    frozen_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    reject_reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id"),
        # The bounding-box prefilter of the nearest-point search: a range on latitude within the
        # merchant's active points, longitude checked from the index too.
        Index("ix_groupbuy_leaders_geo", "merchant_id", "status", "latitude", "longitude"),
    )


class CustomerPoint(IdMixin, Base):
    """The pickup point a customer chose last (sticky)."""

    __tablename__ = "groupbuy_customer_points"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    leader_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_leaders.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "customer_id"),)


class Wave(IdMixin, Base):
    """A group-buy wave (团购活动): items at group prices, open from `starts_at` to `cutoff_at`,
    delivered to the points on `delivery_date`."""

    __tablename__ = "groupbuy_waves"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(12))
    starts_at: Mapped[dt.datetime]
    cutoff_at: Mapped[dt.datetime]
    delivery_date: Mapped[dt.date] = mapped_column(Date)
    # Empty lists: every active point. Else the points listed and the points of the regions listed.
    leader_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    regions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The wave's commission rate for its leaders (items may override; None: the leader's own rate).
    commission_bps: Mapped[int | None] = mapped_column(Integer)
    # Orders that made the wave (the commit step counts them under the wave row's lock).
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    opened_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_groupbuy_waves_status", "merchant_id", "status", "cutoff_at"),)


class WaveItem(IdMixin, Base):
    """A SKU in a wave: its group price, the stock allocated to the wave and what has been sold."""

    __tablename__ = "groupbuy_wave_items"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    wave_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_waves.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    image_url: Mapped[str] = mapped_column(String(500), default="")
    list_price_cents: Mapped[int] = mapped_column(BigInteger)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    allocation: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    commission_bps: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("wave_id", "sku_id"),)


class WaveOrder(IdMixin, Base):
    """An order that made a wave, at a leader's point, with its pickup code."""

    __tablename__ = "groupbuy_orders"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    wave_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_waves.id"))
    leader_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_leaders.id"))
    # The point the customer chose, when the order was moved to another (the first point closed).
    original_leader_id: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    order_no: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    customer_name: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))
    pickup_code: Mapped[str] = mapped_column(String(8))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    paid_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    picked_up_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    # Set by the follow-up job: delivered but not picked up after `pickup_overdue_days`.
    overdue_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_groupbuy_orders_wave", "wave_id", "leader_id", "status"),
        Index("ix_groupbuy_orders_leader", "leader_id", "status", "id"),
        Index("ix_groupbuy_orders_customer", "merchant_id", "customer_id", "id"),
        # A pickup code names one open order at its point.
        Index("uq_groupbuy_orders_open_code", "leader_id", "pickup_code", unique=True,
              sqlite_where=text("status IN ('pending_payment', 'paid', 'delivered')"),
              postgresql_where=text("status IN ('pending_payment', 'paid', 'delivered')")),
    )


class WaveOrderLine(IdMixin, Base):
    """A line of a wave order: which wave item, how many, what was paid; delivery and shortage."""

    __tablename__ = "groupbuy_order_lines"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    wave_order_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_orders.id"), index=True)
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_line_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    wave_item_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_wave_items.id"))
    sku_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    paid_cents: Mapped[int] = mapped_column(BigInteger)
    short_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class ManifestLine(IdMixin, Base):
    """The cut-off snapshot: one row per paid order line that made the wave. The purchase list, the
    sorting list and the delivery manifest are groupings of these rows."""

    __tablename__ = "groupbuy_manifest_lines"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    wave_id: Mapped[int] = mapped_column(ForeignKey("groupbuy_waves.id"), index=True)
    route: Mapped[str] = mapped_column(String(40), default="")
    leader_id: Mapped[int] = mapped_column(BigInteger)
    leader_name: Mapped[str] = mapped_column(String(40))
    point_name: Mapped[str] = mapped_column(String(80))
    point_address: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    customer_name: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_no: Mapped[str] = mapped_column(String(32))
    pickup_code: Mapped[str] = mapped_column(String(8))
    order_line_id: Mapped[int] = mapped_column(BigInteger)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    paid_cents: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("wave_id", "order_line_id"),)


class Commission(IdMixin, Base):
    """A leader's commission on one order line: accrued when paid (pending), settled after pickup and
    the after-sales window, reduced by refunds. Balances live in the ledger (see service.commissions)."""

    __tablename__ = "groupbuy_commissions"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    leader_id: Mapped[int] = mapped_column(BigInteger)
    wave_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_line_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    base_cents: Mapped[int] = mapped_column(BigInteger)
    bps: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reversed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    settle_after: Mapped[dt.datetime | None]
    settled_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_groupbuy_commissions_leader", "leader_id", "status"),
        Index("ix_groupbuy_commissions_due", "merchant_id", "status", "settle_after"),
        Index("ix_groupbuy_commissions_order", "order_id"),
    )


class Notification(IdMixin, Base):
    """A message to a customer about their group-buy order (there is no message outbox yet; this row
    is what the H5 shows and what a messaging domain can send on)."""

    __tablename__ = "groupbuy_notifications"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(30))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    read_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_groupbuy_notifications_customer", "merchant_id", "customer_id", "id"),)
