"""promotions: payment marketing (支付营销): what the payment result page offers — tables.

A rule matches a paid order (amount range, new or returning customer, tier, store) and offers a coupon,
a gift pack or a link; each time an order's page shows an offer, one `PaymentOfferShow` row records it
(one per order), and its claim, click and conversion are stamped on that row."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class PaymentOfferRule(IdMixin, Base):
    __tablename__ = "promotions_payment_offer_rules"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(60))
    # Lower first.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    min_paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    max_paid_cents: Mapped[int | None] = mapped_column(BigInteger)
    customer_type: Mapped[str] = mapped_column(String(12), default="any")  # any | new | returning
    tier_id: Mapped[int | None] = mapped_column(BigInteger)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    offer_kind: Mapped[str] = mapped_column(String(12))  # coupon | gift_pack | link
    template_ids: Mapped[list[Any]] = mapped_column(default=list)
    link_url: Mapped[str] = mapped_column(String(300), default="")
    title: Mapped[str] = mapped_column(String(60), default="")
    # Days after the show within which a paid order counts as a conversion.
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class PaymentOfferShow(IdMixin, Base):
    __tablename__ = "promotions_payment_offer_shows"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    shown_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    claimed_at: Mapped[dt.datetime | None]
    coupon_ids: Mapped[list[Any]] = mapped_column(default=list)
    clicked_at: Mapped[dt.datetime | None]
    converted_order_id: Mapped[int | None] = mapped_column(BigInteger)
    converted_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("order_id", name="uq_promotions_payment_offer_shows_order"),
        Index("ix_promotions_payment_offer_shows_customer", "merchant_id", "customer_id", "shown_at"),
        Index("ix_promotions_payment_offer_shows_rule", "merchant_id", "rule_id"),
    )
