"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — time-driven work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import ladders


@ticks("promotions.ladders_settle")
def settle_ladders(session: Session, now: dt.datetime) -> int:
    """Ended campaigns get their final price; each paid order gets its difference back exactly once."""
    return ladders.settle_due(session, now)
