"""Flash sales over HTTP: the admin API (create, edit, schedule, pause, resume, end, live figures), the shop
API, and the whole flow end to end: a sale sells out without overselling, late buyers are told
`flash_sold_out`, a cancellation reopens one unit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.promotions.models.flash_sales import FlashSale
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku
from tests.factories.promotions import make_flash_sale

ADMIN = "/api/v1/admin/flash-sales"


@pytest.fixture(autouse=True)
def still_clock():
    with clock.frozen(clock.now().replace(microsecond=0)):
        yield


@pytest.fixture
def admin(db, merchant):
    return auth_headers(db, make_staff(db, merchant=merchant))


def _body(sku, **over):
    now = clock.now()
    body = {"title": "618 秒杀", "starts_at": (now + dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
            "items": [{"sku_id": sku.id, "flash_price_cents": 5900, "allocation": 20, "per_customer_limit": 2}]}
    body.update(over)
    return body


def test_admin_creates_edits_schedules_pauses_and_ends(client, db, merchant, admin) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100)
    # create: a draft
    r = client.post(ADMIN, json=_body(sku), headers=admin)
    assert r.status_code == 201, r.text
    sale = r.json()
    assert (sale["title"], sale["status"], sale["stored_status"]) == ("618 秒杀", "draft", "draft")
    assert [(i["sku_id"], i["flash_price_cents"], i["normal_price_cents"], i["allocation"], i["sold"], i["left"],
             i["per_customer_limit"], i["stock"]) for i in sale["items"]] == [(sku.id, 5900, 9900, 20, 0, 20, 2, 100)]
    # edit: new price and allocation
    r = client.put(f"{ADMIN}/{sale['id']}", json=_body(sku, items=[{"sku_id": sku.id, "flash_price_cents": 4900,
                                                                      "allocation": 5}]), headers=admin)
    assert r.status_code == 200, r.text
    assert [(i["flash_price_cents"], i["allocation"], i["per_customer_limit"]) for i in r.json()["items"]] == \
        [(4900, 5, None)]
    # schedule → it counts down to its start
    r = client.post(f"{ADMIN}/{sale['id']}/schedule", headers=admin)
    assert (r.status_code, r.json()["status"], r.json()["seconds_to_start"]) == (200, "scheduled", 3600)
    # pause, resume, end; a second end is refused by the transition table
    assert client.post(f"{ADMIN}/{sale['id']}/pause", headers=admin).json()["status"] == "paused"
    assert client.post(f"{ADMIN}/{sale['id']}/resume", headers=admin).json()["status"] == "scheduled"
    assert client.post(f"{ADMIN}/{sale['id']}/end", headers=admin).json()["status"] == "ended"
    r = client.post(f"{ADMIN}/{sale['id']}/end", headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")
    # the list, filtered on what they are now
    assert [s["id"] for s in client.get(ADMIN, params={"status": "ended"}, headers=admin).json()["items"]] == [sale["id"]]
    assert client.get(ADMIN, params={"status": "active"}, headers=admin).json()["items"] == []


@pytest.mark.parametrize("patch", [
    {"title": ""}, {"title": "x" * 61}, {"items": []}, {"starts_at": "2026-01-01T00:00:00"},
    {"starts_at": "9999-12-31T23:00:00-05:00"},
    {"items": [{"sku_id": 2**60, "flash_price_cents": 1, "allocation": 1}]},
    {"items": [{"sku_id": 1, "flash_price_cents": -1, "allocation": 1}]},
    {"items": [{"sku_id": 1, "flash_price_cents": 1, "allocation": 0}]},
])
def test_bad_input_is_a_422_and_creates_nothing(client, db, merchant, admin, patch) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100)
    r = client.post(ADMIN, json=_body(sku, **patch), headers=admin)
    assert r.status_code == 422, r.text
    assert db.scalar(select(func.count()).select_from(FlashSale)) == 0


def test_the_end_must_come_after_the_start(client, db, merchant, admin) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100)
    now = clock.now()
    r = client.post(ADMIN, json=_body(sku, ends_at=now.isoformat(), starts_at=(now + dt.timedelta(hours=1)).isoformat()),
                    headers=admin)
    assert (r.status_code, list(r.json()["error"]["details"]["fields"])) == (422, ["ends_at"])


def test_another_merchants_sale_is_404_and_guides_are_refused(client, db, merchant, admin) -> None:
    other = make_merchant(db)
    sku = make_sku(db, merchant=other, price_cents=1000, stock=5)
    theirs = make_flash_sale(db, merchant=other, items=[(sku, 500, 5, None)])
    assert client.get(f"{ADMIN}/{theirs.id}", headers=admin).status_code == 404
    assert client.post(f"{ADMIN}/{theirs.id}/pause", headers=admin).status_code == 404
    assert client.get(f"/api/v1/shop/{merchant.slug}/flash-sales/{theirs.id}").status_code == 404
    guide = auth_headers(db, make_staff(db, merchant=merchant, role="guide"))
    assert client.get(ADMIN, headers=guide).status_code == 403


def test_shop_lists_running_then_coming_and_hides_drafts(client, db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    now = clock.now()
    running = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)], title="进行中")
    coming = make_flash_sale(db, merchant=merchant, items=[(sku, 600, 10, None)], title="即将开始",
                             starts_at=now + dt.timedelta(hours=3), ends_at=now + dt.timedelta(hours=4))
    draft = make_flash_sale(db, merchant=merchant, items=[(sku, 700, 10, None)], status="draft")
    make_flash_sale(db, merchant=merchant, items=[(sku, 700, 10, None)], status="ended")
    r = client.get(f"/api/v1/shop/{merchant.slug}/flash-sales")
    assert [(s["id"], s["status"]) for s in r.json()["items"]] == [(running.id, "active"), (coming.id, "scheduled")]
    assert "stock" not in r.json()["items"][0]["items"][0]
    assert client.get(f"/api/v1/shop/{merchant.slug}/flash-sales/{draft.id}").status_code == 404


def test_end_to_end_a_sale_sells_out_without_overselling(client, db, merchant, admin) -> None:
    # given a sale of 3 units, at most 2 each, set up and scheduled over the admin API
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100)
    now = clock.now()
    r = client.post(ADMIN, json=_body(sku, starts_at=(now - dt.timedelta(minutes=1)).isoformat(),
                                      items=[{"sku_id": sku.id, "flash_price_cents": 5900, "allocation": 3,
                                              "per_customer_limit": 2}]), headers=admin)
    sale_id = r.json()["id"]
    client.post(f"{ADMIN}/{sale_id}/schedule", headers=admin)
    shop = f"/api/v1/shop/{merchant.slug}"
    alice, bob, carol = (customer_headers(db, make_customer(db, merchant=merchant)) for _ in range(3))
    body = checkout_body([(sku, 1)], promotion={"kind": "flash_sale", "campaign_id": sale_id})

    # when Alice previews and buys 2, Bob buys 1 and pays, Carol comes late
    r = client.post(f"{shop}/checkout/preview", json={**body, "items": [{"sku_id": sku.id, "quantity": 2}]},
                    headers=alice)
    assert (r.status_code, r.json()["total_cents"]) == (200, 11800)
    a = client.post(f"{shop}/orders", json={**body, "items": [{"sku_id": sku.id, "quantity": 2}]}, headers=alice)
    assert (a.status_code, a.json()["total_cents"]) == (201, 11800)
    r = client.post(f"{shop}/orders", json=body, headers=alice)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "flash_limit_reached")
    b = client.post(f"{shop}/orders", json=body, headers=bob)
    assert b.status_code == 201
    pay = client.post(f"{shop}/orders/{b.json()['id']}/pay", json={"method": "sandbox"}, headers=bob)
    assert client.post(f"{shop}/payments/{pay.json()['payment_id']}/sandbox-confirm", headers=bob).status_code == 200
    r = client.post(f"{shop}/orders", json=body, headers=carol)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "flash_sold_out")
    r = client.post(f"{shop}/checkout/preview", json=body, headers=carol)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "flash_sold_out")

    # then the shop shows it sold out and the console's figures add up
    item = client.get(f"{shop}/flash-sales/{sale_id}", headers=carol).json()["items"][0]
    assert (item["sold"], item["left"], item["sold_percent"], item["sold_out"], item["may_buy"]) == (3, 0, 100, True, 0)
    figures = client.get(f"{ADMIN}/{sale_id}", headers=admin).json()["figures"]
    assert {k: figures[k] for k in ("orders", "paid_orders", "units_sold", "units_paid", "gmv_cents", "units_left")} \
        == {"orders": 2, "paid_orders": 1, "units_sold": 3, "units_paid": 1, "gmv_cents": 5900, "units_left": 0}
    assert figures["sold_out_at"] is not None

    # when Alice cancels, her 2 units come back and Carol gets one
    assert client.post(f"{shop}/orders/{a.json()['id']}/cancel", json={}, headers=alice).status_code == 200
    r = client.post(f"{shop}/orders", json=body, headers=carol)
    assert (r.status_code, r.json()["total_cents"]) == (201, 5900)
    figures = client.get(f"{ADMIN}/{sale_id}", headers=admin).json()["figures"]
    assert (figures["units_sold"], figures["released_orders"], figures["sold_out_at"]) == (2, 1, None)
