"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — tables.

A campaign (`LadderCampaign`) sells one SKU at tiered prices: `tiers` is a list of
{"min_participants", "price_cents"}, thresholds rising, prices strictly falling. A participant is a
distinct customer with a paid, not wholly refunded order in the campaign (`participants_count`, kept
by the order handlers under the campaign row's lock). Each order is a `LadderEntry` carrying the unit
price it paid; at the end the difference to the final price goes back once per entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, BigId, IdMixin


class LadderCampaign(IdMixin, Base):
    __tablename__ = "promotions_ladder_campaigns"
    __table_args__ = (Index("ix_promotions_ladder_campaigns_merchant_status", "merchant_id", "status"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(60))
    sku_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId)
    item_title: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str] = mapped_column(String(500), default="")
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    allow_coupons: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_member_discount: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    participants_count: Mapped[int] = mapped_column(Integer, default=0)
    final_price_cents: Mapped[int | None] = mapped_column(Integer)
    settled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class LadderEntry(IdMixin, Base):
    """One order in a ladder campaign: units, the unit price paid, and the difference refunded at the end."""

    __tablename__ = "promotions_ladder_entries"
    __table_args__ = (Index("ix_promotions_ladder_entries_campaign_status", "campaign_id", "status"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promotions_ladder_campaigns.id"))
    order_id: Mapped[int] = mapped_column(BigId, unique=True)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    paid_at: Mapped[dt.datetime | None]
    refund_id: Mapped[int | None] = mapped_column(BigId)
    refund_cents: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
