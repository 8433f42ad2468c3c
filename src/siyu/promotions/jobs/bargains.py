"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — time-driven work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import bargains


@ticks("promotions.bargains_expire")
def expire_bargains(session: Session, now: dt.datetime) -> int:
    """Open bargains past their time limit expire (one conditional UPDATE: idempotent, safe twice at once)."""
    return bargains.expire_due(session, now)
