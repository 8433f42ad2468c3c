"""Ownership over HTTP: the API (protection, bindings, history, sources, transfers, departures) and the
console pages (history, customer and order source, transfer tool, protection settings, disable form)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import AttributedOrder, BindingHistory
from siyu.attribution.service import shares
from siyu.core import clock
from siyu.core.auth import Role
from siyu.customers.models import Customer
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, auth_headers, make_merchant, make_staff, make_store
from tests.factories.orders import customer_headers, make_sku

T0 = dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)


def login(client: TestClient, staff: object) -> None:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD,  # type: ignore[attr-defined]
                                            "next": "/console/"}, follow_redirects=False)
    assert r.status_code == 303


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def setup(db: Session) -> dict:
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant, name="静安店")
    people = {
        "merchant": merchant, "store": store,
        "admin": make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN),
        "manager": make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store),
        "g1": make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, name="小王"),
        "g2": make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, name="小李"),
        "r": make_customer(db, merchant=merchant, nickname="推荐人"),
        "c": make_customer(db, merchant=merchant, nickname="新客"),
    }
    with clock.frozen(T0):
        shares.record_touch(db, merchant_id=merchant.id, channel="guide_qr", customer_id=people["c"].id,
                            sharer_staff_id=people["g1"].id)
        shares.record_touch(db, merchant_id=merchant.id, channel="moments", customer_id=people["c"].id,
                            sharer_customer_id=people["r"].id)
    return people


def test_api_protection_settings(db: Session, client: TestClient) -> None:
    p = setup(db)
    h = auth_headers(db, p["admin"])
    assert client.get("/api/v1/admin/attribution/protection", headers=h).json() == {
        "guide_protection_days": 30, "referrer_protection_days": 30}
    r = client.patch("/api/v1/admin/attribution/protection", headers=h,
                     json={"guide_protection_days": 15, "referrer_protection_days": None})
    assert r.status_code == 200 and r.json() == {"guide_protection_days": 15, "referrer_protection_days": None}
    for bad in ({"guide_protection_days": 0}, {"guide_protection_days": "x"}, {"referrer_protection_days": 99999}):
        assert client.patch("/api/v1/admin/attribution/protection", headers=h, json=bad).status_code == 422
    r = client.patch("/api/v1/admin/attribution/protection", headers=auth_headers(db, p["g1"]),
                     json={"guide_protection_days": 3})
    assert r.status_code == 403
    db.expire_all()
    assert db.get(Merchant, p["merchant"].id).settings["guide_protection_days"] == 15


def test_api_bindings_history_and_customer_source(db: Session, client: TestClient) -> None:
    p = setup(db)
    c = p["c"]
    h = auth_headers(db, p["admin"])
    items = client.get("/api/v1/admin/attribution/bindings", headers=h, params={"customer_id": c.id}).json()["items"]
    assert {(b["kind"], b["guide_id"], b["referrer_customer_id"]) for b in items} == {
        ("guide", p["g1"].id, None), ("referrer", None, p["r"].id)}
    # a guide sees their own bindings only
    mine = client.get("/api/v1/admin/attribution/bindings", headers=auth_headers(db, p["g2"])).json()["items"]
    assert mine == []
    hist = client.get("/api/v1/admin/attribution/binding-history", headers=h).json()
    assert [(x["kind"], x["action"], x["to"]["guide_name"] or x["to"]["referrer_name"]) for x in hist["items"]] == [
        ("referrer", "bind", "推荐人"), ("guide", "bind", "小王")]
    src = client.get(f"/api/v1/admin/attribution/customers/{c.id}/source", headers=h).json()
    assert [t["channel"] for t in src["touches"]] == ["guide_qr", "moments"]
    assert src["bindings"]["guide"]["guide_name"] == "小王" and src["bindings"]["guide"]["store_name"] == "静安店"
    assert src["bindings"]["referrer"]["referrer_name"] == "推荐人"
    # another tenant's customer and an order attribution never saw are 404
    stranger = make_customer(db, merchant=make_merchant(db))
    assert client.get(f"/api/v1/admin/attribution/customers/{stranger.id}/source", headers=h).status_code == 404
    assert client.get("/api/v1/admin/attribution/orders/987654/source", headers=h).status_code == 404
    assert client.get(f"/api/v1/admin/attribution/customers/{c.id}/source",
                      headers=auth_headers(db, p["g2"])).status_code == 404


def test_api_transfer_and_departure(db: Session, client: TestClient) -> None:
    p = setup(db)
    c = p["c"]
    h = auth_headers(db, p["manager"])
    r = client.post("/api/v1/admin/attribution/transfers", headers=h,
                    json={"customer_ids": [c.id], "to_guide_id": p["g2"].id, "reason": "休假"})
    assert r.status_code == 200 and r.json() == {"moved": 1, "unchanged": 0, "not_found": 0,
                                                 "targets": {str(c.id): p["g2"].id}}
    assert client.post("/api/v1/admin/attribution/transfers", headers=auth_headers(db, p["g1"]),
                       json={"customer_ids": [c.id], "to_guide_id": p["g1"].id}).status_code == 403
    assert client.post("/api/v1/admin/attribution/transfers", headers=h,
                       json={"customer_ids": [], "to_guide_id": p["g1"].id}).status_code == 422
    # a departure for an active guide is refused; after disabling (to the manager) it is a no-op re-run
    assert client.post("/api/v1/admin/attribution/departures", headers=h,
                       json={"staff_id": p["g2"].id}).status_code == 409
    r = client.post(f"/api/v1/admin/staff/{p['g2'].id}/disable", headers=auth_headers(db, p["admin"]),
                    json={"transfer_mode": "manager"})
    assert r.status_code == 200
    db.expire_all()
    assert db.get(Customer, c.id).owner_id == p["manager"].id
    again = client.post("/api/v1/admin/attribution/departures", headers=h, json={"staff_id": p["g2"].id})
    assert again.status_code == 200 and again.json()["moved"] == 0


def test_console_pages(db: Session, client: TestClient) -> None:
    p = setup(db)
    c = p["c"]
    login(client, p["admin"])
    r = client.get("/console/attribution/ownership")
    assert r.status_code == 200 and r.text.count('data-testid="history-row"') == 2 and "小王" in r.text
    r = client.get("/console/attribution/ownership", params={"kind": "referrer", "guide": "zz"})
    assert r.text.count('data-testid="history-row"') == 1
    r = client.get(f"/console/attribution/source/customers/{c.id}")
    assert r.status_code == 200
    assert r.text.count('data-testid="touch-row"') == 2 and "推荐人" in r.text and "静安店" in r.text
    detail = client.get(f"/console/customers/{c.id}").text
    assert f'href="/console/attribution/source/customers/{c.id}"' in detail
    # the guide's console: their own moves only, no transfer or settings tab
    client.cookies.clear()
    login(client, p["g2"])
    r = client.get("/console/attribution/ownership")
    assert r.status_code == 200 and 'data-testid="history-row"' not in r.text
    assert "/console/attribution/transfer" not in r.text
    assert client.get("/console/attribution/transfer").status_code == 403


def test_console_transfer_tool(db: Session, client: TestClient) -> None:
    p = setup(db)
    c = p["c"]
    other = make_customer(db, merchant=p["merchant"], owner=p["g1"], nickname="老客")
    login(client, p["manager"])
    page = client.get("/console/attribution/transfer", params={"owner": str(p["g1"].id)})
    assert page.status_code == 200 and page.text.count('data-testid="transfer-row"') == 2
    token = csrf(page.text)
    # no target chosen: the choices are kept and the error shown, nothing moves
    r = client.post("/console/attribution/transfer", data={"csrf_token": token, "customer_ids": [str(c.id)],
                                                           "to_guide_id": "", "back": f"owner={p['g1'].id}"})
    assert r.status_code == 422 and 'data-testid="error-to_guide_id"' in r.text
    assert re.search(rf'value="{c.id}" checked', r.text)
    # when: both moved to g2
    r = client.post("/console/attribution/transfer", data={"csrf_token": token, "customer_ids": [str(c.id), str(other.id)],
                                                           "to_guide_id": str(p["g2"].id), "reason": "调店",
                                                           "back": f"owner={p['g1'].id}"}, follow_redirects=False)
    assert r.status_code == 303 and "ok=transferred" in r.headers["location"] and "n=2" in r.headers["location"]
    assert "2" in client.get(r.headers["location"]).text
    db.expire_all()
    assert [db.get(Customer, i).owner_id for i in (c.id, other.id)] == [p["g2"].id, p["g2"].id]
    lines = db.scalars(select(BindingHistory).where(BindingHistory.action == "transfer")).all()
    assert {(h.customer_id, h.reason, h.actor_id) for h in lines} == {(c.id, "调店", p["manager"].id),
                                                                      (other.id, "调店", p["manager"].id)}


def test_console_protection_settings(db: Session, client: TestClient) -> None:
    p = setup(db)
    login(client, p["admin"])
    page = client.get("/console/attribution/ownership/settings")
    assert page.status_code == 200
    token = csrf(page.text)
    r = client.post("/console/attribution/ownership/settings", data={
        "csrf_token": token, "guide_protection_days": "abc", "referrer_protection_days": "7"})
    assert r.status_code == 422 and 'data-testid="error-guide_protection_days"' in r.text and 'value="abc"' in r.text
    r = client.post("/console/attribution/ownership/settings", data={
        "csrf_token": token, "guide_protection_days": "", "guide_protection_days_permanent": "1",
        "referrer_protection_days": "7"}, follow_redirects=False)
    assert r.status_code == 303
    db.expire_all()
    settings = db.get(Merchant, p["merchant"].id).settings
    assert (settings["guide_protection_days"], settings["referrer_protection_days"]) == (None, 7)
    client.cookies.clear()
    login(client, p["g1"])
    assert client.get("/console/attribution/ownership/settings").status_code == 403


def test_console_disable_form_offers_the_transfer_choice(db: Session, client: TestClient) -> None:
    p = setup(db)
    login(client, p["admin"])
    page = client.get(f"/console/settings/staff/{p['g1'].id}/disable")
    assert 'data-testid="transfer-choice"' in page.text and "小李" in page.text
    token = csrf(page.text)
    r = client.post(f"/console/settings/staff/{p['g1'].id}/disable",
                    data={"csrf_token": token, "transfer_mode": "colleague", "transfer_to_id": ""})
    assert r.status_code == 422 and 'data-testid="error-transfer_to_id"' in r.text
    db.expire_all()
    assert db.get(Customer, p["c"].id).owner_id == p["g1"].id
    r = client.post(f"/console/settings/staff/{p['g1'].id}/disable",
                    data={"csrf_token": token, "transfer_mode": "colleague", "transfer_to_id": str(p["g2"].id)},
                    follow_redirects=False)
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Customer, p["c"].id).owner_id == p["g2"].id


def test_order_source_page_and_api(db: Session, client: TestClient) -> None:
    # given: c (bound to g1, brought by r) orders over the shop API with g2's share code
    p = setup(db)
    c = p["c"]
    sku = make_sku(db, merchant=p["merchant"], price_cents=2500)
    share = shares.get_or_create_share(db, merchant_id=p["merchant"].id, target_type="product",
                                       target_id=sku.product_id, channel="chat", sharer_staff_id=p["g2"].id)
    body = {"items": [{"sku_id": sku.id, "quantity": 1}], "share_code": share.code,
            "fulfilment": {"type": "delivery", "address": {"name": "张三", "phone": "13812345678", "province": "上海市",
                                                           "city": "上海市", "district": "黄浦区", "detail": "1 号"}}}
    r = client.post(f"/api/v1/shop/{p['merchant'].slug}/orders", json=body,
                    headers={**customer_headers(db, c), "Idempotency-Key": "src-1"})
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    # then: attribution kept its copy, and both views show the snapshot
    row = db.scalars(select(AttributedOrder).where(AttributedOrder.order_id == order_id)).one()
    assert (row.guide_id, row.sharer_staff_id, row.referrer_customer_id, row.channel) == (
        p["g1"].id, p["g2"].id, p["r"].id, "chat")
    h = auth_headers(db, p["admin"])
    src = client.get(f"/api/v1/admin/attribution/orders/{order_id}/source", headers=h).json()
    assert src["snapshot"]["share_code"] == share.code and src["names"]["guide"] == "小王"
    assert src["names"]["sharer_staff"] == "小李" and [t["channel"] for t in src["touches"]] == ["guide_qr", "moments"]
    login(client, p["admin"])
    page = client.get(f"/console/attribution/source/orders/{order_id}")
    assert page.status_code == 200 and "小王" in page.text and share.code in page.text
    assert f'/console/attribution/source/orders/{order_id}' in client.get(f"/console/orders/{order_id}").text
    missing = client.get("/console/attribution/source/orders/987654")
    assert missing.status_code == 404 and 'data-testid="source-missing"' in missing.text
