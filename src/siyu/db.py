"""Engine, sessions and the declarative Base shared by every domain.

One `Database` object per process holds the engine and the session factory. A unit of work
(a request, a job run, a CLI command) runs in `database.scope()`, which commits once at the end;
services only `flush()`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    bindparam,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    make_transient_to_detached,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.selectable import Join
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit and only autoincrements
# when declared exactly as INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use core.clock.now()")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class _CrossJoin(Join):
    """`cross_join`: an inner join that SQLite writes as `CROSS JOIN … ON` (the left side is the outer loop)."""

    inherit_cache = True


@compiles(_CrossJoin, "sqlite")
def _sqlite_cross_join(element: _CrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    return (f"{compiler.process(element.left, **kw)} CROSS JOIN {compiler.process(element.right, **kw)}"
            f" ON {compiler.process(element.onclause, **kw)}")


def cross_join(left: Any, right: Any, onclause: Any) -> Join:
    """An inner join of `left` and `right` that SQLite must run with `left` as the outer loop (its
    `CROSS JOIN`: the planner does not reorder it); a plain JOIN elsewhere. For a scan of `left` with a
    primary-key lookup into `right` where SQLite's planner would walk an index of `right` instead."""
    return _CrossJoin(left, right, onclause)


def _sqlite_hooks(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and real transactions (BEGIN IMMEDIATE) on SQLite.

    pysqlite's own transaction handling does not emit BEGIN before SELECTs and breaks SAVEPOINT;
    we take it over as the SQLAlchemy docs recommend. BEGIN IMMEDIATE takes the write lock at the
    start, so concurrent writers queue on busy_timeout instead of failing on a lock upgrade.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        _sqlite_hooks(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # 30 connections kept open, none beyond: an "overflow" connection is closed again when it is checked
    # in, so under steady concurrency above the pool size every request paid for a new PostgreSQL
    # backend (a process start): a third of the machine's CPU in a flash-sale run
    kwargs.setdefault("pool_size", 30)
    kwargs.setdefault("max_overflow", 0)
    # No JIT: PostgreSQL compiles a query whose estimated cost passes jit_above_cost, ~0.2 s each time.
    # Short queries over big tables with a poor row estimate (analytics reading a few hundred people at a
    # time along an index) paid that on every chunk: 13 s for one view at 10,000,000 orders, 1 s without.
    kwargs.setdefault("connect_args", {"options": "-c jit=off"})
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


# A pooled connection idle this long is pinged before it is handed out (a database restart or an idle
# timeout may have closed it). pool_pre_ping would ping on every checkout: a round trip per request
# and per event run, which checkout throughput pays for; a connection back in the pool within this
# time was working a moment ago.
PING_AFTER_IDLE_S = 5.0


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["siyu_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("siyu_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError("an idle pooled connection was closed") from exc


def upsert_insert(target: Session | Connection | str) -> Any:
    """The dialect's own `insert` construct (PostgreSQL's or SQLite's, both with `on_conflict_do_nothing`
    and `on_conflict_do_update`) for a session, a connection or a dialect name."""
    if isinstance(target, Session):
        name = target.get_bind().dialect.name
    elif isinstance(target, Connection):
        name = target.dialect.name
    else:
        name = target
    return pg_insert if name == "postgresql" else sqlite_insert


def execute_core(session: Session, statement: Any, params: Any = None) -> Any:
    """Run a Core statement on the session's connection, after the session's pending changes (as an ORM
    query would autoflush them), without the ORM's compile and result handling: for statements that
    need nothing of the ORM (plain columns, INSERT/UPDATE of a table), which cost about a third less."""
    session.flush()
    return session.connection().execute(statement, params)


def add_written(session: Session, objects: Sequence[Any]) -> None:
    """Write new objects of one mapped class as a flush would, without the unit of work (on the checkout
    path its bookkeeping cost more than the INSERT itself): the session's pending changes are flushed
    first (rows are written in the order the code made them), then one plain INSERT … RETURNING (an
    executemany for several, rows in the objects' order) writes them, and each object takes its row
    (generated id, defaults) and joins the session as loaded and clean. An object must set the same
    attributes as the others (lines built alike do); each attribute it leaves unset takes its column's
    default."""
    if not objects:
        return
    mapper = sa_inspect(type(objects[0]))
    attrs = mapper.column_attrs
    rows = []
    for obj in objects:
        given = sa_inspect(obj).dict
        if any(given.get(rel.key) for rel in mapper.relationships):
            raise ValueError("add_written writes an object's columns, not its related objects")
        rows.append({attr.columns[0].key: given[attr.key] for attr in attrs if attr.key in given})
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError("add_written: the objects set different attributes")
    result = execute_core(session, _insert_returning(mapper.local_table), rows if len(rows) > 1 else rows[0])
    for obj, row in zip(objects, result, strict=True):
        for attr in attrs:
            setattr(obj, attr.key, row._mapping[attr.columns[0]])
        make_transient_to_detached(obj)
        session.add(obj)


def update_written(session: Session, obj: Any, values: dict[str, Any]) -> None:
    """Change a loaded object's columns as a flush would, without the unit of work: one UPDATE by its
    primary key of `values` (attribute names), of the object's own changes not yet flushed, and of the
    columns' `onupdate` values (e.g. `updated_at`); the object then holds them as loaded, with nothing
    left to flush. The session's other pending changes are flushed first, in order."""
    state = sa_inspect(obj)
    mapper = state.mapper
    changes = {attr.key: state.dict.get(attr.key) for attr in mapper.column_attrs
               if attr.key in state.committed_state}
    changes.update(values)
    computed_in_sql = []
    for attr in mapper.column_attrs:
        default = attr.columns[0].onupdate
        if default is None or attr.key in changes:
            continue
        if default.is_callable:
            changes[attr.key] = default.arg(None)
        elif default.is_scalar:
            changes[attr.key] = default.arg
        else:  # a SQL expression: the UPDATE computes it, the object reads it back when asked
            computed_in_sql.append(attr.key)
    for key, value in changes.items():
        set_committed_value(obj, key, value)
    session.flush()
    columns = {key: mapper.column_attrs[key].columns[0] for key in changes}
    params = {f"new_{column.key}": changes[key] for key, column in columns.items()}
    params.update({f"pk_{column.key}": getattr(obj, mapper.get_property_by_column(column).key)
                   for column in mapper.primary_key})
    done = session.connection().execute(_update_by_pk(mapper.local_table, tuple(sorted(c.key for c in columns.values()))),
                                        params)
    if done.rowcount != 1:
        raise RuntimeError(f"update_written: {type(obj).__name__} {state.identity} was not updated")
    if computed_in_sql:
        session.expire(obj, computed_in_sql)


@functools.cache
def _update_by_pk(table: Any, keys: tuple[str, ...]) -> Any:
    return (update(table).where(*(c == bindparam(f"pk_{c.key}", type_=c.type) for c in table.primary_key.columns))
            .values({table.c[k]: bindparam(f"new_{k}", type_=table.c[k].type) for k in keys}))


@functools.cache
def _insert_returning(table: Any) -> Any:
    return insert(table).returning(*table.c, sort_by_parameter_order=True)


LAST_KEY = "siyu_last_in_transaction"


def last_in_transaction(session: Session, fn: Any) -> None:
    """Run `fn(session)` at the end of the session's transaction, after everything else is flushed and
    just before the commit: for a write to a row that many transactions update (a day's sales counter),
    so that its row lock is held for the commit alone and not while the rest of the transaction (other
    event handlers) runs. Nothing runs when the transaction rolls back."""
    session.info.setdefault(LAST_KEY, []).append(fn)


def run_last(session: Session) -> None:
    """Run the writes queued by `last_in_transaction` now (the commit does; a caller reading their rows
    inside the same transaction can)."""
    if not session.info.get(LAST_KEY):
        return
    session.flush()
    while session.info.get(LAST_KEY):
        session.info[LAST_KEY].pop(0)(session)


@event.listens_for(Session, "before_commit")
def _run_last(session: Session) -> None:
    # releasing a savepoint fires before_commit too: the queued writes wait for the real commit
    if not session.in_nested_transaction():
        run_last(session)


@event.listens_for(Session, "after_rollback")
def _forget_last(session: Session) -> None:
    session.info.pop(LAST_KEY, None)


class Database:
    """The process's engine and session factory. Tests replace `make_session` to bind a test
    connection, so that everything a request or an event handler does stays in the test's
    transaction."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._factory = sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def make_session(self) -> Session:
        return self._factory()

    def open_session(self) -> Session:
        """A unit of work's session (no connection yet: that is taken at its first statement); end it with
        `finish`. Its events are dispatched by `finish`, once its connection is back in the pool."""
        session = self.make_session()
        session.info["siyu_defer_events"] = True
        return session

    def finish(self, session: Session, *, commit: bool) -> None:
        """End a unit of work from `open_session`: commit (or roll back), close, then run the handlers of
        the events it committed (a commit that fails rolls back and raises)."""
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        # Events committed above run their handlers now that the connection is back in the pool.
        from siyu.core.events import dispatch_committed

        dispatch_committed(session)

    @contextmanager
    def scope(self) -> Iterator[Session]:
        """One unit of work: commit at the end, roll back on any error."""
        session = self.open_session()
        try:
            yield session
        except BaseException:
            self.finish(session, commit=False)
            raise
        self.finish(session, commit=True)

    def dispose(self) -> None:
        self.engine.dispose()


_database: Database | None = None
# A Database bound to the current context (an app created with `create_app(database=...)` sets it for
# each of its requests); it wins over the process-global one, so an app serving a fixed database (the
# browser tests' live server) and the unit tests' swapped-in database never see each other's.
_context_database: contextvars.ContextVar[Database | None] = contextvars.ContextVar("siyu_database", default=None)


@contextmanager
def use_database(database: Database) -> Iterator[Database]:
    """Make `database` the one get_database() answers in this context (and threads started from it)."""
    token = _context_database.set(database)
    try:
        yield database
    finally:
        _context_database.reset(token)


def configure(url: str, **engine_kwargs: Any) -> Database:
    global _database
    if _database is not None and _database.url == url:
        return _database
    if _database is not None:
        _database.dispose()
    _database = Database(url, **engine_kwargs)
    return _database


def set_database(database: Database | None) -> None:
    global _database
    _database = database


def get_database() -> Database:
    bound = _context_database.get()
    if bound is not None:
        return bound
    if _database is None:
        from siyu.config import get_settings

        return configure(get_settings().database_url)
    return _database


def import_all_models() -> None:
    """Import every domain's models so Base.metadata knows all tables."""
    import importlib
    import importlib.util

    from siyu import DOMAINS, _has_module

    importlib.import_module("siyu.core.models")
    for domain in DOMAINS:
        name = f"siyu.{domain}.models"
        if _has_module(name):
            importlib.import_module(name)
