"""membership: stored value's reactions to order events.

order.paid of a recharge order credits the recharge; order.cancelled gives back a stored-value
payment part (or cancels a pending recharge); order.refunded returns the stored-value share of a
refund's payment parts; customer.merged moves the source's balances to the target. Every reaction is idempotent (keyed ledger entries, rows locked)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.membership.service import stored_value as service
from siyu.orders import events as order_events


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    if event.payload.get("kind") == service.ORDER_KIND:
        service.credit_recharge(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    order_id = int(event.payload["order_id"])
    if event.payload.get("kind") == service.ORDER_KIND:
        service.cancel_recharge(session, merchant_id=event.merchant_id, order_id=order_id)
        return
    if any(p.get("kind") == service.PART_KIND for p in event.payload.get("payment_parts") or []):
        service.return_order_part(session, merchant_id=event.merchant_id, order_id=order_id)


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    p = event.payload
    if int(p.get("parts_cents") or 0) <= 0 and not p.get("fully_refunded"):
        return
    service.refund_order_part(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                              refund_id=int(p["refund_id"]), parts_cents=int(p.get("parts_cents") or 0),
                              fully_refunded=bool(p.get("fully_refunded")))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                          target_id=int(event.payload["target_id"]))
