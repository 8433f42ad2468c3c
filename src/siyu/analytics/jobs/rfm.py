"""analytics: each completed Shanghai day's RFM segment counts join `analytics_rfm_snapshots` (the RFM
trend reads the day before its period there); missing recent days are filled in a few per run."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.analytics.service.rfm import advance_snapshots
from siyu.core import clock
from siyu.core.jobs import ticks


@ticks("analytics.rfm_snapshots")
def write_completed_days(session: Session, now: dt.datetime) -> dict[str, int]:
    done = advance_snapshots(session, today=now.astimezone(clock.SHANGHAI).date())
    return {"merchants": len(done), "days": sum(len(days) for days in done.values())}
