"""membership: reactions to orders' events — points and growth for completed orders, points given
back on cancellation and refunds, paid membership granted when its order is paid."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.auth import system_principal
from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.membership.service import members as members_service
from siyu.membership.service import points, tiers
from siyu.orders import events as order_events
from siyu.orders import service as orders

PAID_MEMBERSHIP = "paid_membership"


def _kind(event: Event) -> str:
    return str(event.payload.get("kind") or "goods")


@handles(order_events.ORDER_COMPLETED)
def on_order_completed(session: Session, event: Event) -> None:
    if _kind(event) != "goods":
        return
    customer_id = int(event.payload["customer_id"])
    member = members_service.member_of(session, merchant_id=event.merchant_id, customer_id=customer_id)
    if member is None:
        return
    order = orders.get_order(session, int(event.payload["order_id"]), actor=system_principal(event.merchant_id))
    tier = tiers.effective_tier(session, member)
    points.on_order_completed(session, merchant_id=event.merchant_id, order_id=order.id, customer_id=customer_id,
                              paid_cents=order.paid_cents, multiplier_bps=tier.points_multiplier_bps if tier else 10_000,
                              member_id=member.id)


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    order_id = int(event.payload["order_id"])
    if _kind(event) == PAID_MEMBERSHIP:
        tiers.cancel_purchase(session, merchant_id=event.merchant_id, order_id=order_id)
        return
    points.on_order_cancelled(session, merchant_id=event.merchant_id, order_id=order_id,
                              customer_id=int(event.payload["customer_id"]))


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    if _kind(event) == PAID_MEMBERSHIP:
        tiers.grant_paid(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    if _kind(event) != "goods":
        return
    p = event.payload
    points.on_order_refunded(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                             customer_id=int(p["customer_id"]), refund_id=int(p["refund_id"]),
                             money_cents=int(p.get("money_cents") or 0),
                             order_refunded_cents=int(p.get("order_refunded_cents") or 0),
                             order_total_cents=int(p.get("order_total_cents") or 0),
                             fully=bool(p.get("fully_refunded")))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    members_service.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                                  target_id=int(event.payload["target_id"]))
