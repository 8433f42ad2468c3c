"""Keep the analytics aggregates current (see `siyu.analytics.service.aggregates`):
- `order.paid` (inline on every checkout, so a few statements): the sale joins its day's bucket and the
  customer's row takes it, from the event's payload (the order is not loaded);
- `order.refunded`: the refund is booked to the sale's bucket; the customer's row is recomputed;
- `customer.merged`: both customers' rows are recomputed (their orders have moved to the target).
Orders whose kind is not "goods" (recharges, paid memberships) are not sales and are skipped, and so are
events written before the merchant's last rebuild (it read their effects from the orders)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates, people
from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.orders import service as orders


@handles(order_events.ORDER_PAID)
def count_paid_order(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("kind", "goods") != "goods":
        return
    marks = aggregates.aggregate_marks(session, merchant_id=event.merchant_id)
    if aggregates.event_counted(marks, event.id):
        return
    aggregates.on_order_paid(session, merchant_id=event.merchant_id, fact=orders.fact_of_paid_event(p), marks=marks)


@handles(order_events.ORDER_REFUNDED)
def count_refund(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("kind", "goods") != "goods" or aggregates.counted(session, merchant_id=event.merchant_id,
                                                               event_id=event.id):
        return
    aggregates.on_order_refunded(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                                 customer_id=int(p["customer_id"]), amount_cents=int(p["amount_cents"]))


@handles(customer_events.CUSTOMER_MERGED)
def move_merged_stats(session: Session, event: Event) -> None:
    if aggregates.counted(session, merchant_id=event.merchant_id, event_id=event.id):
        return
    aggregates.on_customer_merged(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                                  target_id=int(event.payload["target_id"]))


@handles(customer_events.CUSTOMER_SIGNED_IN)
def count_signed_in_visitor(session: Session, event: Event) -> None:
    """A visitor signed in: attribution gave their anonymous funnel events to the customer (its handler
    is registered first), so both people's counted days are counted again."""
    p = event.payload
    if aggregates.counted(session, merchant_id=event.merchant_id, event_id=event.id):
        return
    people.on_signed_in(session, merchant_id=event.merchant_id, customer_id=int(p["customer_id"]),
                        visitor_id=p.get("visitor_id"))
