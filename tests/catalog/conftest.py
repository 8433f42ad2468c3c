from __future__ import annotations

import io

import pytest
from PIL import Image

from siyu.core.auth import Role
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store


class Shop:
    """A merchant with a brand admin and a guide, and their API headers."""

    def __init__(self, db):
        self.merchant = make_merchant(db)
        self.admin = make_staff(db, merchant=self.merchant)
        self.store = make_store(db, merchant=self.merchant)
        self.guide = make_staff(db, merchant=self.merchant, role=Role.GUIDE, store=self.store)
        self.admin_headers = auth_headers(db, self.admin)
        self.guide_headers = auth_headers(db, self.guide)


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def other_shop(db) -> Shop:
    return Shop(db)


def png_bytes(size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()
