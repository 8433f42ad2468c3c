"""Alembic, driven from code: `siyu migrate`, `siyu makemigration`, the tests and the demo use these.

The scripts live in the package (`siyu:migrations`), so no alembic.ini is needed. The database URL
travels in `config.attributes["database_url"]` (never through the ini parser, which would choke on a
`%` in a password); without it env.py falls back to SIYU_DATABASE_URL.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from siyu.db import make_engine


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "siyu:migrations")
    config.set_main_option("path_separator", "os")
    # versions/0001_initial.py: the revision id first, so files sort in order.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def is_up_to_date(url: str) -> bool:
    return current_revision(url) == head_revision()


def make_revision(url: str | None, message: str, *, rev_id: str | None = None) -> str:
    """Autogenerate a revision: the difference between the models and what the migrations build.

    Without a URL, the migrations are first applied to a throw-away SQLite database, so the new
    revision holds exactly what the models add (not whatever state a local database is in).
    Returns the path of the new file.
    """
    import tempfile
    from pathlib import Path

    if url is not None:
        return _autogenerate(url, message, rev_id)
    with tempfile.TemporaryDirectory(prefix="siyu-makemigration-") as tmp:
        scratch = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        upgrade(scratch)
        return _autogenerate(scratch, message, rev_id)


def _autogenerate(url: str, message: str, rev_id: str | None) -> str:
    script = command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(s.path for s in scripts if s is not None)
