"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — reactions to other domains' events.

A bargain follows the order placed at its price: paid → bought, cancelled → open again (or expired)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import bargains


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if not common.is_goods(p) or not common.may_be_through(p, "bargain"):
        return
    paid_at = common.paid_at_of(p)
    bargains.mark_paid(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                       paid_cents=int(p.get("total_cents") or 0), paid_at=paid_at)


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    if not common.is_goods(event.payload) or not common.may_be_through(event.payload, "bargain"):
        return
    bargains.give_back(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    p = event.payload
    bargains.merge_customers(session, merchant_id=event.merchant_id, source_id=int(p["source_id"]),
                             target_id=int(p["target_id"]))
