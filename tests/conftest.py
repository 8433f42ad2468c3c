"""Test fixtures. `db` runs each test on SQLite, and also on PostgreSQL when SIYU_TEST_PG_URL is set,
inside a transaction rolled back at the end (requests and event handlers join it).

Parallel runs (pytest-xdist, `.ci/run` passes `-n 2 --dist loadgroup --no-loadscope-reorder`): every
worker process has its own SQLite files, media and huey paths (a temporary directory per process) and
its own PostgreSQL databases (`<db>_gw0`, `<db>_gw0_<name>` ...); see `pytest_collection_modifyitems`
below for which tests stay together on one worker. A plain `pytest` runs in one process as before."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_tmp = tempfile.mkdtemp(prefix="siyu-test-")
os.environ.setdefault("SIYU_DEV_LOGIN", "1")
os.environ.setdefault("SIYU_ARGON2_TIME_COST", "1")
os.environ.setdefault("SIYU_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("SIYU_MEDIA_DIR", os.path.join(_tmp, "media"))
os.environ.setdefault("SIYU_HUEY_PATH", os.path.join(_tmp, "huey.db"))
os.environ.setdefault("SIYU_DATABASE_URL", f"sqlite:///{_tmp}/default.db")

import hypothesis  # noqa: E402
import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from siyu.db import Base, Database, import_all_models, set_database  # noqa: E402

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1" ... in a pytest-xdist worker


def _worker_pg_url(url: str | None) -> str | None:
    """SIYU_TEST_PG_URL, or under pytest-xdist a database of this worker's own: `<db>_gw0`."""
    if not url or not WORKER:
        return url
    from sqlalchemy.engine import make_url

    target = make_url(url)
    return target.set(database=f"{target.database}_{WORKER}").render_as_string(hide_password=False)


PG_URL = _worker_pg_url(os.environ.get("SIYU_TEST_PG_URL"))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# No per-example time limit for property tests (hypothesis' default is 200 ms): parallel workers share
# the CPU, and a slow example is not a wrong one. Tests may still set their own settings.
hypothesis.settings.register_profile("siyu", deadline=None)
hypothesis.settings.load_profile("siyu")


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


SCHEMA_MARK = "siyu_test_schema"  # one row: the fingerprint of the models' DDL the tables were made from
_fingerprints: dict[str, str] = {}


def schema_fingerprint(dialect) -> str:
    """A hash of the CREATE TABLE / CREATE INDEX statements of the current models in this dialect."""
    if dialect.name not in _fingerprints:
        import hashlib

        from sqlalchemy.schema import CreateIndex, CreateTable

        ddl = []
        for table in Base.metadata.sorted_tables:
            ddl.append(str(CreateTable(table).compile(dialect=dialect)))
            ddl += sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
        _fingerprints[dialect.name] = hashlib.sha256("\n".join(ddl).encode()).hexdigest()
    return _fingerprints[dialect.name]


def reset_schema(database: Database) -> None:
    """Leave the current schema with no rows. When the tables were made from exactly the current models
    (the fingerprint kept in SCHEMA_MARK matches) they are only emptied and the id sequences restarted
    at 1 (a fraction of a second; dropping and creating the ~100 tables takes seconds on PostgreSQL);
    otherwise (or when emptying fails: a test changed a table) they are dropped and created again."""
    from sqlalchemy import MetaData, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = database.engine
    fingerprint = schema_fingerprint(engine.dialect)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {SCHEMA_MARK} (fingerprint VARCHAR(64) NOT NULL)"))
        current = conn.scalar(text(f"SELECT fingerprint FROM {SCHEMA_MARK}"))
    if current == fingerprint:
        try:
            with engine.begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
                if conn.dialect.name == "postgresql":  # SQLite reuses ids from 1 once a table is empty
                    conn.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S' "
                                      "AND c.relnamespace = current_schema()::regnamespace")).all()
            return
        except SQLAlchemyError:
            pass
    # Every table there, not only the current models' ones: tables of other models (another branch, a
    # newer checkout) may hold foreign keys to ours and would stop their drop.
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {SCHEMA_MARK} (fingerprint VARCHAR(64) NOT NULL)"))
        conn.execute(text(f"INSERT INTO {SCHEMA_MARK} (fingerprint) VALUES (:f)"), {"f": fingerprint})


def fresh_database(backend: str, name: str = "test") -> Database:
    """A database with the current schema and no rows."""
    import_all_models()
    if backend == "sqlite":
        database = Database(f"sqlite:///{_tmp}/{name}.db")
    else:
        url = pg_url_named(name)
        ensure_pg_database(url)
        database = Database(url)
    reset_schema(database)
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


BROWSER_DIR = Path(__file__).parent / "browser"
SHARED_SCOPES = {"class", "module", "package"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """Which tests run together: "browser" for the browser tests (after everything else, on either worker:
    each worker process has its own live server and chromium), and one group per module and per parameter
    of a class-, module- or package-scoped fixture for the tests sharing one (state built once and used by
    the tests in turn: the fuzz run's seeded demo, a demo checked from several sides; the fuzz run on
    SQLite and on PostgreSQL are two groups), which must run on one worker. None: any worker."""
    if BROWSER_DIR in Path(str(item.path)).parents:
        return "browser"
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    shared = sorted(name for name, defs in info.name2fixturedefs.items() if defs and defs[-1].scope in SHARED_SCOPES)
    if not shared:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    key = ",".join(f"{name}={params[name]}" for name in shared if name in params)
    # no "@" or "]" in a group name: xdist splits the node id on the last "@" after the last "]"
    return f"{item.nodeid.split('::')[0]}:{key}".replace("@", "_").replace("]", ")")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """In a pytest-xdist worker (`--dist loadgroup --no-loadscope-reorder`): mark each test's group
    (before xdist reads the marks), then, once every plugin has ordered the items, put the groups
    first, largest first (a long group started last would keep one worker busy alone at the end),
    then the single tests in their order, then the browser tests (they share their process with the
    event loop Playwright drives, so nothing runs after them). A plain pytest run is left as it is."""
    if not WORKER:
        return (yield)
    groups: dict[int, str] = {}  # by id(item): xdist appends "@group" to the node id, and so to its hash
    for item in items:
        name = xdist_group_of(item)
        if name is not None:
            if name != "browser":
                item.add_marker(pytest.mark.xdist_group(name))
            groups[id(item)] = name
    result = yield
    # pytest-xdist 3.8 sends a group to one worker by the "@group" it appends to `item._nodeid`; pytest 9.2
    # keeps the node id elsewhere (`_id`), so that append is lost and each test of a group went to any
    # worker (a module's seeded demo built once per worker). Append it where this pytest keeps it.
    for item in items:
        name = groups.get(id(item))
        if name is not None and name != "browser" and "@" not in item.nodeid and hasattr(item, "_id"):
            from _pytest.nodeid import coerce_node_id

            item._id = coerce_node_id(f"{item.nodeid}@{name}")
    sizes = Counter(groups.values())
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(groups.get(id(item), ""), index)
    grouped = sorted((item for item in items if groups.get(id(item), "browser") != "browser"),
                     key=lambda item: (-sizes[groups[id(item)]], first[groups[id(item)]]))
    single = [item for item in items if id(item) not in groups]
    browser = [item for item in items if groups.get(id(item)) == "browser"]
    items[:] = grouped + single + browser
    return result


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
