"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — tables.

A rule says who sees what where and how often; every showing is a `PopupEvent` row (kind impression), and
so are dismissals, clicks, claims and conversions, keyed by the customer or the anonymous visitor; the
frequency caps count impression rows. The live-rule index makes the pop-up slot on every
H5 page one indexed lookup (and nothing more) when the merchant has no live rule."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class PopupRule(IdMixin, Base):
    __tablename__ = "promotions_popup_rules"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(60))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    # new_visitor | new_customer | returning | dormant | tier | tag | everyone
    audience: Mapped[str] = mapped_column(String(16))
    dormant_days: Mapped[int] = mapped_column(Integer, default=0)
    tier_id: Mapped[int | None] = mapped_column(BigInteger)
    tag_id: Mapped[int | None] = mapped_column(BigInteger)
    content_kind: Mapped[str] = mapped_column(String(10))  # coupon | link
    template_id: Mapped[int | None] = mapped_column(BigInteger)
    link_url: Mapped[str] = mapped_column(String(300), default="")
    title: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str] = mapped_column(String(300), default="")
    pages: Mapped[str] = mapped_column(String(10), default="all")  # home | product | all
    cap_per_day: Mapped[int] = mapped_column(Integer, default=1)
    cap_total: Mapped[int] = mapped_column(Integer, default=3)
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    __table_args__ = (Index("ix_promotions_popup_rules_live", "merchant_id", "status", "ends_at"),)


class PopupEvent(IdMixin, Base):
    __tablename__ = "promotions_popup_events"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))  # impression | dismiss | click | claim | conversion
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    visitor_id: Mapped[str | None] = mapped_column(String(40))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # "claim:{rule}:{customer}" on claim rows (NULL on the others): the database refuses a second claim.
    claim_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        Index("ix_promotions_popup_events_customer", "merchant_id", "customer_id", "rule_id", "kind", "at"),
        Index("ix_promotions_popup_events_visitor", "merchant_id", "visitor_id", "rule_id", "kind", "at"),
        Index("ix_promotions_popup_events_rule", "merchant_id", "rule_id", "kind"),
    )
