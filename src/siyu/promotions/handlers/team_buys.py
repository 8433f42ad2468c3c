"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — reactions to other domains' events.

order.paid takes the member's seat (or opens its team, or refunds/moves the loser of the last seat);
order.cancelled gives a pending place up; order.refunded (after-sales) gives a forming team's seat
back; customer.merged moves the places. Service orders (kind != goods) are never team orders."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events
from siyu.promotions.handlers import common
from siyu.promotions.service import team_buys as service


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    if common.is_goods(event.payload) and common.may_be_through(event.payload, "team_buy"):
        service.record_paid(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    if common.is_goods(event.payload) and common.may_be_through(event.payload, "team_buy"):
        service.record_cancelled(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    if common.is_goods(event.payload):
        service.record_refunded(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]),
                                fully_refunded=bool(event.payload.get("fully_refunded")))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                          target_id=int(event.payload["target_id"]))
