"""attribution: ownership. First-touch bindings of a customer to a guide (and store) and to a referrer
(distributor), protection periods, the rebind log, order attribution snapshots, customer transfer.

The contract other modules rely on (keep the signatures):

    apply_touch(session, *, merchant_id, customer_id, touch_id, channel, sharer_staff_id, sharer_customer_id,
                at) -> None
        run the binding rules for one touch of a known customer (called by shares.record_touch and when
        a visitor's anonymous touches are stitched to the customer who logs in).

    order_attribution(session, *, merchant_id, customer_id, share_code, now) -> dict
        the snapshot stored in `orders.attribution` at order creation. Keys (all present, None when
        unknown): share_code, touch_id, channel, sharer_staff_id, sharer_customer_id, guide_id,
        store_id, referrer_customer_id, campaign, live_id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

SNAPSHOT_KEYS = ("share_code", "touch_id", "channel", "sharer_staff_id", "sharer_customer_id", "guide_id",
                 "store_id", "referrer_customer_id", "campaign", "live_id")


def apply_touch(session: Session, *, merchant_id: int, customer_id: int, touch_id: int | None, channel: str,
                sharer_staff_id: int | None, sharer_customer_id: int | None, at: dt.datetime) -> None:
    """Placeholder until the binding rules land (ownership work in progress)."""


def order_attribution(session: Session, *, merchant_id: int, customer_id: int, share_code: str | None,
                      now: dt.datetime) -> dict[str, Any]:
    """Placeholder until the binding rules land: only the share code is known."""
    snapshot: dict[str, Any] = dict.fromkeys(SNAPSHOT_KEYS)
    snapshot["share_code"] = share_code
    return snapshot
