"""Fixtures and helpers the promotions tests share."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from siyu.merchants.models import Merchant
from tests.factories.merchants import make_merchant


@pytest.fixture
def merchant(db: Session) -> Merchant:
    """A merchant of the test's own (on each database `db` runs on)."""
    return make_merchant(db)


def csrf(html: str) -> str:
    """The CSRF token of the page's form."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
