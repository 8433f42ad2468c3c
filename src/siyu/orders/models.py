"""Cart, address book, orders with their snapshot lines and history, and after-sales refunds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class CartLine(IdMixin, Base):
    __tablename__ = "cart_lines"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    sku_id: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    selected: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    __table_args__ = (UniqueConstraint("customer_id", "sku_id"),)


class CustomerAddress(IdMixin, Base):
    """An entry of a customer's address book."""

    __tablename__ = "customer_addresses"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(40))
    city: Mapped[str] = mapped_column(String(40))
    district: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Order(IdMixin, Base):
    """An order and the snapshot of what was bought, how it was priced and how it is fulfilled."""

    __tablename__ = "orders"
    # Brand: all; agent admin and store manager: their stores' orders; guide: their own customers'.
    __scope__ = {"store": "store_id", "owner": "owner_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The guide who owned the customer when the order was placed (copied, so a later transfer
    # does not rewrite history).
    owner_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The store the order belongs to: the pickup store, else the customer's store.
    store_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(20))
    # "goods" (SKUs, stock, shipping), or a service sold through the same checkout and payment by a
    # higher domain ("recharge", "paid_membership"): one line without SKU or stock, fulfilment
    # "virtual", completed on payment (see service/service_orders.py).
    kind: Mapped[str] = mapped_column(String(20), default="goods", server_default="goods")
    # The status to return to when a whole-order refund request is rejected.
    status_before_refund: Mapped[str | None] = mapped_column(String(20))
    # Set while another domain holds the goods back (a team purchase still forming): the order is paid
    # but must not be shipped or handed over yet. None = free to fulfil.
    fulfilment_hold: Mapped[str | None] = mapped_column(String(40))

    fulfilment_type: Mapped[str] = mapped_column(String(10))  # delivery | pickup | leader | virtual
    fulfilment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pickup_store_id: Mapped[int | None] = mapped_column(BigInteger)
    leader_id: Mapped[int | None] = mapped_column(BigInteger)
    pickup_code: Mapped[str | None] = mapped_column(String(8))
    carrier: Mapped[str] = mapped_column(String(40), default="")
    tracking_no: Mapped[str] = mapped_column(String(60), default="")

    subtotal_cents: Mapped[int] = mapped_column(BigInteger)
    adjustments_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    # What a payment provider has to take: total minus payment parts (points, stored value).
    payable_cents: Mapped[int] = mapped_column(BigInteger)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # Order value refunded so far (money and payment parts together).
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustments: Mapped[list[Any]] = mapped_column(default=list)
    payment_parts: Mapped[list[Any]] = mapped_column(default=list)
    # Who brought the sale (sharer, guide, store, channel); the attribution domain fills it.
    attribution: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The campaign chosen at checkout (CheckoutRequest.promotion without its empty keys, e.g.
    # {"kind": "flash_sale", "campaign_id": 7}; {} for none). The order's events carry it, so the
    # reactions of the other campaigns return without a query. NULL on orders placed before it was kept.
    promotion: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    cancel_reason: Mapped[str] = mapped_column(String(40), default="")
    payment_id: Mapped[int | None] = mapped_column(BigInteger)

    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    expires_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    shipped_at: Mapped[dt.datetime | None]
    ready_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    refunded_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_orders_merchant_id_desc", "merchant_id", "id"),
        Index("ix_orders_customer", "customer_id", "id"),
        Index("ix_orders_merchant_status", "merchant_id", "status", "expires_at"),
        Index("ix_orders_merchant_paid_at", "merchant_id", "paid_at"),
        # A pickup code is unique among the merchant's orders waiting for pickup.
        Index("uq_orders_open_pickup_code", "merchant_id", "pickup_code", unique=True,
              sqlite_where=text("status = 'ready_for_pickup'"),
              postgresql_where=text("status = 'ready_for_pickup'")),
    )


class OrderLine(IdMixin, Base):
    """One bought SKU, as it was when bought."""

    __tablename__ = "order_lines"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    category_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    image_url: Mapped[str] = mapped_column(String(500), default="")
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total_cents: Mapped[int] = mapped_column(BigInteger)
    # This line's share of the order's adjustments (negative for discounts).
    discount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # line_total + discount: what the customer paid for this line, the base of its refunds.
    paid_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class OrderHistory(IdMixin, Base):
    """One status change of an order: from, to, who and when."""

    __tablename__ = "order_history"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class RefundRequest(IdMixin, Base):
    """An after-sales request: the whole order or some units of some lines."""

    __tablename__ = "refund_requests"
    __scope__ = {"store": "store_id", "owner": "owner_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))  # pending | processing | refunded | rejected
    whole_order: Mapped[bool] = mapped_column(Boolean, default=False)
    # Order value refunded: money back through the provider plus payment parts given back.
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    money_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    parts_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(200))
    photos: Mapped[list[Any]] = mapped_column(default=list)
    reject_reason: Mapped[str] = mapped_column(String(200), default="")
    restock: Mapped[bool] = mapped_column(Boolean, default=False)
    # "customer" (an after-sales request) or "system" (a late payment refunded automatically).
    source: Mapped[str] = mapped_column(String(20), default="customer")
    payment_refund_id: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_at: Mapped[dt.datetime | None]
    refunded_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_refund_requests_merchant_status", "merchant_id", "status", "id"),)


class RefundLine(IdMixin, Base):
    __tablename__ = "refund_lines"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refund_requests.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)

