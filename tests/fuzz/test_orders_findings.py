"""What the schemathesis suite found in orders, pinned down as plain tests: a bare carriage return in a
bulk-shipping CSV once raised csv.Error (a 500)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from siyu.orders.models import Order
from tests.factories.merchants import auth_headers, make_merchant, make_staff


# The second is what Excel for Mac writes ("CSV (Macintosh)": rows end in a bare \r).
@pytest.mark.parametrize("text", ["K\U00100d8c\r[x", "order_no,carrier,tracking_no\rSY1,顺丰,SF12345\r"])
def test_bulk_ship_with_a_bare_carriage_return_is_a_4xx_not_a_500(db, client, text):
    # given
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    # when
    r = client.post("/api/v1/admin/orders/bulk-ship", json={"csv": text}, headers=auth_headers(db, admin))
    # then: a report of bad rows (200) or a validation error, never a 500; nothing shipped
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json()["shipped"] == 0
    else:
        assert r.json()["error"]["code"] == "validation_error"
    assert db.scalar(select(func.count(Order.id)).where(Order.status == "shipped")) == 0
