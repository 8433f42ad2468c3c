"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — tables.

A campaign says how much a pool holds and how many people share it; a pool is one customer's team, its
`members_count` the hot counter taken by one conditional UPDATE (the last seat), its members one row each
(unique per pool and customer), and each member's part the coupon issued when the pool fills."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class SplitCampaign(IdMixin, Base):
    __tablename__ = "promotions_split_campaigns"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(60))
    # The coupon template (fixed amount) each member's part is issued from, at the part's amount.
    template_id: Mapped[int] = mapped_column(BigInteger)
    pool_amount_cents: Mapped[int] = mapped_column(BigInteger)
    team_size: Mapped[int] = mapped_column(Integer)
    split_mode: Mapped[str] = mapped_column(String(10), default="equal")  # equal | random
    floor_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fill_minutes: Mapped[int] = mapped_column(Integer, default=1440)
    # 0 = no limit.
    max_opens_per_customer: Mapped[int] = mapped_column(Integer, default=1)
    max_joins_per_customer: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class SplitPool(IdMixin, Base):
    __tablename__ = "promotions_split_pools"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    opener_id: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    team_size: Mapped[int] = mapped_column(Integer)
    members_count: Mapped[int] = mapped_column(Integer, default=1)
    # The random split is a pure function of this seed, so it can be recomputed and checked.
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="open")
    expires_at: Mapped[dt.datetime]
    filled_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_promotions_split_pools_campaign", "merchant_id", "campaign_id", "status"),
        Index("ix_promotions_split_pools_opener", "merchant_id", "opener_id"),
        Index("ix_promotions_split_pools_due", "status", "expires_at"),
    )


class SplitMember(IdMixin, Base):
    __tablename__ = "promotions_split_members"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    pool_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    # 1 for the opener, then the order of joining.
    seat: Mapped[int] = mapped_column(Integer)
    part_cents: Mapped[int | None] = mapped_column(BigInteger)
    coupon_id: Mapped[int | None] = mapped_column(BigInteger)
    joined_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("pool_id", "customer_id", name="uq_promotions_split_members_customer"),
        UniqueConstraint("pool_id", "seat", name="uq_promotions_split_members_seat"),
        Index("ix_promotions_split_members_customer", "merchant_id", "customer_id", "campaign_id"),
    )
