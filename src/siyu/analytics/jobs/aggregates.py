"""analytics: each completed day's people (funnel steps, GMV visitors and buyers) are counted into
`analytics_people_days` / `analytics_people_counts` (`service.people`); the current day is walked from its
funnel events and orders by the views themselves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates
from siyu.core import clock
from siyu.core.jobs import ticks


@ticks("analytics.daily_people")
def load_completed_days(session: Session, now: dt.datetime) -> dict[str, int]:
    done = aggregates.advance_people(session, today=now.astimezone(clock.SHANGHAI).date())
    return {"merchants": len(done), "rows": sum(done.values())}
