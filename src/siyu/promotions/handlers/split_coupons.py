"""promotions: split coupons (好友瓜分券) — reactions to other domains' events: merged customers keep their seats."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.events import Event, handles
from siyu.customers import events as customer_events
from siyu.promotions.service import split_coupons


@handles(customer_events.CUSTOMER_MERGED)
def on_customer_merged(session: Session, event: Event) -> None:
    p = event.payload
    split_coupons.move_customer(session, merchant_id=event.merchant_id, source_id=int(p["source_id"]),
                                target_id=int(p["target_id"]))
