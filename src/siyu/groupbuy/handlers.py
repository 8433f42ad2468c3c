"""Reactions to the orders events: a wave order follows its order (paid, cancelled, refunded)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.groupbuy.service import sync
from siyu.orders import events as order_events


def _is_leader_goods(payload: dict) -> bool:
    return payload.get("kind", "goods") == "goods"


@handles(order_events.ORDER_PAID)
def on_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("fulfilment_type") != "leader" or not _is_leader_goods(p):
        return
    paid_at = dt.datetime.fromisoformat(p["paid_at"]) if p.get("paid_at") else None
    sync.mark_paid(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]), paid_at=paid_at)


@handles(order_events.ORDER_CANCELLED)
def on_order_cancelled(session: Session, event: Event) -> None:
    # Only orders collected at a leader's point are wave orders; an older event without the type is looked up.
    if event.payload.get("fulfilment_type", "leader") != "leader":
        return
    sync.mark_cancelled(session, merchant_id=event.merchant_id, order_id=int(event.payload["order_id"]))


@handles(order_events.ORDER_REFUNDED)
def on_order_refunded(session: Session, event: Event) -> None:
    p = event.payload
    sync.record_refund(session, merchant_id=event.merchant_id, order_id=int(p["order_id"]),
                       refund_id=int(p["refund_id"]),
                       lines=[(int(x["order_line_id"]), int(x["quantity"]), int(x["amount_cents"]))
                              for x in p.get("lines", [])],
                       fully_refunded=bool(p.get("fully_refunded")))
