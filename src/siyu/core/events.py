"""Events through a transactional outbox.

`emit(session, name, payload)` writes an `outbox_events` row in the caller's transaction.
Handlers registered with `@handles(name)` run only after that transaction commits: inline, in
this process, by default; in the huey worker when `SIYU_EVENTS_MODE=huey`. Every handler runs
at most once per event (a unique `event_handler_runs` row, written in the handler's own
transaction), so replays and races are harmless. Events whose handlers failed stay pending and
are retried by `tick`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import importlib.util
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, insert, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.models import EventHandlerRun, OutboxEvent
from siyu.db import UTCDateTime, execute_core, upsert_insert

log = logging.getLogger(__name__)

PENDING_KEY = "siyu_pending_events"
MAX_ATTEMPTS = 10


@dataclasses.dataclass(frozen=True)
class Event:
    id: int
    name: str
    merchant_id: int
    payload: dict[str, Any]
    # When it was emitted (the outbox row's created_at), for handlers that date what they record by it.
    created_at: dt.datetime | None = None


Handler = Callable[[Session, Event], None]
_handlers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)


def handles(name: str) -> Callable[[Handler], Handler]:
    """Register a reaction to an event. The handler gets its own session and transaction."""

    def register(fn: Handler) -> Handler:
        key = f"{fn.__module__}.{fn.__qualname__}"
        if all(k != key for k, _ in _handlers[name]):
            _handlers[name].append((key, fn))
        return fn

    return register


def handlers_for(name: str) -> list[tuple[str, Handler]]:
    return list(_handlers.get(name, ()))


# An observer sees every handler run (and every whole event run) of this process: it is called as
# `observer(event_name, key)` and returns a context manager entered around the run. `siyu bench checkout
# --in-process` uses it to time each handler; None (the default) costs one test per run.
Observer = Callable[[str, str], contextlib.AbstractContextManager]
EVENT_RUN_KEY = "*"  # the key an observer sees for a whole event run (claims, handlers, commit)
_observer: Observer | None = None


@contextlib.contextmanager
def observe_handlers(observer: Observer) -> Iterator[None]:
    """Let `observer` see every event run and handler run in this process while the block runs."""
    global _observer
    previous, _observer = _observer, observer
    try:
        yield
    finally:
        _observer = previous


def _call(fn: Handler, key: str, session: Session, ev: Event) -> None:
    if _observer is None:
        fn(session, ev)
        return
    with _observer(ev.name, key):
        fn(session, ev)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


# One statement object (its values passed as parameters): SQLAlchemy computes its cache key once.
_INSERT_EVENT = insert(OutboxEvent.__table__).returning(OutboxEvent.__table__.c.id)


def emit(session: Session, name: str, payload: Any, *, merchant_id: int, handled: Collection[str] = ()) -> OutboxEvent:
    """Write the event in the caller's transaction; its handlers run after the commit. An event no
    handler listens to is written already processed: it stays as the record of what happened and
    costs no transaction after the commit. So is one whose handlers (keys as `handles` registers them)
    are all among `handled`: the caller's transaction already did what they would do."""
    _ensure_handlers_loaded()
    body = _jsonable(payload)
    keys = [key for key, _fn in _handlers.get(name, ())]
    pending = bool(keys) and not set(keys).issubset(handled)
    now = clock.now()
    values = {"merchant_id": merchant_id, "name": name, "payload": body, "created_at": now,
              "processed_at": None if pending else now, "attempts": 0, "last_error": None}
    # One plain Core INSERT … RETURNING id on the session's connection, after the session's pending
    # changes (the event is written after what it reports); the row returned is an unattached copy.
    event_id = execute_core(session, _INSERT_EVENT, values).scalar_one()
    if pending:
        session.info.setdefault(PENDING_KEY, []).append(
            Event(id=event_id, name=name, merchant_id=merchant_id, payload=body, created_at=now))
    return OutboxEvent(id=event_id, **values)


# Set by Database.scope(): its session's events are dispatched by the scope once the session is closed
# and its connection is back in the pool. (after_commit fires while the connection is still checked
# out; dispatching there needs a second connection per request, and under load every pooled
# connection can end up held by a request waiting for another one.)
DEFER_KEY = "siyu_defer_events"
COMMITTED_KEY = "siyu_committed_events"


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # Releasing a savepoint (begin_nested) fires after_commit too; the outer transaction is still
    # open then, so the events wait for the real commit.
    if session.in_nested_transaction():
        return
    ids = session.info.pop(PENDING_KEY, None)
    if not ids:
        return
    if session.info.get(DEFER_KEY):
        session.info.setdefault(COMMITTED_KEY, []).extend(ids)
        return
    schedule(ids)


def dispatch_committed(session: Session) -> None:
    """Dispatch the events a closed session committed (called by Database.scope())."""
    ids = session.info.pop(COMMITTED_KEY, None)
    if ids:
        schedule(ids)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def schedule(events: list[Event]) -> None:
    from siyu.config import get_settings

    if get_settings().events_mode == "huey":
        from siyu.tasks import run_event_task

        for ev in events:
            run_event_task(ev.id, ev.name, ev.merchant_id, ev.payload, ev.created_at)
        return
    for ev in events:
        run_event(ev)


def dispatch(event_id: int) -> bool:
    """Run every handler of one stored event that has not run yet (the worker's and the retry tick's
    entry point). True when all have run."""
    from siyu.db import get_database

    with get_database().scope() as session:
        row = session.get(OutboxEvent, event_id)
        if row is None or row.processed_at is not None:
            return True
        ev = Event(id=row.id, name=row.name, merchant_id=row.merchant_id, payload=dict(row.payload),
                   created_at=row.created_at)
    return run_event(ev)


def run_event(ev: Event) -> bool:
    """Run the event's handlers: all in one transaction (one claim statement, one commit), which also
    marks the event processed; if one of them fails, again each in its own transaction, the last to
    succeed marking the event. A failure is recorded on the event for the retry tick."""
    if _observer is None:
        return _run_event(ev)
    with _observer(ev.name, EVENT_RUN_KEY):
        return _run_event(ev)


def _run_event(ev: Event) -> bool:
    from siyu.db import get_database

    database = get_database()
    handlers = handlers_for(ev.name)
    if handlers:
        # The common case first: every handler in one transaction (one claim statement, one commit).
        # If any of them fails, that transaction rolls back whole and each handler is run again in
        # its own transaction below, so a failing handler still does not stop the others.
        try:
            _run_handlers_together(database, ev, handlers)
            return True
        except Exception:  # retried one by one below, which logs the failure
            log.debug("event %s: running its handlers together failed; running them one by one", ev.id)
    errors = []
    for index, (key, fn) in enumerate(handlers):
        last = index == len(handlers) - 1 and not errors
        try:
            _run_handler(database, ev, key, fn, mark_processed=last)
        except Exception as exc:  # a failing handler must not stop the others; retried by tick
            log.exception("event handler %s failed on event %s", key, ev.id)
            errors.append(f"{key}: {exc!r}"[:500])
    if errors:
        with database.scope() as session:
            session.execute(update(OutboxEvent).where(OutboxEvent.id == ev.id).values(
                attempts=OutboxEvent.attempts + 1, last_error="\n".join(errors)[:2000]))
    elif not handlers:
        with database.scope() as session:
            _mark_processed(session, ev.id)
    return not errors


def _mark(event_id: int, now: dt.datetime) -> Any:
    table = OutboxEvent.__table__
    return (update(table).where(table.c.id == event_id, table.c.processed_at.is_(None))
            .values(processed_at=now, attempts=table.c.attempts + 1, last_error=None))


def _mark_processed(session: Session, event_id: int) -> None:
    execute_core(session, _mark(event_id, clock.now()))


# Claim every handler of an event at once: one INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING of
# the handler names passed as one array (rows in registration order), a fixed statement compiled once
# (a multi-row VALUES built per event was compiled anew every time). On PostgreSQL the same statement
# marks the event processed (a data-modifying CTE, one round trip less); SQLite marks it with an UPDATE.
_CLAIM_SQL = {
    "postgresql": """
        WITH marked AS (
            UPDATE outbox_events SET processed_at = :now, attempts = attempts + 1, last_error = NULL
            WHERE id = :event_id AND processed_at IS NULL)
        INSERT INTO event_handler_runs (merchant_id, event_id, handler, ran_at)
        SELECT :merchant_id, :event_id, h.handler, :now
        FROM unnest(CAST(:handlers AS varchar[])) WITH ORDINALITY AS h (handler, n) ORDER BY h.n
        ON CONFLICT (event_id, handler) DO NOTHING RETURNING handler""",
    "sqlite": """
        INSERT INTO event_handler_runs (merchant_id, event_id, handler, ran_at)
        SELECT :merchant_id, :event_id, h.value, :now FROM json_each(:handlers) AS h WHERE true ORDER BY h.key
        ON CONFLICT (event_id, handler) DO NOTHING RETURNING handler""",
}
_CLAIMS = {
    dialect: text(sql).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("event_id", type_=BigInteger()),
                                  bindparam("merchant_id", type_=BigInteger()),
                                  bindparam("handlers", type_=String() if dialect == "sqlite" else None))
    .columns(handler=String())
    for dialect, sql in _CLAIM_SQL.items()
}


def _run_handlers_together(database: Any, ev: Event, handlers: list[tuple[str, Handler]]) -> None:
    """Claim every handler of `ev` with one statement (see `_CLAIM_SQL`; rows in registration order,
    so concurrent runners queue on the first claim instead of deadlocking), run the claimed ones and
    mark the event processed, all in one transaction: the mark commits with the handlers' work or not
    at all."""
    with database.scope() as session:
        dialect = session.get_bind().dialect.name
        keys = [key for key, _fn in handlers]
        claimed = set(session.connection().execute(_CLAIMS[dialect], {
            "now": clock.now(), "event_id": ev.id, "merchant_id": ev.merchant_id,
            "handlers": json.dumps(keys) if dialect == "sqlite" else keys}).scalars())
        for key, fn in handlers:
            if key in claimed:
                _call(fn, key, session, ev)
        if dialect != "postgresql":
            _mark_processed(session, ev.id)


def _run_handler(database: Any, ev: Event, key: str, fn: Handler, *, mark_processed: bool) -> None:
    with database.scope() as session:
        # One INSERT … ON CONFLICT DO NOTHING on (event, handler); a concurrent runner's insert waits
        # for ours to commit or roll back, as the unique index makes it.
        insert_ = upsert_insert(session)
        runs = EventHandlerRun.__table__
        claimed = session.connection().execute(
            insert_(runs)
            .values(merchant_id=ev.merchant_id, event_id=ev.id, handler=key, ran_at=clock.now())
            .on_conflict_do_nothing(index_elements=["event_id", "handler"])
            .returning(runs.c.id)
        ).first()
        if claimed is None:
            # Already ran (or ran concurrently and committed): nothing to do but the bookkeeping.
            if mark_processed:
                _mark_processed(session, ev.id)
            return
        _call(fn, key, session, ev)
        if mark_processed:
            _mark_processed(session, ev.id)


def tick(session: Session, now: dt.datetime) -> int:
    """Retry events whose handlers have not all run (a crash, a failing handler). Returns the
    number dispatched. Safe to run twice at once: handler runs are unique per event."""
    cutoff = now - dt.timedelta(seconds=30)
    ids = list(
        session.scalars(
            select(OutboxEvent.id)
            .where(
                OutboxEvent.processed_at.is_(None),
                OutboxEvent.created_at <= cutoff,
                OutboxEvent.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutboxEvent.id)
            .limit(500)
        )
    )
    for event_id in ids:
        dispatch(event_id)
    return len(ids)


_loaded = False


def _ensure_handlers_loaded() -> None:
    # emit() decides from the registry whether anyone listens, so the registry must be complete even
    # in a process that never built the app (the CLI, the worker, a script).
    if not _loaded:
        load_handlers()


def load_handlers() -> None:
    """Import every domain's handlers module so their @handles registrations exist."""
    global _loaded
    _loaded = True
    from siyu import DOMAINS, _has_module

    for domain in DOMAINS:
        name = f"siyu.{domain}.handlers"
        if _has_module(name):
            importlib.import_module(name)
