"""Reactions to the payments domain's events: a succeeded payment marks its order paid (or is
refunded when the order is gone); a finished provider refund completes the refund request."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import service
from siyu.payments import events as payment_events


@handles(payment_events.PAYMENT_SUCCEEDED)
def on_payment_succeeded(session: Session, event: Event) -> None:
    p = event.payload
    paid_at = dt.datetime.fromisoformat(p["paid_at"]) if p.get("paid_at") else None
    service.record_payment(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                           payment_id=int(p["payment_id"]), amount_cents=int(p["amount_cents"]),
                           paid_at=paid_at or clock.now())


@handles(payment_events.PAYMENT_REFUNDED)
def on_payment_refunded(session: Session, event: Event) -> None:
    service.record_provider_refund(session, merchant_id=event.merchant_id,
                                   payment_refund_id=int(event.payload["refund_id"]))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.move_customer_rows(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                               target_id=int(event.payload["target_id"]))
