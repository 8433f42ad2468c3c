"""Events the orders domain emits (through core.events.emit, in the transaction that changes the
order): frozen dataclasses of ids and amounts, never ORM objects. Any domain may subscribe."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

ORDER_CREATED = "order.created"
ORDER_PAID = "order.paid"
ORDER_SHIPPED = "order.shipped"
ORDER_READY_FOR_PICKUP = "order.ready_for_pickup"
ORDER_COMPLETED = "order.completed"
ORDER_CANCELLED = "order.cancelled"
ORDER_REFUNDED = "order.refunded"


@dataclasses.dataclass(frozen=True)
class EventLine:
    order_line_id: int
    sku_id: int
    product_id: int
    quantity: int
    paid_cents: int


@dataclasses.dataclass(frozen=True)
class OrderCreated:
    order_id: int
    order_no: str
    customer_id: int
    owner_id: int | None
    store_id: int | None
    fulfilment_type: str
    total_cents: int
    payable_cents: int
    lines: list[EventLine]
    adjustments: list[dict[str, Any]]
    payment_parts: list[dict[str, Any]]
    attribution: dict[str, Any]
    kind: str = "goods"


@dataclasses.dataclass(frozen=True)
class OrderPaid:
    order_id: int
    order_no: str
    customer_id: int
    owner_id: int | None
    store_id: int | None
    fulfilment_type: str
    total_cents: int
    paid_cents: int
    payment_id: int | None
    paid_at: dt.datetime
    lines: list[EventLine]
    attribution: dict[str, Any]
    # "goods", or the service a higher domain sold ("recharge", "paid_membership"): reactions meant
    # for goods (points, commissions, stats) skip the others.
    kind: str = "goods"
    # The campaign the order was bought through (Order.promotion: {"kind": …, "campaign_id": …}, {} for
    # none), so that a campaign's reaction to someone else's order returns without a query; None when
    # not known (an order placed before it was kept, or an older event): the reaction looks it up.
    promotion: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class OrderShipped:
    order_id: int
    customer_id: int
    carrier: str
    tracking_no: str
    shipped_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class OrderReadyForPickup:
    order_id: int
    customer_id: int
    pickup_store_id: int | None
    leader_id: int | None


@dataclasses.dataclass(frozen=True)
class OrderCompleted:
    order_id: int
    customer_id: int
    total_cents: int
    completed_at: dt.datetime
    # Commission settlement waits until the after-sales window closes.
    after_sales_closes_at: dt.datetime
    kind: str = "goods"


@dataclasses.dataclass(frozen=True)
class OrderCancelled:
    order_id: int
    customer_id: int
    reason: str
    # Payment parts (points, stored value) taken at creation, to be given back by their owners.
    payment_parts: list[dict[str, Any]]
    cancelled_at: dt.datetime
    kind: str = "goods"
    # As OrderPaid.promotion.
    promotion: dict[str, Any] | None = None
    # delivery | pickup | leader | virtual (None in older events): reactions to one type skip the others.
    fulfilment_type: str | None = None


@dataclasses.dataclass(frozen=True)
class RefundedLine:
    order_line_id: int
    sku_id: int
    product_id: int
    quantity: int
    amount_cents: int


@dataclasses.dataclass(frozen=True)
class OrderRefunded:
    order_id: int
    refund_id: int
    customer_id: int
    # Order value refunded by this refund: money back through the provider plus payment parts.
    amount_cents: int
    money_cents: int
    parts_cents: int
    shipping_cents: int
    lines: list[RefundedLine]
    # Totals after this refund; the order is wholly refunded when `fully_refunded`.
    order_refunded_cents: int
    order_total_cents: int
    fully_refunded: bool
    refunded_at: dt.datetime
    kind: str = "goods"
