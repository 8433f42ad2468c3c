"""attribution: shares reactions to other domains' events. A customer who signs in gets their visitor's
anonymous touches (stitching); orders created and paid become funnel rows with their touch context; merged
customers keep one history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.attribution.service import funnel, shares
from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.orders import events as order_events


@handles(customer_events.CUSTOMER_SIGNED_IN)
def on_customer_signed_in(session: Session, event: Event) -> None:
    p = event.payload
    shares.stitch_visitor(session, merchant_id=event.merchant_id, customer_id=int(p["customer_id"]),
                          visitor_id=p.get("visitor_id"))


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    shares.move_customer(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                         target_id=int(event.payload["target_id"]))


def _touch_id(attribution: dict[str, Any] | None) -> int | None:
    value = (attribution or {}).get("touch_id")
    return value if isinstance(value, int) else None


def _goods(p: dict[str, Any]) -> bool:
    # Service orders (recharge, paid membership) are not steps of the product funnel.
    return p.get("kind", "goods") == "goods"


@handles(order_events.ORDER_CREATED)
def on_order_created(session: Session, event: Event) -> None:
    p = event.payload
    if not _goods(p):
        return
    funnel.record_event(session, merchant_id=event.merchant_id, kind="order", customer_id=int(p["customer_id"]),
                        order_id=int(p["order_id"]), amount_cents=int(p["total_cents"]),
                        touch_id=_touch_id(p.get("attribution")))


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if not _goods(p):
        return
    paid_at = dt.datetime.fromisoformat(p["paid_at"]) if p.get("paid_at") else None
    funnel.record_event(session, merchant_id=event.merchant_id, kind="pay", customer_id=int(p["customer_id"]),
                        order_id=int(p["order_id"]), amount_cents=int(p["paid_cents"]),
                        touch_id=_touch_id(p.get("attribution")), at=paid_at)
