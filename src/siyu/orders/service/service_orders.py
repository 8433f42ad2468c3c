"""Service orders: a higher domain sells something that is not goods (a stored-value recharge, a
paid membership) through the normal order and payment flow.

Such an order has `kind` set to what it sells, one line without SKU or stock (`sku_id` and
`product_id` 0), fulfilment "virtual" (the seller's reference in `fulfilment["service"]`), no pricing
pipeline (no coupons, points or stored value: the price is the plan's). It is paid like any order
(POST /orders/{id}/pay), expires and is cancelled like any order, and is completed as soon as it is
paid. The seller learns of it through the order events, whose payload carries `kind`
(order.paid: deliver the service; order.cancelled; order.refunded), and keeps its own row with the
order id. A service order is refunded only through `refund_service_order`, called by the seller
under its own rules (e.g. unused stored value only), never through the customer's after-sales.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import field_error
from siyu.core.events import emit
from siyu.customers import service as customers
from siyu.merchants import service as merchants
from siyu.orders import events as ev
from siyu.orders.models import Order, OrderLine, RefundRequest
from siyu.orders.service.checkout import _customer_id, new_order_no
from siyu.orders.service.common import add_history, settings_from
from siyu.orders.service.refunds import approve_refund, request_refund
from siyu.orders.states import OrderStatus

GOODS = "goods"
MAX_SERVICE_CENTS = 2**31 - 1


def create_service_order(session: Session, *, actor: Principal, kind: str, title: str, amount_cents: int,
                         ref_type: str, ref_id: int, details: dict[str, Any] | None = None) -> Order:
    """Place the customer's order for a service (`kind`, e.g. "recharge") at `amount_cents`, waiting
    for payment and expiring like any order. Its fulfilment snapshot names the seller's row
    (`{"type": "virtual", "service": {kind, ref_type, ref_id, **details}}`). The seller records the
    returned order's id on its own row."""
    customer_id = _customer_id(actor)
    if not kind or kind == GOODS or len(kind) > 20:
        raise field_error("kind", "A service order needs the kind of service it sells.")
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or not 0 < amount_cents <= MAX_SERVICE_CENTS:
        raise field_error("amount_cents", "The amount must be a positive number of cents.")
    owner_id, store_id = customers.assignment_of(session, merchant_id=actor.merchant_id, customer_id=customer_id)
    settings = settings_from(merchants.get_merchant(session, actor.merchant_id).settings)
    now = clock.now()
    fulfilment = {"type": "virtual", "service": {"kind": kind, "ref_type": ref_type, "ref_id": ref_id, **(details or {})}}
    order = Order(
        merchant_id=actor.merchant_id, order_no=new_order_no(now), customer_id=customer_id, owner_id=owner_id,
        store_id=store_id, status=OrderStatus.PENDING_PAYMENT.value, kind=kind, fulfilment_type="virtual",
        fulfilment=fulfilment, subtotal_cents=amount_cents, adjustments_cents=0, shipping_cents=0,
        total_cents=amount_cents, payable_cents=amount_cents, adjustments=[], payment_parts=[], attribution={},
        note="", created_at=now, updated_at=now,
        expires_at=now + dt.timedelta(minutes=settings.order_expiry_minutes),
    )
    session.add(order)
    session.flush()
    line = OrderLine(merchant_id=order.merchant_id, order_id=order.id, sku_id=0, product_id=0, category_id=None,
                     title=title[:200], spec={}, image_url="", unit_price_cents=amount_cents, quantity=1,
                     line_total_cents=amount_cents, discount_cents=0, paid_cents=amount_cents, refunded_quantity=0,
                     refunded_cents=0)
    session.add(line)
    session.flush()
    add_history(session, order, from_status=None, to_status=order.status, actor=actor, at=now)
    emit(session, ev.ORDER_CREATED, ev.OrderCreated(
        order_id=order.id, order_no=order.order_no, customer_id=customer_id, owner_id=owner_id, store_id=store_id,
        fulfilment_type="virtual", total_cents=amount_cents, payable_cents=amount_cents,
        lines=[ev.EventLine(order_line_id=line.id, sku_id=0, product_id=0, quantity=1, paid_cents=amount_cents)],
        adjustments=[], payment_parts=[], attribution={}, kind=kind), merchant_id=order.merchant_id)
    return order


def refund_service_order(session: Session, order_id: int, *, actor: Principal, reason: str) -> RefundRequest:
    """Refund a paid service order in full, at once: a refund request for the whole order, approved
    in the same transaction, the money back through the provider that took it (order.refunded
    follows when the provider confirms). The seller calls this after checking its own rules and
    taking back what it delivered; `actor` is staff with `orders.refund`, or the system."""
    refund = request_refund(session, order_id, actor=actor, reason=reason, source="service")
    return approve_refund(session, refund.id, actor=actor, restock=False)
