"""membership: time-driven work — points lots expire, tiers are reviewed (downgrade after a grace
period; paid tiers end), birthday gifts. Each tick is idempotent and safe to run twice at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.membership.service import points, tiers


@ticks("membership.points_expire")
def expire_points(session: Session, now: dt.datetime) -> int:
    """Expire the points of lots past their date. Returns the points expired."""
    return points.expire_tick(session, now)


@ticks("membership.tier_review")
def review_tiers(session: Session, now: dt.datetime) -> dict[str, int]:
    """Review members whose review date has come; end paid tiers that ran out."""
    return tiers.review_tick(session, now)


@ticks("membership.birthday_gifts")
def birthday_gifts(session: Session, now: dt.datetime) -> int:
    """Give today's birthday members their tier's birthday points (once a year)."""
    return tiers.birthday_tick(session, now)
