"""membership: member cards, tiers, growth value, check-ins and paid-membership plans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class MembershipConfig(IdMixin, Base):
    """A merchant's points and tier rules (one row per merchant; defaults when missing)."""

    __tablename__ = "membership_configs"

    merchant_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Tier(IdMixin, Base):
    """A member tier (会员等级): reached by growth value, with its benefits."""

    __tablename__ = "membership_tiers"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(40))
    # Growth value (within the evaluation window) needed to reach it; the lowest tier needs 0.
    growth_threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    # The discount applies to these products / categories; both empty = every product.
    discount_product_ids: Mapped[list[Any]] = mapped_column(default=list)
    discount_category_ids: Mapped[list[Any]] = mapped_column(default=list)
    points_multiplier_bps: Mapped[int] = mapped_column(Integer, default=10000)
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    birthday_points: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)


class Member(IdMixin, Base):
    """A customer's member card (one per customer), its growth value and tier."""

    __tablename__ = "membership_members"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    card_no: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str] = mapped_column(String(20), default="")
    name: Mapped[str] = mapped_column(String(64), default="")
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    growth: Mapped[int] = mapped_column(BigInteger, default=0)  # lifetime growth value
    tier_id: Mapped[int | None] = mapped_column(BigInteger)  # the tier earned by growth
    tier_since: Mapped[dt.datetime | None]
    # When the earned tier is next reviewed for a downgrade, and the grace period once it falls short.
    review_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    grace_until: Mapped[dt.datetime | None]
    # A bought tier (付费会员) until `paid_until`; the better of the two applies.
    paid_tier_id: Mapped[int | None] = mapped_column(BigInteger)
    paid_until: Mapped[dt.datetime | None]
    last_checkin_on: Mapped[dt.date | None] = mapped_column(Date)
    checkin_streak: Mapped[int] = mapped_column(Integer, default=0)
    profile_rewarded: Mapped[bool] = mapped_column(Boolean, default=False)
    birthday_gift_year: Mapped[int | None] = mapped_column(Integer)
    activated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id"),
        UniqueConstraint("merchant_id", "card_no"),
    )


class GrowthEntry(IdMixin, Base):
    """One change of a member's growth value (append-only); tier qualification sums a window of them."""

    __tablename__ = "membership_growth_entries"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    ref_type: Mapped[str | None] = mapped_column(String(30))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_membership_growth_member", "member_id", "created_at"),
    )


class TierChange(IdMixin, Base):
    """The history of a member's tier: upgrades, grace started, downgrades, paid tiers."""

    __tablename__ = "membership_tier_changes"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger, index=True)
    from_tier_id: Mapped[int | None] = mapped_column(BigInteger)
    to_tier_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))  # upgrade | downgrade | grace | kept | paid
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class PaidMembershipPlan(IdMixin, Base):
    """Buy a tier for N days (付费会员)."""

    __tablename__ = "membership_paid_plans"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(40))
    tier_id: Mapped[int] = mapped_column(BigInteger)
    days: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class PaidMembershipPurchase(IdMixin, Base):
    """A bought plan, granted when its payment succeeds (once)."""

    __tablename__ = "membership_paid_purchases"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    plan_id: Mapped[int] = mapped_column(BigInteger)
    tier_id: Mapped[int] = mapped_column(BigInteger)
    days: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | granted | cancelled
    ref_type: Mapped[str] = mapped_column(String(30), default="")
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    granted_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    granted_at: Mapped[dt.datetime | None]
