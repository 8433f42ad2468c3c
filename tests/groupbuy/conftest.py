from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from siyu.groupbuy import service  # noqa: F401  (registers the wave contributor)
from siyu.merchants.models import Merchant
from tests.factories.merchants import make_merchant


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)
