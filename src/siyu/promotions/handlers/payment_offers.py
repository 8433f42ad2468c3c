"""promotions: payment marketing (支付营销) — reactions: a paid goods order converts earlier offers; merges move shows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import payment_offers


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("kind", "goods") != "goods" or not common.met_before_paying(session, event, "payment_offers"):
        return
    paid_at = common.paid_at_of(p)
    payment_offers.record_conversion(session, merchant_id=event.merchant_id, customer_id=int(p["customer_id"]),
                                     order_id=int(p["order_id"]), paid_at=paid_at)


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    p = event.payload
    payment_offers.move_customer(session, merchant_id=event.merchant_id, source_id=int(p["source_id"]),
                                 target_id=int(p["target_id"]))
