"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — tables.

A campaign (`BargainCampaign`) sells one SKU from a start price down to a floor price, reached after
`expected_assists` assists. A customer's `Bargain` holds its current price; each friend's `BargainAssist`
records the cut (unique per bargain and friend), so the cuts always sum to start − current.
`BargainRateHit` counts assists per visitor and per device id in hourly windows (anti-abuse; in the
database, never in process memory).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, BigId, IdMixin


class BargainCampaign(IdMixin, Base):
    """A bargain campaign: one SKU, start and floor price, assists expected to reach the floor, the
    time a bargain stays open, how many bargains one customer may start, the weight of new
    customers' cuts (basis points, 10000 = the same as others) and whether the starter may buy at
    the current price before the floor."""

    __tablename__ = "promotions_bargain_campaigns"
    __table_args__ = (
        Index("ix_promotions_bargain_campaigns_merchant_status", "merchant_id", "status"),
        CheckConstraint("floor_price_cents >= 0 AND floor_price_cents < start_price_cents",
                        name="promotions_bargain_campaigns_prices"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(60))
    sku_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId)
    item_title: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str] = mapped_column(String(500), default="")
    start_price_cents: Mapped[int] = mapped_column(Integer)
    floor_price_cents: Mapped[int] = mapped_column(Integer)
    expected_assists: Mapped[int] = mapped_column(Integer)
    time_limit_minutes: Mapped[int] = mapped_column(Integer)
    max_bargains_per_customer: Mapped[int] = mapped_column(Integer, default=1)
    new_customer_weight_bps: Mapped[int] = mapped_column(Integer, default=10000)
    allow_buy_at_current: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Bargain(IdMixin, Base):
    """One customer's bargain: its price now, the assists so far, until when friends can help."""

    __tablename__ = "promotions_bargains"
    __table_args__ = (
        Index("ix_promotions_bargains_campaign_customer", "campaign_id", "customer_id"),
        Index("ix_promotions_bargains_status_expires", "status", "expires_at"),
        CheckConstraint("current_price_cents >= floor_price_cents", name="promotions_bargains_floor"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promotions_bargain_campaigns.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    start_price_cents: Mapped[int] = mapped_column(Integer)
    floor_price_cents: Mapped[int] = mapped_column(Integer)
    current_price_cents: Mapped[int] = mapped_column(Integer)
    expected_assists: Mapped[int] = mapped_column(Integer)
    assists_count: Mapped[int] = mapped_column(Integer, default=0)
    # Seeds the random factor of each assist's cut (with the assist's number): replayable.
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="open")
    expires_at: Mapped[dt.datetime]
    order_id: Mapped[int | None] = mapped_column(BigId)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    bought_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class BargainAssist(IdMixin, Base):
    """A friend's help: the cut it made. One per friend per bargain."""

    __tablename__ = "promotions_bargain_assists"
    __table_args__ = (
        UniqueConstraint("bargain_id", "helper_customer_id", name="uq_promotions_bargain_assists_helper"),
        CheckConstraint("cut_cents >= 1", name="promotions_bargain_assists_cut"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    bargain_id: Mapped[int] = mapped_column(ForeignKey("promotions_bargains.id"))
    helper_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    helper_name: Mapped[str] = mapped_column(String(64), default="")
    cut_cents: Mapped[int] = mapped_column(Integer)
    # The assist's number within its bargain (1, 2, …) and the price after it.
    seq: Mapped[int] = mapped_column(Integer)
    price_after_cents: Mapped[int] = mapped_column(Integer)
    new_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    visitor_id: Mapped[str] = mapped_column(String(40), default="")
    device_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class BargainRateHit(IdMixin, Base):
    """Assists counted per key ("visitor:<id>" or "device:<id>") in an hourly window."""

    __tablename__ = "promotions_bargain_rate_hits"
    __table_args__ = (UniqueConstraint("merchant_id", "key", "window_start", name="uq_promotions_bargain_rate_hits"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    key: Mapped[str] = mapped_column(String(80))
    window_start: Mapped[dt.datetime]
    hits: Mapped[int] = mapped_column(Integer, default=0)
