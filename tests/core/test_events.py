"""Events through the outbox. The `db` fixture's "commit" releases a savepoint of the test's
transaction, so these tests open their own unit of work with get_database().scope() to see what
happens after a commit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from siyu.core import clock, events
from siyu.core.models import EventHandlerRun, OutboxEvent
from siyu.db import get_database

EVENT = "test.core.pinged"
OTHER = "test.core.other"
MERCHANT = 7_000_002
T0 = dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)

calls: list[tuple[str, int]] = []
failing = {"first": False}


@events.handles(EVENT)
def first_handler(session, event):
    if failing["first"]:
        raise RuntimeError("the first handler is down")
    calls.append(("first", event.payload["n"]))


@events.handles(EVENT)
def second_handler(session, event):
    calls.append(("second", event.payload["n"]))


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    failing["first"] = False
    yield
    failing["first"] = False


def _emit(n: int) -> int:
    with get_database().scope() as session:
        row = events.emit(session, EVENT, {"n": n}, merchant_id=MERCHANT)
        assert calls == []  # nothing runs before the commit
        return row.id


def test_handlers_run_once_after_commit_and_the_event_is_marked_processed(db):
    # when
    with clock.frozen(T0):
        event_id = _emit(1)
    # then
    assert calls == [("first", 1), ("second", 1)]
    row = db.get(OutboxEvent, event_id)
    db.refresh(row)
    assert row.processed_at == T0 and row.attempts == 1 and row.last_error is None
    runs = db.scalars(select(EventHandlerRun.handler).where(EventHandlerRun.event_id == event_id)).all()
    assert sorted(runs) == [f"{__name__}.first_handler", f"{__name__}.second_handler"]


def test_registering_the_same_handler_twice_keeps_one(db):
    events.handles(EVENT)(first_handler)
    assert [k for k, _ in events.handlers_for(EVENT)].count(f"{__name__}.first_handler") == 1
    assert events.handlers_for("test.core.nobody") == []


def test_nothing_runs_and_nothing_is_written_on_rollback(db):
    # when the unit of work fails after emitting
    with pytest.raises(RuntimeError), get_database().scope() as session:
        events.emit(session, EVENT, {"n": 2}, merchant_id=MERCHANT)
        raise RuntimeError("boom")
    # then
    assert calls == []
    assert db.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.merchant_id == MERCHANT)) == 0


def test_a_pending_list_does_not_leak_into_the_next_unit_of_work(db):
    with pytest.raises(RuntimeError), get_database().scope() as session:
        events.emit(session, EVENT, {"n": 3}, merchant_id=MERCHANT)
        raise RuntimeError("boom")
    with get_database().scope() as session:
        events.emit(session, OTHER, {"n": 4}, merchant_id=MERCHANT)
    assert calls == []  # OTHER has no handlers; the rolled-back EVENT never runs


def test_dispatching_twice_runs_each_handler_once(db):
    event_id = _emit(5)
    calls.clear()
    # when the event is dispatched again, and again after losing its processed mark (a crash)
    assert events.dispatch(event_id) is True
    with get_database().scope() as session:
        session.get(OutboxEvent, event_id).processed_at = None
    assert events.dispatch(event_id) is True
    # then no handler ran a second time
    assert calls == []
    assert db.scalar(select(func.count()).select_from(EventHandlerRun).where(EventHandlerRun.event_id == event_id)) == 2


def test_dispatching_an_unknown_event_is_harmless(db):
    assert events.dispatch(2**40) is True
    assert calls == []


def test_a_failing_handler_leaves_the_event_pending_and_tick_retries_it_later(db):
    # given a handler that fails
    failing["first"] = True
    with clock.frozen(T0):
        event_id = _emit(6)
    # then the other handler ran, the failing one did not count as run, and the event is pending
    assert calls == [("second", 6)]
    row = db.get(OutboxEvent, event_id)
    db.refresh(row)
    assert row.processed_at is None and row.attempts == 1
    assert "the first handler is down" in row.last_error
    assert db.scalars(select(EventHandlerRun.handler).where(EventHandlerRun.event_id == event_id)).all() == [
        f"{__name__}.second_handler"]

    # when tick runs too soon (an inline dispatch may still be under way), nothing is retried
    calls.clear()
    failing["first"] = False
    with clock.frozen(T0 + dt.timedelta(seconds=10)), get_database().scope() as session:
        assert events.tick(session, clock.now()) == 0
    assert calls == []

    # when tick runs later, the failed handler runs once and the other is not repeated
    later = T0 + dt.timedelta(minutes=2)
    with clock.frozen(later), get_database().scope() as session:
        assert events.tick(session, clock.now()) == 1
    assert calls == [("first", 6)]
    db.refresh(row)
    assert row.processed_at == later and row.attempts == 2 and row.last_error is None

    # and a further tick finds nothing to do
    calls.clear()
    with clock.frozen(later + dt.timedelta(minutes=5)), get_database().scope() as session:
        assert events.tick(session, clock.now()) == 0
    assert calls == []


def test_tick_gives_up_after_max_attempts(db):
    failing["first"] = True
    with clock.frozen(T0):
        event_id = _emit(7)
    with get_database().scope() as session:
        session.get(OutboxEvent, event_id).attempts = events.MAX_ATTEMPTS
    calls.clear()
    with clock.frozen(T0 + dt.timedelta(hours=1)), get_database().scope() as session:
        assert events.tick(session, clock.now()) == 0
    assert calls == []


def test_payloads_are_stored_as_json(db):
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Paid:
        order_id: int
        at: dt.datetime
        lines: tuple[int, ...]

    with get_database().scope() as session:
        row = events.emit(session, OTHER, Paid(order_id=9, at=T0, lines=(1, 2)), merchant_id=MERCHANT)
        event_id = row.id
    stored = db.get(OutboxEvent, event_id)
    assert stored.payload == {"order_id": 9, "at": "2026-05-01T02:00:00+00:00", "lines": [1, 2]}


STAMPED = "test.core.stamped"
stamps: list[dt.datetime | None] = []


@events.handles(STAMPED)
def stamp_handler(session, event):
    stamps.append(event.created_at)


def test_handlers_get_the_time_the_event_was_emitted_inline_and_from_the_outbox(db):
    stamps.clear()
    # when an event runs after its commit
    with clock.frozen(T0), get_database().scope() as session:
        events.emit(session, STAMPED, {"n": 1}, merchant_id=MERCHANT)
    # and another is dispatched later from its stored row (the worker's and the retry tick's way)
    with clock.frozen(T0 + dt.timedelta(minutes=1)), get_database().scope() as session:
        row = events.emit(session, STAMPED, {"n": 2}, merchant_id=MERCHANT)
        session.info.pop(events.PENDING_KEY)
    with clock.frozen(T0 + dt.timedelta(hours=1)):
        assert events.dispatch(row.id) is True
    # then each handler saw when its event was emitted, not when it ran
    assert stamps == [T0, T0 + dt.timedelta(minutes=1)]


def test_an_observer_sees_each_event_run_and_each_handler_run_inside_it(db):
    import contextlib

    seen: list[tuple[str, str, str]] = []

    @contextlib.contextmanager
    def observer(name, key):
        seen.append(("start", name, key))
        yield
        seen.append(("end", name, key))

    # when an event runs while observed
    with events.observe_handlers(observer):
        _emit(8)
    # then the whole run wraps each handler's run, in registration order
    first, second = f"{__name__}.first_handler", f"{__name__}.second_handler"
    assert seen == [("start", EVENT, events.EVENT_RUN_KEY), ("start", EVENT, first), ("end", EVENT, first),
                    ("start", EVENT, second), ("end", EVENT, second), ("end", EVENT, events.EVENT_RUN_KEY)]
    assert calls == [("first", 8), ("second", 8)]
    # and once the block is left nothing is observed
    calls.clear()
    _emit(9)
    assert len(seen) == 6 and calls == [("first", 9), ("second", 9)]
