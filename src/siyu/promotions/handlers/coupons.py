"""promotions: coupons — reactions to other domains' events: a cancelled order gives its coupons back
(available while still valid, else expired), a wholly refunded order gives back the ones still valid,
and a merged customer's coupons move to the customer kept."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.service import coupons


def _goods(event: Event) -> bool:
    return str(event.payload.get("kind") or "goods") == "goods"


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    if not _goods(event):
        return
    coupons.give_back(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]),
                      only_unexpired=False)


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    if not _goods(event) or not event.payload.get("fully_refunded"):
        return
    coupons.give_back(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]),
                      only_unexpired=True)


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    coupons.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                          target_id=int(event.payload["target_id"]))
