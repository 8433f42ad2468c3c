"""attribution: shares tables. A share (a short code for one target, by one sharer, for one channel), the
touches made by opening shares (or scanning codes, following callbacks), the fission edges that say who
brought whom, and the narrow funnel-event rows analytics scans by (merchant, day)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class Share(IdMixin, Base):
    """A share link: `/s/{code}` opens `target_type`/`target_id` and records a touch for the sharer."""

    __tablename__ = "attribution_shares"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    # Short and unguessable (random, not sequential); unique across the installation like the URL it is in.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    target_type: Mapped[str] = mapped_column(String(20))
    # 0 for a target without an id (the shop home page).
    target_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Exactly one of the two sharers for a share made by a person; none for an anonymous code.
    sharer_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    sharer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    # The channel a touch gets when the link does not say (`?ch=`).
    channel: Mapped[str] = mapped_column(String(20))
    # A campaign name grouping shares beyond their target (e.g. "spring-sale"); None: the target is the campaign.
    campaign: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_attribution_shares_target", "merchant_id", "target_type", "target_id"),
        Index("ix_attribution_shares_staff", "merchant_id", "sharer_staff_id"),
        Index("ix_attribution_shares_customer", "merchant_id", "sharer_customer_id"),
    )


class Touch(IdMixin, Base):
    """One contact of a visitor or customer with the merchant through a channel (a share opened, a code
    scanned, an official-account follow). Anonymous touches carry the visitor id and get the customer id
    when that visitor signs in."""

    __tablename__ = "attribution_touches"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(20))
    share_id: Mapped[int | None] = mapped_column(BigInteger)
    share_code: Mapped[str | None] = mapped_column(String(16))
    sharer_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    sharer_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    target_type: Mapped[str | None] = mapped_column(String(20))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    campaign: Mapped[str | None] = mapped_column(String(60))
    visitor_id: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_attribution_touches_customer", "merchant_id", "customer_id", "at"),
        Index("ix_attribution_touches_visitor", "merchant_id", "visitor_id", "at"),
        Index("ix_attribution_touches_share", "merchant_id", "share_id"),
        Index("ix_attribution_touches_at", "merchant_id", "at"),
    )


class FissionEdge(IdMixin, Base):
    """Who brought a customer: the sharer of the customer's first-ever touch that has a sharer (never the
    customer themself). One row per customer; an earlier touch found later (stitching) replaces it."""

    __tablename__ = "attribution_fission_edges"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    by_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    touch_id: Mapped[int] = mapped_column(BigInteger)
    share_id: Mapped[int | None] = mapped_column(BigInteger)
    # The share's campaign, else "<target_type>:<target_id>".
    campaign: Mapped[str | None] = mapped_column(String(60))
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id"),
        Index("ix_attribution_fission_edges_by_customer", "merchant_id", "by_customer_id"),
        Index("ix_attribution_fission_edges_by_staff", "merchant_id", "by_staff_id"),
        Index("ix_attribution_fission_edges_campaign", "merchant_id", "campaign"),
    )


class FunnelEvent(IdMixin, Base):
    """One funnel step (exposure, view, add to cart, order, pay), kept narrow for bulk scans by
    (merchant_id, day): `kind` is a small code (FUNNEL_KINDS in the service), `day` the Shanghai date.
    Each row carries the last touch of its customer or visitor at the time (touch, channel, share)."""

    __tablename__ = "attribution_funnel_events"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[int] = mapped_column(SmallInteger)
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    day: Mapped[dt.date] = mapped_column(Date)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    visitor_id: Mapped[str | None] = mapped_column(String(40))
    touch_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column(String(20))
    share_id: Mapped[int | None] = mapped_column(BigInteger)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index("ix_attribution_funnel_events_day", "merchant_id", "day", "kind"),
        Index("ix_attribution_funnel_events_customer", "merchant_id", "customer_id"),
        Index("ix_attribution_funnel_events_visitor", "merchant_id", "visitor_id"),
        Index("ix_attribution_funnel_events_share", "merchant_id", "share_id"),
    )
