"""analytics: the funnel people of each completed day join `analytics_daily_people` (GMV visitors);
the current day is read from the funnel events by the views themselves."""

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
