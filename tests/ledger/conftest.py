from __future__ import annotations

import pytest

from siyu.db import Base, Database
from tests.conftest import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    """A real database whose transactions really commit (for racing threads). Emptied afterwards so
    the rolled-back tests that share the PostgreSQL database start clean."""
    database = fresh_database(request.param, name="ledger_threads")
    try:
        yield database
    finally:
        with database.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        database.dispose()
