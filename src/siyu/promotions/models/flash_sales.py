"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — tables.

A campaign (`FlashSale`) has items (`FlashSaleItem`: a SKU at a flash price with its own allocation,
separate from the SKU's stock). `sold` is the hot counter, raised only by one conditional UPDATE in the
order's transaction. `FlashSaleBuyer` counts a customer's units per item (the per-customer limit, also
raised by a conditional UPDATE). `FlashSaleOrder` records what each order took, so a cancelled order
gives exactly that back, once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, BigId, IdMixin


class FlashSale(IdMixin, Base):
    """A flash-sale campaign. `status` is what staff decided (draft, scheduled, paused, ended; the
    tick moves scheduled → active → ended); what customers see also follows the window."""

    __tablename__ = "promotions_flash_sales"
    __table_args__ = (Index("ix_promotions_flash_sales_merchant_status", "merchant_id", "status"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300), default="")
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="draft")
    allow_coupons: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_member_discount: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    scheduled_at: Mapped[dt.datetime | None]
    paused_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]


class FlashSaleItem(IdMixin, Base):
    """One SKU of a campaign: flash price, allocation (units for sale at that price), units sold."""

    __tablename__ = "promotions_flash_sale_items"
    __table_args__ = (UniqueConstraint("flash_sale_id", "sku_id", name="uq_promotions_flash_sale_items_sku"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    flash_sale_id: Mapped[int] = mapped_column(ForeignKey("promotions_flash_sales.id"))
    sku_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(200), default="")
    image_url: Mapped[str] = mapped_column(String(500), default="")
    flash_price_cents: Mapped[int] = mapped_column(Integer)
    allocation: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    # When the last unit of the allocation was taken (cleared when a cancellation gives units back).
    sold_out_at: Mapped[dt.datetime | None]


class FlashSaleBuyer(IdMixin, Base):
    """Units of an item a customer holds in live flash orders (the per-customer limit's counter)."""

    __tablename__ = "promotions_flash_sale_buyers"
    __table_args__ = (UniqueConstraint("item_id", "customer_id", name="uq_promotions_flash_sale_buyers_item_customer"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("promotions_flash_sale_items.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    bought: Mapped[int] = mapped_column(Integer, default=0)


class FlashSaleOrder(IdMixin, Base):
    """What one order took from a campaign: `taken` → `paid`, or `taken` → `released` (cancelled or
    expired unpaid: the allocation and the customer's count are given back)."""

    __tablename__ = "promotions_flash_sale_orders"
    __table_args__ = (Index("ix_promotions_flash_sale_orders_sale_status", "flash_sale_id", "status"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    flash_sale_id: Mapped[int] = mapped_column(ForeignKey("promotions_flash_sales.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("promotions_flash_sale_items.id"))
    order_id: Mapped[int] = mapped_column(BigId, unique=True)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # What the customer pays for the line (after any discount the campaign allows).
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="taken")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    paid_at: Mapped[dt.datetime | None]
    released_at: Mapped[dt.datetime | None]
