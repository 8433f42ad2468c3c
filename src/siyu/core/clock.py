"""The only source of "now". Tests freeze it with `frozen(...)`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_state = threading.local()
_global_frozen: list[dt.datetime] = []


def now() -> dt.datetime:
    frozen = getattr(_state, "frozen", None) or (_global_frozen[-1] if _global_frozen else None)
    if frozen is not None:
        return frozen
    return dt.datetime.now(dt.UTC)


@contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Freeze now() at `at` for every thread (tests run requests in worker threads)."""
    if at.tzinfo is None:
        raise ValueError("freeze with an aware datetime")
    _global_frozen.append(at.astimezone(dt.UTC))
    try:
        yield
    finally:
        _global_frozen.pop()


def local(value: dt.datetime | None) -> dt.datetime | None:
    """A UTC datetime as shown to people (Asia/Shanghai)."""
    if value is None:
        return None
    return value.astimezone(SHANGHAI)


def format_local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(SHANGHAI).strftime(fmt)


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC start and end of a calendar day in Shanghai."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def today_local() -> dt.date:
    return now().astimezone(SHANGHAI).date()
