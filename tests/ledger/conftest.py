from __future__ import annotations

import pytest

from siyu.db import Database
from tests.conftest import BACKENDS, committed


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    """A real database whose transactions really commit (for racing threads)."""
    with committed(request.param, "ledger_threads") as database:
        yield database
