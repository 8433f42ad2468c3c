"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — tables.

A campaign (`TeamBuyCampaign`) sells SKUs of one product at team prices (`TeamBuySku`) to teams of
`team_size`. A team (`Team`) exists from its first paid order on; `paid_count` is its hot counter,
raised only by one conditional UPDATE (`paid_count < size`, still forming, not expired) when a
member's order is paid. A member (`TeamMember`) is written with the order (pending); its `team_id`
is empty while it waits to open a new team. Nobody holds two live places in one team (partial unique
index on team and customer over pending and paid members).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, BigId, IdMixin


class TeamBuyCampaign(IdMixin, Base):
    """A team-buy campaign. `status` is what staff decided; what customers see also follows the window."""

    __tablename__ = "promotions_team_buy_campaigns"
    __table_args__ = (Index("ix_promotions_team_buy_campaigns_merchant_status", "merchant_id", "status"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300), default="")
    product_id: Mapped[int] = mapped_column(BigId)
    team_size: Mapped[int] = mapped_column(Integer)
    time_limit_minutes: Mapped[int] = mapped_column(Integer)
    # Teams a customer may take part in (live memberships); None = no limit.
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    # What a payment that finds its team full (or failed) gets: "refund" or "new_team" (it opens one).
    on_full: Mapped[str] = mapped_column(String(10), default="refund")
    allow_coupons: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_member_discount: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lucky-draw variant (off by default): when a team completes, `lucky_winners` of its members, drawn
    # at random, get the goods and the others are refunded.
    lucky_draw: Mapped[bool] = mapped_column(Boolean, default=False)
    lucky_winners: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    scheduled_at: Mapped[dt.datetime | None]
    paused_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]


class TeamBuySku(IdMixin, Base):
    """One SKU of the campaign's product at its team price."""

    __tablename__ = "promotions_team_buy_skus"
    __table_args__ = (UniqueConstraint("campaign_id", "sku_id", name="uq_promotions_team_buy_skus_sku"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promotions_team_buy_campaigns.id"))
    sku_id: Mapped[int] = mapped_column(BigId)
    team_price_cents: Mapped[int] = mapped_column(BigInteger)


class Team(IdMixin, Base):
    """A team, opened by its first paid order: `paid_count` of `size` seats taken."""

    __tablename__ = "promotions_teams"
    __table_args__ = (
        Index("ix_promotions_teams_campaign_status", "campaign_id", "status", "expires_at"),
        Index("ix_promotions_teams_status_expires", "status", "expires_at"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promotions_team_buy_campaigns.id"))
    leader_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    size: Mapped[int] = mapped_column(Integer)
    paid_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="forming")
    opened_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]


class TeamMember(IdMixin, Base):
    """A customer's place in a team through one order: pending → paid → (refunded), or cancelled."""

    __tablename__ = "promotions_team_members"
    __table_args__ = (
        Index("uq_promotions_team_members_live", "team_id", "customer_id", unique=True,
              sqlite_where=text("status IN ('pending', 'paid')"),
              postgresql_where=text("status IN ('pending', 'paid')")),
        Index("ix_promotions_team_members_campaign_customer", "campaign_id", "customer_id", "status"),
        Index("ix_promotions_team_members_team", "team_id", "status"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promotions_team_buy_campaigns.id"))
    # Empty while the member waits for its payment to open a new team.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("promotions_teams.id"))
    # The team the customer asked to join, when the payment had to open another one instead.
    asked_team_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[int] = mapped_column(BigId, unique=True)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    sku_id: Mapped[int] = mapped_column(BigId)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    # The order's total (what the customer pays for the team purchase).
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lucky-draw teams: True for a member drawn to get the goods, False for one refunded; else None.
    won: Mapped[bool | None] = mapped_column(Boolean)
    # Why the member was refunded: "team_failed", "team_full", "campaign_closed", "lucky_draw", "after_sales".
    refund_reason: Mapped[str] = mapped_column(String(20), default="")
    refund_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    paid_at: Mapped[dt.datetime | None]
    refunded_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
