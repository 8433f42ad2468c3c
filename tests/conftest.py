"""Test fixtures. `db` runs each test on SQLite, and also on PostgreSQL when SIYU_TEST_PG_URL is set,
inside a transaction rolled back at the end (requests and event handlers join it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

_tmp = tempfile.mkdtemp(prefix="siyu-test-")
os.environ.setdefault("SIYU_DEV_LOGIN", "1")
os.environ.setdefault("SIYU_ARGON2_TIME_COST", "1")
os.environ.setdefault("SIYU_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("SIYU_MEDIA_DIR", os.path.join(_tmp, "media"))
os.environ.setdefault("SIYU_HUEY_PATH", os.path.join(_tmp, "huey.db"))
os.environ.setdefault("SIYU_DATABASE_URL", f"sqlite:///{_tmp}/default.db")

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from siyu.db import Base, Database, import_all_models, set_database  # noqa: E402

PG_URL = os.environ.get("SIYU_TEST_PG_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def ensure_pg_database(url: str) -> None:
    """Create the test database when the server has none of that name yet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def pg_url_named(name: str = "test") -> str:
    """SIYU_TEST_PG_URL itself for "test"; for another name, a sibling database `<db>_<name>` on the same
    server, so tests that need their own database never drop the shared one."""
    from sqlalchemy.engine import make_url

    if name == "test":
        return PG_URL  # type: ignore[return-value]
    target = make_url(PG_URL)
    return target.set(database=f"{target.database}_{name}").render_as_string(hide_password=False)


def fresh_database(backend: str, name: str = "test") -> Database:
    """A database with the current schema and no rows."""
    import_all_models()
    if backend == "sqlite":
        database = Database(f"sqlite:///{_tmp}/{name}.db")
    else:
        url = pg_url_named(name)
        ensure_pg_database(url)
        database = Database(url)
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    return database


@contextlib.contextmanager
def committed(backend: str, name: str) -> Iterator[Database]:
    """A real database whose transactions really commit (racing threads, live servers), emptied
    afterwards so the rolled-back tests that share the PostgreSQL server start clean."""
    database = fresh_database(backend, name=name)
    try:
        yield database
    finally:
        with database.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        database.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    database = fresh_database(request.param)
    yield database
    database.dispose()


@pytest.fixture
def db(database: Database) -> Session:
    """A session on a connection whose transaction is rolled back after the test. Sessions made
    for requests and event handlers during the test bind the same connection (savepoints)."""
    connection = database.engine.connect()
    transaction = connection.begin()

    def make_session() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    original = database.make_session
    database.make_session = make_session  # type: ignore[method-assign]
    set_database(database)
    session = make_session()
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()
        database.make_session = original  # type: ignore[method-assign]
        set_database(None)


_app = None


def get_app():
    global _app
    if _app is None:
        from siyu.app import create_app

        _app = create_app(configure_database=False)
    return _app


@pytest.fixture
def client(db: Session) -> TestClient:
    with TestClient(get_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def backend(database: Database) -> str:
    return database.dialect
