"""End to end over HTTP: A recruits B, B shares, a customer opens the link and buys, part-refunds, the order completes, the
after-sales window closes, B and A withdraw (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.jobs import run_all
from siyu.customers.deps import cookie_name
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku

T0 = dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC)


def test_two_level_chain_over_http(client: TestClient, db: Session, merchant: Merchant) -> None:
    shop, admin_api = f"/api/v1/shop/{merchant.slug}", "/api/v1/admin/distribution"
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    a, b, c = (make_customer(db, merchant=merchant, nickname=n) for n in ("阿甲", "阿乙", "阿丙"))
    ha, hb, hc = (customer_headers(db, x) for x in (a, b, c))
    sku = make_sku(db, merchant=merchant, price_cents=5000, stock=10)

    with clock.frozen(T0):
        # given a programme paying 10% at level 1 and 5% at level 2, withdrawals from ¥1
        r = client.patch(f"{admin_api}/programme", json={"min_withdrawal_cents": 100, "levels": 2}, headers=admin)
        assert r.status_code == 200, r.text
        for level, bps in ((1, 1000), (2, 500)):
            r = client.post(f"{admin_api}/rules", json={"scope": "default", "level": level, "kind": "bps",
                                                         "value": bps}, headers=admin)
            assert r.status_code == 201, r.text

        # when A joins, and B joins with A's invitation code
        r = client.post(f"{shop}/distribution/join", json={}, headers=ha)
        assert r.status_code == 201, r.text
        da = r.json()
        r = client.post(f"{shop}/distribution/join", json={"invite_code": da["invite_code"]}, headers=hb)
        assert r.status_code == 201, r.text
        db_ = r.json()
        assert db_["upline_id"] == da["id"]
        assert client.get(f"{shop}/distribution/team", headers=ha).json()["items"][0]["id"] == db_["id"]

        # and B shares the product; C opens B's link (attribution binds C to B) and buys 4 units (¥200)
        r = client.post(f"{shop}/shares", json={"target_type": "product", "target_id": sku.product_id}, headers=hb)
        assert r.status_code == 200, r.text
        client.cookies.set(cookie_name(merchant.slug), hc["Authorization"].removeprefix("Bearer "))
        r = client.get(f"/s/{r.json()['code']}", follow_redirects=False)
        assert r.status_code == 303, r.text
        client.cookies.clear()
        r = client.post(f"{shop}/orders", json=checkout_body([(sku, 4)]), headers={**hc, "Idempotency-Key": "o1"})
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        assert r.json()["attribution"]["referrer_customer_id"] == b.id
        r = client.post(f"{shop}/orders/{order_id}/pay", json={"method": "sandbox"}, headers=hc)
        r = client.post(r.json()["sandbox_confirm_url"], headers=hc)
        assert r.status_code == 200, r.text

        # then B has ¥20 pending and A ¥10
        me_b = client.get(f"{shop}/distribution/me", headers=hb).json()
        me_a = client.get(f"{shop}/distribution/me", headers=ha).json()
        assert me_b["balances"]["pending_cents"] == 2000 and me_a["balances"]["pending_cents"] == 1000
        rows = client.get(f"{admin_api}/commissions", params={"order_id": order_id}, headers=admin).json()["items"]
        assert sorted((x["level"], x["beneficiary_id"], x["amount_cents"], x["rule"]["value"]) for x in rows) == [
            (1, db_["id"], 2000, 1000), (2, da["id"], 1000, 500)]

        # when C has one unit refunded
        line_id = client.get(f"{shop}/orders/{order_id}", headers=hc).json()["lines"][0]["id"]
        r = client.post(f"{shop}/orders/{order_id}/refunds",
                        json={"lines": [{"order_line_id": line_id, "quantity": 1}], "reason": "多买了"}, headers=hc)
        assert r.status_code == 201, r.text
        r = client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin)
        assert r.status_code == 200, r.text

        # then a quarter of each commission is reversed
        me_b = client.get(f"{shop}/distribution/me", headers=hb).json()["balances"]
        assert (me_b["pending_cents"], me_b["reversed_cents"]) == (1500, 500)

        # when the order ships and C confirms receipt
        r = client.post(f"/api/v1/admin/orders/{order_id}/ship", json={"carrier": "顺丰", "tracking_no": "SF0001"},
                        headers=admin)
        assert r.status_code == 200, r.text
        r = client.post(f"{shop}/orders/{order_id}/confirm-receipt", headers=hc)
        assert r.json()["status"] == "completed"

        # and B cannot withdraw yet: nothing is withdrawable
        r = client.post(f"{shop}/distribution/withdrawals", json={"amount_cents": 100}, headers=hb)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "insufficient_balance")

    # when the 7-day after-sales window has closed and the jobs tick runs
    later = T0 + dt.timedelta(days=7, hours=1)
    with clock.frozen(later):
        assert run_all(later)["distribution.settle"] == 2
        me_b = client.get(f"{shop}/distribution/me", headers=hb).json()["balances"]
        me_a = client.get(f"{shop}/distribution/me", headers=ha).json()["balances"]
        assert (me_b["pending_cents"], me_b["withdrawable_cents"]) == (0, 1500)
        assert (me_a["pending_cents"], me_a["withdrawable_cents"]) == (0, 750)

        # then B withdraws ¥15 (a replay of the request does not withdraw twice) and A ¥7.50
        for _ in range(2):
            r = client.post(f"{shop}/distribution/withdrawals", json={"amount_cents": 1500},
                            headers={**hb, "Idempotency-Key": "w-b-1"})
            assert r.status_code == 201, r.text
        wb = r.json()
        r = client.post(f"{shop}/distribution/withdrawals", json={"amount_cents": 750}, headers=ha)
        assert r.status_code == 201, r.text
        wa = r.json()
        for w in (wb, wa):
            r = client.post(f"{admin_api}/withdrawals/{w['id']}/approve", headers=admin)
            assert (r.status_code, r.json()["status"]) == (200, "paid"), r.text

    me_b = client.get(f"{shop}/distribution/me", headers=hb).json()["balances"]
    me_a = client.get(f"{shop}/distribution/me", headers=ha).json()["balances"]
    assert (me_b["withdrawable_cents"], me_b["withdrawn_cents"], me_b["reversed_cents"]) == (0, 1500, 500)
    assert (me_a["withdrawable_cents"], me_a["withdrawn_cents"], me_a["reversed_cents"]) == (0, 750, 250)
    history = client.get(f"{shop}/distribution/withdrawals", headers=hb).json()["items"]
    assert [(w["amount_cents"], w["status"]) for w in history] == [(1500, "paid")]
    assert client.get(f"{admin_api}/ledger/verify", headers=admin).json() == {"ok": True, "mismatches": []}


def test_other_merchants_distributors_are_not_found(client: TestClient, db: Session, merchant: Merchant) -> None:
    from tests.factories.distribution import make_distributor
    from tests.factories.merchants import make_merchant

    other = make_merchant(db)
    d = make_distributor(db, merchant=other)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.get(f"/api/v1/admin/distribution/distributors/{d.id}", headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = client.post(f"/api/v1/admin/distribution/distributors/{d.id}/status", json={"status": "frozen"},
                    headers=admin)
    assert r.status_code == 404
    db.refresh(d)
    assert d.status == "active"
