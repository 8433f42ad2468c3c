"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and undo it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from siyu import migrate
from siyu.db import Base, import_all_models
from tests.conftest import BACKENDS, _tmp, ensure_pg_database, pg_url_named


def _empty_database_url(backend: str) -> str:
    if backend == "sqlite":
        import os

        path = os.path.join(_tmp, "migrations.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return f"sqlite:///{path}"
    url = pg_url_named("mig")
    ensure_pg_database(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def _differences(url: str) -> list:
    import_all_models()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_head_builds_the_models_schema_and_downgrade_removes_it(backend: str) -> None:
    # given an empty database
    url = _empty_database_url(backend)
    assert _tables(url) == set()

    # when it is upgraded to head
    migrate.upgrade(url)

    # then it is at head and nothing differs from the models
    assert migrate.current_revision(url) == migrate.head_revision()
    assert migrate.is_up_to_date(url)
    assert _differences(url) == []
    assert set(Base.metadata.tables) <= _tables(url)

    # when it is downgraded to base, only alembic's own table is left, and it upgrades again
    migrate.downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    assert _differences(url) != []  # the comparison does see a missing schema
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert _differences(url) == []


def test_revisions_form_one_line_starting_at_0001() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(script.walk_revisions())
    assert len(script.get_heads()) == 1
    assert revisions[-1].revision == "0001"
    assert revisions[-1].down_revision is None


def test_generated_migrations_use_plain_types() -> None:
    # UTCDateTime renders as sa.DateTime(timezone=True): migrations never import siyu.db types
    import pathlib

    versions = pathlib.Path(migrate.__file__).parent / "migrations" / "versions"
    for path in versions.glob("*.py"):
        source = path.read_text()
        assert "siyu.db" not in source, path.name
        assert "UTCDateTime" not in source, path.name
