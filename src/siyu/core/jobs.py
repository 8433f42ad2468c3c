"""Registry of time-driven work. Each domain's `jobs.py` registers `tick(session, now)` functions
with `@ticks("name")`; the huey periodic task and `siyu tick` run them all, each in its own
transaction. Every tick must be idempotent and safe to run twice at once."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Tick = Callable[[Session, dt.datetime], object]
_ticks: dict[str, Tick] = {}


def ticks(name: str) -> Callable[[Tick], Tick]:
    def register(fn: Tick) -> Tick:
        _ticks[name] = fn
        return fn

    return register


def registered() -> dict[str, Tick]:
    load_jobs()
    return dict(_ticks)


def load_jobs() -> None:
    from siyu import DOMAINS, _has_module

    importlib.import_module("siyu.core.events")
    for domain in DOMAINS:
        name = f"siyu.{domain}.jobs"
        if _has_module(name):
            importlib.import_module(name)


def run_all(now: dt.datetime) -> dict[str, object]:
    """Run every registered tick once, each in its own unit of work; one failing does not stop
    the others."""
    from siyu.db import get_database

    results: dict[str, object] = {}
    for name, fn in registered().items():
        try:
            with get_database().scope() as session:
                results[name] = fn(session, now)
        except Exception as exc:
            log.exception("tick %s failed", name)
            results[name] = f"error: {exc!r}"
    return results


@ticks("core.events.retry")
def _retry_events(session: Session, now: dt.datetime) -> int:
    from siyu.core import events

    return events.tick(session, now)
