"""promotions: split coupons (好友瓜分券) — time-driven work: unfilled pools expire, campaigns past their end end."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import split_coupons


@ticks("promotions.split_pools_expire")
def expire_pools(session: Session, now: dt.datetime) -> int:
    return split_coupons.expire_due(session, now)


@ticks("promotions.split_campaigns_end")
def end_campaigns(session: Session, now: dt.datetime) -> int:
    return split_coupons.end_due(session, now)
