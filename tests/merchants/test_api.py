from __future__ import annotations

from sqlalchemy import select

from siyu.core.auth import Role
from siyu.core.models import OutboxEvent
from siyu.merchants.models import StaffToken
from tests.factories.merchants import (
    PASSWORD,
    auth_headers,
    make_agent,
    make_merchant,
    make_staff,
    make_store,
)


def test_token_login_returns_contract_shape(db, client):
    # given
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant, username="boss")
    # when
    r = client.post("/api/v1/admin/auth/token", json={"username": "boss", "password": PASSWORD})
    # then
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["staff"] == {"id": admin.id, "role": "brand_admin", "merchant_id": merchant.id}
    me = client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "boss"


def test_wrong_password_is_401_with_error_shape(db, client):
    merchant = make_merchant(db)
    make_staff(db, merchant=merchant, username="boss")
    r = client.post("/api/v1/admin/auth/token", json={"username": "boss", "password": "nope"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"
    assert db.scalar(select(StaffToken.id)) is None


def test_error_messages_follow_accept_language(db, client):
    r = client.post("/api/v1/admin/auth/token", json={"username": "x", "password": "y"}, headers={"Accept-Language": "en"})
    assert r.json()["error"]["message"] == "Wrong username or password."
    r = client.post("/api/v1/admin/auth/token", json={"username": "x", "password": "y"}, headers={"Accept-Language": "zh-CN"})
    assert r.json()["error"]["message"] == "用户名或密码错误。"


def test_disabling_staff_revokes_their_tokens_and_emits_event(db, client):
    # given
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    guide_headers = auth_headers(db, guide)
    assert client.get("/api/v1/admin/me", headers=guide_headers).status_code == 200
    # when
    r = client.post(f"/api/v1/admin/staff/{guide.id}/disable", headers=auth_headers(db, admin))
    # then
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/admin/me", headers=guide_headers).status_code == 401
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.name == "staff.disabled")).one()
    assert event.payload == {"staff_id": guide.id, "store_id": store.id, "role": "guide",
                             "transfer_mode": "round_robin", "transfer_to_id": None, "by_staff_id": admin.id}


def test_other_tenant_objects_are_404(db, client):
    # given two merchants
    a, b = make_merchant(db), make_merchant(db)
    store_a = make_store(db, merchant=a)
    guide_a = make_staff(db, merchant=a, role=Role.GUIDE, store=store_a)
    admin_b = make_staff(db, merchant=b)
    headers = auth_headers(db, admin_b)
    # then every object of A is not found for B
    assert client.get(f"/api/v1/admin/stores/{store_a.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/admin/staff/{guide_a.id}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/admin/staff/{guide_a.id}/disable", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/admin/stores/{store_a.id}", json={"name": "x"}, headers=headers).status_code == 404
    assert store_a.name != "x"


def test_role_scope_on_stores_and_staff(db, client):
    merchant = make_merchant(db)
    agent = make_agent(db, merchant=merchant)
    s1 = make_store(db, merchant=merchant, agent=agent)
    s2 = make_store(db, merchant=merchant)
    agent_admin = make_staff(db, merchant=merchant, role=Role.AGENT_ADMIN, agent=agent)
    manager2 = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=s2)
    guide1 = make_staff(db, merchant=merchant, role=Role.GUIDE, store=s1)

    ids = [s["id"] for s in client.get("/api/v1/admin/stores", headers=auth_headers(db, agent_admin)).json()["items"]]
    assert ids == [s1.id]
    ids = [s["id"] for s in client.get("/api/v1/admin/stores", headers=auth_headers(db, manager2)).json()["items"]]
    assert ids == [s2.id]
    staff_ids = [s["id"] for s in client.get("/api/v1/admin/staff", headers=auth_headers(db, guide1)).json()["items"]]
    assert staff_ids == [guide1.id]
    # a store manager cannot create a store manager, only guides in their own store
    r = client.post("/api/v1/admin/staff", headers=auth_headers(db, manager2),
                    json={"username": "mgr9", "password": "longenough", "name": "X", "role": "store_manager", "store_id": s2.id})
    assert r.status_code == 403
    r = client.post("/api/v1/admin/staff", headers=auth_headers(db, manager2),
                    json={"username": "g9", "password": "longenough", "name": "X", "role": "guide", "store_id": s1.id})
    assert r.status_code == 404
    r = client.post("/api/v1/admin/staff", headers=auth_headers(db, manager2),
                    json={"username": "g9", "password": "longenough", "name": "X", "role": "guide", "store_id": s2.id})
    assert r.status_code == 201 and r.json()["store_id"] == s2.id


def test_bad_input_is_4xx_never_500(db, client):
    merchant = make_merchant(db)
    headers = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.post("/api/v1/admin/stores", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.post("/api/v1/admin/stores", json={"name": "x" * 100_000}, headers=headers)
    assert r.status_code == 422 and "name" in r.json()["error"]["details"]["fields"]
    r = client.post("/api/v1/admin/stores", json={"name": "ok", "latitude": "north"}, headers=headers)
    assert r.status_code == 422
    assert client.get("/api/v1/admin/stores/99999999999999999999", headers=headers).status_code == 422
    assert client.get("/api/v1/admin/stores/123456", headers=headers).status_code == 404
    assert client.get("/api/v1/admin/stores", headers={"Authorization": "Bearer " + "x" * 5000}).status_code == 401


def test_shop_stores_sorted_by_distance(db, client):
    merchant = make_merchant(db, slug="near-shop")
    far = make_store(db, merchant=merchant, latitude=39.9, longitude=116.4)
    near = make_store(db, merchant=merchant, latitude=31.23, longitude=121.47)
    r = client.get("/api/v1/shop/near-shop/stores", params={"lat": 31.2304, "lng": 121.4737})
    items = r.json()["items"]
    assert [i["id"] for i in items] == [near.id, far.id]
    assert items[0]["distance_m"] < 1000 < items[1]["distance_m"]
    assert client.get("/api/v1/shop/nope/stores").status_code == 404
