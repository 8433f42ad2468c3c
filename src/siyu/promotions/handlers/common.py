"""promotions: what the areas' event reactions share: which orders they follow, and when one was paid."""

from __future__ import annotations

import datetime as dt

from siyu.core import clock


def is_goods(payload: dict) -> bool:
    """Campaigns follow goods orders only (an order payload without a kind is one)."""
    return payload.get("kind", "goods") == "goods"


def paid_at_of(payload: dict) -> dt.datetime:
    """The `paid_at` of an order.paid payload, or now when it has none."""
    return dt.datetime.fromisoformat(payload["paid_at"]) if payload.get("paid_at") else clock.now()
