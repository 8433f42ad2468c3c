"""promotions: interactive pop-ups (互动营销) — reactions: conversions on paid goods orders, a visitor's rows to the
customer at sign-in, merges."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import popups


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("kind", "goods") != "goods" or not common.met_before_paying(session, event, "popups"):
        return
    paid_at = common.paid_at_of(p)
    popups.record_conversion(session, merchant_id=event.merchant_id, customer_id=int(p["customer_id"]),
                             order_id=int(p["order_id"]), paid_at=paid_at)


@handles(customer_events.CUSTOMER_SIGNED_IN)
def on_signed_in(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("visitor_id"):
        popups.give_visitor_rows(session, merchant_id=event.merchant_id, visitor_id=str(p["visitor_id"])[:40],
                                 customer_id=int(p["customer_id"]))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    p = event.payload
    popups.move_customer(session, merchant_id=event.merchant_id, source_id=int(p["source_id"]),
                         target_id=int(p["target_id"]))
