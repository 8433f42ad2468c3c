"""The group-buying API: applications and review, the point search, the community map and coverage,
tenant isolation, permissions and bad input."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.auth import Role
from siyu.groupbuy.models import Leader, Wave
from siyu.merchants import service as merchants
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.groupbuy import leader_fulfilment, make_compound, make_leader, make_wave
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store
from tests.factories.orders import customer_headers, make_sku, pay, place_order

ADMIN = "/api/v1/admin/groupbuy"


@pytest.fixture
def admin(db: Session, merchant: Merchant) -> dict[str, str]:
    return auth_headers(db, make_staff(db, merchant=merchant))


def test_apply_review_and_search(client: TestClient, db: Session, merchant: Merchant, admin) -> None:
    shop = f"/api/v1/shop/{merchant.slug}/groupbuy"
    applicant = make_customer(db, merchant=merchant)
    headers = customer_headers(db, applicant)
    # given an application from the shop
    r = client.post(f"{shop}/leader-applications", headers=headers, json={
        "name": "周大姐", "phone": "13800002222", "point_name": "周记杂货", "address": "康桥路 9 号",
        "latitude": 31.10, "longitude": 121.60, "opening_hours": "7-22"})
    assert r.status_code == 201, r.text
    leader_id = r.json()["id"]
    assert client.get(f"{shop}/leader", headers=headers).json()["status"] == "applied"
    # an applied point is not found yet
    r = client.get(f"{shop}/points", headers=headers, params={"lat": 31.10, "lng": 121.60})
    assert r.json()["items"] == []
    # when staff approve it
    r = client.post(f"{ADMIN}/leaders/{leader_id}/approve", headers=admin, json={"route": "南线", "commission_bps": 900})
    assert (r.status_code, r.json()["status"], r.json()["route"]) == (200, "active", "南线")
    # then customers find it, with the leader's name and phone masked, and can remember it
    r = client.get(f"{shop}/points", headers=headers, params={"lat": 31.101, "lng": 121.601, "radius_m": 1000})
    [point] = r.json()["items"]
    assert (point["id"], point["phone"], point["distance_m"]) == (leader_id, "138****2222",
                                                                  merchants.haversine_m(31.101, 121.601, 31.10, 121.60))
    assert client.post(f"{shop}/points/remember", headers=headers, json={"leader_id": leader_id}).status_code == 200
    assert client.get(f"{shop}/points", headers=headers, params={"lat": 0, "lng": 0}).json()["remembered"]["id"] == leader_id
    # freeze / unfreeze / illegal move
    assert client.post(f"{ADMIN}/leaders/{leader_id}/freeze", headers=admin).json()["status"] == "frozen"
    r = client.post(f"{ADMIN}/leaders/{leader_id}/approve", headers=admin, json={})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")
    assert client.post(f"{ADMIN}/leaders/{leader_id}/unfreeze", headers=admin).json()["status"] == "active"


def test_isolation_and_permissions(client: TestClient, db: Session, merchant: Merchant, admin) -> None:
    other = make_merchant(db)
    foreign = make_leader(db, merchant=other)
    foreign_wave = make_wave(db, merchant=other, items=[(make_sku(db, merchant=other), 100, 5)])
    assert client.get(f"{ADMIN}/leaders/{foreign.id}", headers=admin).status_code == 404
    assert client.post(f"{ADMIN}/leaders/{foreign.id}/freeze", headers=admin).status_code == 404
    assert client.get(f"{ADMIN}/waves/{foreign_wave.id}", headers=admin).status_code == 404
    assert client.get(f"/api/v1/shop/{merchant.slug}/groupbuy/waves/{foreign_wave.id}").status_code == 404
    db.refresh(foreign)
    assert foreign.status == "active"
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant))
    r = client.get(f"{ADMIN}/leaders", headers=auth_headers(db, guide))
    assert r.status_code == 403
    # a customer who is not a leader has no leader centre
    customer = make_customer(db, merchant=merchant)
    r = client.post(f"/api/v1/shop/{merchant.slug}/groupbuy/leader/verify", headers=customer_headers(db, customer),
                    json={"code": "123456"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_a_leader")


@pytest.mark.parametrize("body", [
    {}, {"title": "x"}, "nope",
    {"title": "t", "starts_at": "2026-01-01T00:00:00", "cutoff_at": "2026-01-02T00:00:00+08:00",
     "delivery_date": "2026-01-03", "items": [{"sku_id": 1, "price_cents": 1, "allocation": 1}]},
    {"title": "t", "starts_at": "2026-01-01T00:00:00+08:00", "cutoff_at": "2026-01-02T00:00:00+08:00",
     "delivery_date": "2026-01-03", "items": [{"sku_id": 1, "price_cents": -1, "allocation": 1}]},
    {"title": "t", "starts_at": "2026-01-01T00:00:00+08:00", "cutoff_at": "2026-01-02T00:00:00+08:00",
     "delivery_date": "2026-01-03", "items": []},
    {"title": "t", "starts_at": "2026-01-01T00:00:00+08:00", "cutoff_at": "2026-01-02T00:00:00+08:00",
     "delivery_date": "2026-01-03", "items": [{"sku_id": 2**60, "price_cents": 1, "allocation": 1}]},
])
def test_bad_wave_bodies_are_422(client: TestClient, db: Session, admin, body) -> None:
    before = db.scalar(select(func.count()).select_from(Wave))
    r = client.post(f"{ADMIN}/waves", headers=admin, json=body)
    assert r.status_code == 422, r.text
    assert db.scalar(select(func.count()).select_from(Wave)) == before


def test_unknown_sku_and_reversed_times_are_field_errors(client: TestClient, db: Session, merchant: Merchant,
                                                         admin) -> None:
    sku = make_sku(db, merchant=merchant)
    r = client.post(f"{ADMIN}/waves", headers=admin, json={
        "title": "t", "starts_at": "2026-01-02T00:00:00+08:00", "cutoff_at": "2026-01-01T00:00:00+08:00",
        "delivery_date": "2026-01-03", "items": [{"sku_id": sku.id, "price_cents": 1, "allocation": 1},
                                                 {"sku_id": 999_999, "price_cents": 1, "allocation": 1}]})
    assert r.status_code == 422
    assert set(r.json()["error"]["details"]["fields"]) == {"cutoff_at", "items.1.sku_id"}


def test_points_search_bad_input(client: TestClient, db: Session, merchant: Merchant) -> None:
    headers = customer_headers(db, make_customer(db, merchant=merchant))
    for params in ({"lat": 91, "lng": 0}, {"lat": "x", "lng": 0}, {"lat": 0}, {"lat": 0, "lng": 0, "radius_m": 0}):
        assert client.get(f"/api/v1/shop/{merchant.slug}/groupbuy/points", headers=headers,
                          params=params).status_code == 422


def test_community_map_and_coverage(client: TestClient, db: Session, merchant: Merchant, admin) -> None:
    r = client.post(f"{ADMIN}/compounds", headers=admin, json={"name": "翠湖苑", "households": 200, "latitude": 31.2,
                                                               "longitude": 121.5, "delivery_date": "2027-01-01"})
    assert r.status_code == 201
    covered_id = r.json()["id"]
    empty = make_compound(db, merchant=merchant, name="空白小区", households=300)
    compound = db.get(type(empty), covered_id)
    leader = make_leader(db, merchant=merchant, compound=compound)
    r = client.post(f"{ADMIN}/groups", headers=admin, json={"name": "翠湖团", "compound_id": covered_id,
                                                            "leader_id": leader.id, "member_count": 120})
    assert r.status_code == 201
    sku = make_sku(db, merchant=merchant, stock=50)
    make_wave(db, merchant=merchant, items=[(sku, 500, 50)])
    for _ in range(3):
        pay(db, place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                            fulfilment=leader_fulfilment(leader)))
    db.commit()
    cov = client.get(f"{ADMIN}/coverage", headers=admin).json()
    by_id = {c["id"]: c for c in cov["compounds"]}
    assert (by_id[covered_id]["households_reached"], by_id[covered_id]["orders"],
            by_id[covered_id]["orders_per_100_households"]) == (3, 3, "1.5")
    assert (by_id[empty.id]["no_leader"], by_id[empty.id]["no_group"]) == (True, True)
    assert cov["without_leader"] == [empty.id] and cov["households_reached"] == 3
    assert by_id[covered_id]["delivery_date"] == "2027-01-01"
    r = client.patch(f"{ADMIN}/settings", headers=admin, json={"search_radius_m": 2000, "pickup_overdue_days": 2})
    assert (r.status_code, r.json()["search_radius_m"], r.json()["pickup_overdue_days"]) == (200, 2000, 2)
    assert db.scalar(select(func.count()).select_from(Leader).where(Leader.merchant_id == merchant.id)) == 1

