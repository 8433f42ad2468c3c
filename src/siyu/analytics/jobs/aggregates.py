"""analytics: each completed day's people (funnel steps, GMV visitors and buyers) are counted into
`analytics_people_days` / `analytics_people_counts` (`service.people`), and today's so far as provisional
rows brought up to date every tick (the people whose day changed since the last run are walked again);
the views walk only the people whose day changed since."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates, people
from siyu.core import clock
from siyu.core.jobs import ticks


@ticks("analytics.daily_people")
def load_completed_days(session: Session, now: dt.datetime) -> dict[str, int]:
    """Count the completed days not counted yet, then bring today's provisional rows up to date."""
    done = aggregates.advance_people(session, today=now.astimezone(clock.SHANGHAI).date())
    today = people.advance_today(session, now=now)
    return {"merchants": len(done), "rows": sum(done.values()), "today_rows": sum(today.values())}
