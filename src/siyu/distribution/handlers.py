"""Reactions to orders: commission accrues when an order is paid, is reversed when it is refunded, and
is scheduled to settle when the order completes (after its after-sales window). A merged customer's
distributor record follows them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.distribution import service
from siyu.orders import events as order_events


def _goods(event: Event) -> bool:
    """Commission is earned on goods only (not on recharges or paid memberships)."""
    return event.payload.get("kind", "goods") == "goods"


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    if not _goods(event):
        return
    service.accrue_order(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    if not _goods(event):
        return
    service.reverse_order(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_COMPLETED)
def on_order_completed(session: Session, event: Event) -> None:
    if not _goods(event):
        return
    closes = dt.datetime.fromisoformat(event.payload["after_sales_closes_at"])
    service.schedule_settlement(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]),
                                closes_at=closes)


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                          target_id=int(event.payload["target_id"]))
