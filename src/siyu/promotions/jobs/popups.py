"""promotions: interactive pop-ups (互动营销) — time-driven work: rules past their end end."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import popups


@ticks("promotions.popups_end")
def end_rules(session: Session, now: dt.datetime) -> int:
    return popups.end_due(session, now)
