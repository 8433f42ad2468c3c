"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — reactions to other domains' events.

An order in a ladder campaign is counted when paid and uncounted when cancelled or wholly refunded
before the end."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import ladders


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if not common.is_goods(p) or not common.may_be_through(p, "ladder"):
        return
    paid_at = common.paid_at_of(p)
    ladders.mark_paid(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]), paid_at=paid_at)


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    if not common.is_goods(event.payload) or not common.may_be_through(event.payload, "ladder"):
        return
    ladders.void_entry(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    p = event.payload
    if not common.is_goods(p) or not p.get("fully_refunded"):
        return
    ladders.void_entry(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    p = event.payload
    ladders.merge_customers(session, merchant_id=event.merchant_id, source_id=int(p["source_id"]),
                            target_id=int(p["target_id"]))
