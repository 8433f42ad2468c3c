"""huey tasks in immediate mode: event dispatch in the worker and the periodic tick."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu import tasks
from siyu.config import reset_settings
from siyu.core import clock, events, jobs
from siyu.core.models import EventHandlerRun, OutboxEvent
from tests.factories.merchants import make_merchant

seen: list[tuple[int, dict]] = []


@events.handles("test.tasks.pinged")
def _record_ping(session: Session, ev: events.Event) -> None:
    seen.append((ev.id, ev.payload))


@pytest.fixture
def immediate():
    tasks.huey.immediate = True
    seen.clear()
    try:
        yield tasks.huey
    finally:
        tasks.huey.immediate = False


def test_default_huey_is_sqlite_and_redis_when_configured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from huey import RedisHuey, SqliteHuey

    from siyu.config import Settings

    assert isinstance(tasks.make_huey(Settings(huey_path=tmp_path / "q.db")), SqliteHuey)
    assert isinstance(tasks.make_huey(Settings(redis_url="redis://127.0.0.1:6379/9")), RedisHuey)


def test_dispatch_event_task_runs_the_handlers_once(db: Session, immediate) -> None:
    # given a committed event
    merchant = make_merchant(db)
    row = events.emit(db, "test.tasks.pinged", {"n": 1}, merchant_id=merchant.id)
    db.info.pop(events.PENDING_KEY, None)  # dispatched below by the task, not by the commit
    db.commit()

    # when the task runs, twice
    tasks.dispatch_event_task(row.id)
    tasks.dispatch_event_task(row.id)

    # then the handler ran once and the event is processed
    assert seen == [(row.id, {"n": 1})]
    db.expire_all()
    assert db.get(OutboxEvent, row.id).processed_at is not None
    runs = db.scalars(select(EventHandlerRun.handler).where(EventHandlerRun.event_id == row.id)).all()
    assert runs == ["tests.test_tasks._record_ping"]


def test_run_event_task_runs_the_handlers_once_without_reading_the_outbox(db: Session, immediate) -> None:
    # given a committed event
    merchant = make_merchant(db)
    row = events.emit(db, "test.tasks.pinged", {"n": 4}, merchant_id=merchant.id)
    db.info.pop(events.PENDING_KEY, None)
    db.commit()

    # when the task carrying the event runs twice (a retry), then the read-back task once more
    for _ in range(2):
        tasks.run_event_task(row.id, row.name, merchant.id, {"n": 4}, row.created_at)
    tasks.dispatch_event_task(row.id)

    # then the handler ran once and the event is processed
    assert seen == [(row.id, {"n": 4})]
    db.expire_all()
    assert db.get(OutboxEvent, row.id).processed_at is not None


def test_huey_events_mode_sends_committed_events_to_the_task(db: Session, immediate,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # given events dispatched through huey
    monkeypatch.setenv("SIYU_EVENTS_MODE", "huey")
    reset_settings()
    sent: list[tuple[str, tuple]] = []
    original = tasks.huey.enqueue
    monkeypatch.setattr(tasks.huey, "enqueue", lambda task: sent.append((task.name, task.args)) or original(task))
    try:
        merchant = make_merchant(db)
        # when an event is emitted and the transaction commits
        row = events.emit(db, "test.tasks.pinged", {"n": 2}, merchant_id=merchant.id)
        db.commit()
    finally:
        monkeypatch.delenv("SIYU_EVENTS_MODE")
        reset_settings()

    # then it went through the task and its handler ran
    assert sent == [("run_event_task", (row.id, "test.tasks.pinged", merchant.id, {"n": 2}, row.created_at))]
    assert seen == [(row.id, {"n": 2})]


def test_rolled_back_events_are_never_sent(db: Session, immediate) -> None:
    merchant = make_merchant(db)
    db.commit()
    events.emit(db, "test.tasks.pinged", {"n": 3}, merchant_id=merchant.id)
    db.rollback()
    assert seen == []


def test_tick_task_is_periodic_every_minute_and_runs_every_registered_tick(db: Session, immediate,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # given a registered tick and a frozen clock
    calls: list[dt.datetime] = []
    monkeypatch.setitem(jobs._ticks, "test.tasks.counter", lambda session, now: calls.append(now) or len(calls))
    at = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)

    # then the task is due at every minute
    periodic = tasks.tick_task.task_class
    assert periodic in tasks.huey._registry._periodic_tasks
    assert tasks.tick_task.s().validate_datetime(dt.datetime(2026, 3, 1, 8, 31))
    assert tasks.tick_task.s().validate_datetime(dt.datetime(2026, 3, 1, 23, 59))

    # when it runs
    with clock.frozen(at):
        result = tasks.tick_task.call_local()

    # then every tick ran once with the clock's now
    assert calls == [at]
    assert result["test.tasks.counter"] == 1
    assert result["core.events.retry"] == 0


def test_tick_retries_an_event_whose_dispatch_never_happened(db: Session, immediate) -> None:
    # given an event committed 5 minutes ago whose dispatch was lost (a crash)
    merchant = make_merchant(db)
    at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    with clock.frozen(at):
        row = events.emit(db, "test.tasks.pinged", {"n": 4}, merchant_id=merchant.id)
        db.info.pop(events.PENDING_KEY, None)
        db.commit()

    # when the periodic task runs later
    with clock.frozen(at + dt.timedelta(minutes=5)):
        result = tasks.tick_task.call_local()

    # then the handler ran
    assert result["core.events.retry"] == 1
    assert seen == [(row.id, {"n": 4})]
