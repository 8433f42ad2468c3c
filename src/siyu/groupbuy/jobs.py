"""Time-driven group buying: waves close at their cut-off (with their manifests), commissions
settle after pickup and the after-sales window, orders not picked up are flagged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.groupbuy.service import commissions, cutoff, delivery


@ticks("groupbuy.cutoff")
def close_waves(session: Session, now: dt.datetime) -> int:
    """Close waves whose cut-off has come and produce their purchase, sorting and delivery lists."""
    return len(cutoff.close_due(session, now))


@ticks("groupbuy.settle_commissions")
def settle_commissions(session: Session, now: dt.datetime) -> int:
    return commissions.settle_due(session, now)


@ticks("groupbuy.pickup_overdue")
def pickup_overdue(session: Session, now: dt.datetime) -> int:
    return delivery.flag_overdue(session, now)
