"""A bargain end to end over HTTP: staff build and schedule a campaign, a customer starts a bargain, two
friends assist through the shop API until the floor, the starter previews and orders at the floor,
pays in the sandbox, and the console's figures and the bargain agree; an expired bargain stays out."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.promotions.service import bargains
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku

T0 = dt.datetime(2026, 8, 3, 2, 0, tzinfo=dt.UTC)


def test_a_bargain_gets_to_the_floor_and_is_bought(client: TestClient, db: Session) -> None:
    with clock.frozen(T0):
        merchant = make_merchant(db)
        admin = auth_headers(db, make_staff(db, merchant=merchant))
        sku = make_sku(db, merchant=merchant, price_cents=19900, stock=5)
        starter, friend_a, friend_b = (make_customer(db, merchant=merchant, nickname=n) for n in ("阿强", "甲", "乙"))
        shop = f"/api/v1/shop/{merchant.slug}"
        # given: a campaign of 199.00 → 19.90 in two assists, scheduled over the API
        r = client.post("/api/v1/admin/bargains", headers=admin, json={
            "title": "两刀砍到底", "sku_id": sku.id, "start_price_cents": 19900, "floor_price_cents": 1990,
            "expected_assists": 2, "time_limit_minutes": 60, "allow_buy_at_current": False,
            "starts_at": (T0 - dt.timedelta(hours=1)).isoformat(), "ends_at": (T0 + dt.timedelta(days=1)).isoformat()})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert client.post(f"/api/v1/admin/bargains/{cid}/status", headers=admin,
                           json={"action": "schedule"}).status_code == 200
        # when: the starter starts and two friends assist
        bid = client.post(f"{shop}/bargains", headers=customer_headers(db, starter), json={"campaign_id": cid}).json()["id"]
        cuts = []
        for friend, device in ((friend_a, "phone-a"), (friend_b, "phone-b")):
            r = client.post(f"{shop}/bargains/{bid}/assists", headers={**customer_headers(db, friend),
                                                                       "X-Device-Id": device})
            assert r.status_code == 201, r.text
            cuts.append(r.json()["cut_cents"])
        view = client.get(f"{shop}/bargains/{bid}", headers=customer_headers(db, starter)).json()
        # then: at the floor, the cuts sum exactly, the starter may buy
        assert (view["current_price_cents"], view["at_floor"], view["can_buy"], view["progress_bps"]) == \
            (1990, True, True, 10000)
        assert sum(cuts) == 19900 - 1990
        assert [a["cut_cents"] for a in view["assists"]] == cuts
        # when: the starter orders at the floor and pays in the sandbox
        headers = customer_headers(db, starter)
        body = checkout_body([(sku, 1)], promotion={"kind": "bargain", "bargain_id": bid})
        preview = client.post(f"{shop}/checkout/preview", json=body, headers=headers).json()
        assert (preview["total_cents"], [a["kind"] for a in preview["adjustments"]]) == (1990, ["bargain"])
        r = client.post(f"{shop}/orders", json=body, headers={**headers, "Idempotency-Key": "bargain-1"})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["total_cents"] == 1990
        started = client.post(f"{shop}/orders/{order['id']}/pay", json={"method": "sandbox"},
                              headers={**headers, "Idempotency-Key": "pay-1"}).json()
        assert client.post(started["sandbox_confirm_url"], headers=headers).status_code == 200
        # then: bought; the console's figures agree
        assert client.get(f"{shop}/bargains/{bid}").json()["status"] == "bought"
        detail = client.get(f"/api/v1/admin/bargains/{cid}", headers=admin).json()
        assert detail["figures"] == {"bargains": 1, "assists": 2, "at_floor": 1, "orders": 1, "bought": 1,
                                     "gmv_cents": 1990}
        # a second friend's bargain that nobody helps expires with the clock
        other = client.post(f"{shop}/bargains", headers=customer_headers(db, friend_a), json={"campaign_id": cid}).json()
    with clock.frozen(T0 + dt.timedelta(minutes=60)):
        assert bargains.expire_due(db, clock.now()) == 1
        assert client.get(f"{shop}/bargains/{other['id']}").json()["status"] == "expired"
        r = client.post(f"{shop}/bargains/{other['id']}/assists", headers=customer_headers(db, friend_b))
        assert (r.status_code, r.json()["error"]["code"]) == (409, "bargain_closed")
