"""promotions: coupon templates (the campaign a coupon comes from), coupons (one per claim) and the
per-(template, customer) claim counter that keeps the per-customer limit under concurrency."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class CouponTemplate(IdMixin, Base):
    """What a coupon is worth and who may have it.

    kind: `fixed` (无门槛, `amount_cents` off), `threshold` (满减: `amount_cents` off from
    `threshold_cents`), `percent` (折扣: `percent_bps` off, at most `cap_cents`), `free_shipping`,
    `exchange` (one unit of `exchange_sku_id`, or of any SKU of `exchange_product_id`, free).
    `threshold_cents` is a minimum spend for every kind (0 = none), measured on the lines the coupon
    covers. scope: `all`, `products` (`scope_product_ids`) or `categories` (`scope_category_ids`),
    minus `excluded_product_ids`. validity: `fixed` (coupons valid `starts_at`..`ends_at`) or
    `relative` (valid `valid_days` days from the claim; `starts_at`/`ends_at`, when set, bound the
    claiming window). `total_stock` None = unlimited; `claimed` counts claims (conditional UPDATE).
    `channels`: the ways a coupon of it may be handed out (centre, guide, payment, campaign, split,
    segment)."""

    __tablename__ = "promotions_coupon_templates"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(default=0)
    threshold_cents: Mapped[int] = mapped_column(default=0)
    percent_bps: Mapped[int] = mapped_column(default=0)
    cap_cents: Mapped[int | None]
    exchange_sku_id: Mapped[int | None] = mapped_column(BigInteger)
    exchange_product_id: Mapped[int | None] = mapped_column(BigInteger)
    scope: Mapped[str] = mapped_column(String(20), default="all")
    scope_product_ids: Mapped[list[Any]] = mapped_column(default=list)
    scope_category_ids: Mapped[list[Any]] = mapped_column(default=list)
    excluded_product_ids: Mapped[list[Any]] = mapped_column(default=list)
    validity: Mapped[str] = mapped_column(String(20), default="fixed")
    starts_at: Mapped[dt.datetime | None]
    ends_at: Mapped[dt.datetime | None]
    valid_days: Mapped[int | None]
    total_stock: Mapped[int | None]
    claimed: Mapped[int] = mapped_column(default=0)
    per_customer_limit: Mapped[int] = mapped_column(default=1)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_promotions_coupon_templates_merchant_status", "merchant_id", "status"),)


class CouponClaimCount(IdMixin, Base):
    """How many coupons of a template a customer has claimed: one row per (template, customer),
    raised by a conditional UPDATE (`claimed < limit`) so the per-customer limit holds under
    concurrency on both databases (the row is made first with INSERT … ON CONFLICT DO NOTHING)."""

    __tablename__ = "promotions_coupon_claim_counts"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    template_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    claimed: Mapped[int] = mapped_column(default=0)

    __table_args__ = (UniqueConstraint("template_id", "customer_id"),)


class Coupon(IdMixin, Base):
    """One claimed coupon. `amount_cents` overrides the template's amount (split coupons give
    varying amounts). `order_id`/`order_no` name the order that used it, `discount_cents` what it took
    off there and `order_total_cents` that order's total (the campaign's GMV)."""

    __tablename__ = "promotions_coupons"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    template_id: Mapped[int] = mapped_column(BigInteger, index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="available")
    channel: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str | None] = mapped_column(String(80))
    amount_cents: Mapped[int | None]
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    claimed_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    issued_by: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    order_no: Mapped[str | None] = mapped_column(String(40))
    used_at: Mapped[dt.datetime | None]
    discount_cents: Mapped[int] = mapped_column(default=0)
    order_total_cents: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_promotions_coupons_customer", "merchant_id", "customer_id", "status"),
        Index("ix_promotions_coupons_expiry", "status", "valid_until"),
    )
