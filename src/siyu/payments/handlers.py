"""Reactions to other domains' events: a merged customer's payments follow them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.payments import service


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    service.move_customer_payments(session, merchant_id=event.merchant_id, source_id=int(event.payload["source_id"]),
                                   target_id=int(event.payload["target_id"]))
