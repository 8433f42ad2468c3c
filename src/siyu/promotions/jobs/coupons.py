"""promotions: coupons — time-driven work: unused coupons past their end expire, scheduled campaigns
start, campaigns past their end are ended."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import coupons


@ticks("promotions.coupons_expire")
def coupons_expire(session: Session, now: dt.datetime) -> dict[str, int]:
    return coupons.expire_due(session, now)
