"""Alembic environment: siyu's metadata, batch mode (so ALTERs work on SQLite), and siyu's own types
rendered as plain SQLAlchemy types so that migrations never import application code."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import event

from siyu.db import Base, UTCDateTime, import_all_models, make_engine

config = context.config
import_all_models()
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from siyu.config import get_settings

    return get_settings().database_url


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """UTCDateTime is a TypeDecorator over DateTime(timezone=True): the migration needs only that."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=render_item,
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = database_url()
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        # Batch mode copies and drops tables; foreign keys must not fire (or cascade) meanwhile.
        # make_engine's hooks already run every transaction as BEGIN … COMMIT, so DDL is transactional.
        @event.listens_for(engine, "connect")
        def _fk_off(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()

    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
