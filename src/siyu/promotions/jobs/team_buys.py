"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — time-driven work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import team_buys as service


@ticks("promotions.teams_expire")
def teams_expire(session: Session, now: dt.datetime) -> int:
    """Forming teams whose time ran out fail; their paid members are refunded automatically."""
    return len(service.expire_due(session, now))


@ticks("promotions.team_buys_clock")
def team_buys_clock(session: Session, now: dt.datetime) -> int:
    """Scheduled campaigns start and running ones end with their window."""
    return service.run_clock(session, now)
