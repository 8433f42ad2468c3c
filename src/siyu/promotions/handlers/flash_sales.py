"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — reactions to other domains' events.

- order.cancelled (the customer or staff cancelled, or it expired unpaid): the order's units go back to
  the allocation and the customer's count, once.
- order.paid: the flash order counts as paid (the campaign's GMV).
- Refunds give nothing back (see the service's docstring).
- customer.merged: the source customer's flash orders and counts become the target's.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import flash_sales as service


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    if not common.is_goods(event.payload) or not common.may_be_through(event.payload, service.KIND):
        return
    service.release_order(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    if not common.is_goods(event.payload) or not common.may_be_through(event.payload, service.KIND):
        return
    service.mark_paid(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.merge_customers(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                            target_id=int(event.payload["target_id"]))
