"""Background work through huey: events dispatched in the worker (SIYU_EVENTS_MODE=huey) and the
periodic tick that runs every domain's time-driven jobs.

SqliteHuey (a file, SIYU_HUEY_PATH) by default; RedisHuey when SIYU_REDIS_URL is set. Run the
consumer with `siyu worker`. Tests switch `huey.immediate = True` to run tasks in-process.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from siyu.config import Settings, get_settings

log = logging.getLogger(__name__)


def make_huey(settings: Settings) -> Huey:
    # Results are not kept: nothing reads them, and a result store that is never read only grows.
    if settings.redis_url:
        return RedisHuey(settings.huey_name, url=settings.redis_url, results=False)
    settings.huey_path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(settings.huey_name, filename=str(settings.huey_path), results=False)


huey = make_huey(get_settings())


@huey.task(retries=3, retry_delay=10)
def dispatch_event_task(event_id: int) -> bool:
    """Run the handlers of one committed event, read from the outbox (each at most once); failures stay
    pending for tick."""
    from siyu.core import events

    return events.dispatch(event_id)


@huey.task(retries=3, retry_delay=10)
def run_event_task(event_id: int, name: str, merchant_id: int, payload: dict[str, Any],
                   created_at: dt.datetime | None) -> bool:
    """`dispatch_event_task` with the event in the message (what the committing process had in hand):
    no transaction to read it back from the outbox first. The handler claims still make each run at most
    once, so an event already handled (a retry by tick) runs nothing."""
    from siyu.core import events

    return events.run_event(events.Event(id=event_id, name=name, merchant_id=merchant_id, payload=payload,
                                         created_at=created_at))


@huey.periodic_task(crontab(minute="*"))
def tick_task() -> dict[str, Any]:
    """Every minute: every registered tick (event retries, expiries, settlements …) once."""
    from siyu.core import clock, jobs

    results = jobs.run_all(clock.now())
    log.info("tick: %s", results)
    return results
