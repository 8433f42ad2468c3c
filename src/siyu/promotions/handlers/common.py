"""promotions: what the areas' event reactions share: which orders they follow, and when one was paid."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.events import Event
from siyu.promotions.service import common as service_common


def is_goods(payload: dict) -> bool:
    """Campaigns follow goods orders only (an order payload without a kind is one)."""
    return payload.get("kind", "goods") == "goods"


def paid_at_of(payload: dict) -> dt.datetime:
    """The `paid_at` of an order.paid payload, or now when it has none."""
    return dt.datetime.fromisoformat(payload["paid_at"]) if payload.get("paid_at") else clock.now()


def may_be_through(payload: dict, kind: str) -> bool:
    """Whether the order of an order event may have been bought through a campaign of `kind` (flash_sale,
    team_buy, bargain, ladder). The event names the order's campaign (`promotion`, {} for none), so the
    other areas return without a query; an event without it (written before orders kept it, or of an
    order placed before) may be anyone's, and the area looks its own rows up."""
    promotion = payload.get("promotion")
    if not isinstance(promotion, dict):
        return True
    return promotion.get("kind") == kind


TOUCHPOINTS_KEY = "promotions.touchpoints"


def met_before_paying(session: Session, event: Event, area: str) -> bool:
    """Whether the customer of an order.paid met `area` ("payment_offers", "popups") in the 90 days before
    paying, so that its conversions may be due. The areas' reactions to one event share one read (kept in
    the handlers' session): a customer who met neither costs them one statement together."""
    p = event.payload
    key = (event.id, int(p["customer_id"]), p.get("paid_at"))
    memo = session.info.setdefault(TOUCHPOINTS_KEY, {})
    found = memo.get(key)
    if found is None:
        found = memo[key] = service_common.recent_touchpoints(
            session, merchant_id=event.merchant_id, customer_id=key[1], before=paid_at_of(p))
    return area in found
