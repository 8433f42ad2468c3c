"""Coupons over HTTP: the admin builder (create, publish, pause, end, figures, issue), the shop's coupon
centre, claiming, my coupons, the applicable coupons of a checkout, an order paying with a coupon,
and the 4xx answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.promotions.models.coupons import Coupon
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku
from tests.factories.promotions import give_coupon, make_coupon_template

ADMIN = "/api/v1/admin/coupon-templates"


def shop(merchant) -> str:
    return f"/api/v1/shop/{merchant.slug}"


TEMPLATE = {"name": "满100减20", "kind": "threshold", "threshold_cents": 10_000, "amount_cents": 2000,
            "validity": "relative", "valid_days": 7, "total_stock": 2, "per_customer_limit": 1,
            "channels": ["centre", "guide"]}


def test_build_claim_use_and_see_figures(client, db: Session) -> None:
    # given: a brand admin and a customer
    merchant = make_merchant(db)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    customer = make_customer(db, merchant=merchant)
    me = customer_headers(db, customer)
    sku = make_sku(db, merchant=merchant, price_cents=12_000, stock=5)
    # when: the admin creates and publishes a template
    r = client.post(ADMIN, json={**TEMPLATE, "publish": True}, headers=admin)
    assert r.status_code == 201, r.text
    template = r.json()
    assert (template["status"], template["claimed"], template["remaining"]) == ("active", 0, 2)
    # then: the customer sees it in the coupon centre and claims it
    r = client.get(f"{shop(merchant)}/coupons/centre", headers=me)
    assert [(t["id"], t["can_claim"], t["claimed_by_me"]) for t in r.json()["items"]] == [(template["id"], True, 0)]
    r = client.post(f"{shop(merchant)}/coupon-templates/{template['id']}/claim", headers=me)
    assert r.status_code == 201, r.text
    coupon_id = r.json()["id"]
    assert (r.json()["status"], r.json()["channel"]) == ("available", "centre")
    # and a second claim passes the per-customer limit
    r = client.post(f"{shop(merchant)}/coupon-templates/{template['id']}/claim", headers=me)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "coupon_limit_reached")
    # when: the customer asks which coupons apply to a ¥120 basket
    body = checkout_body([(sku, 1)])
    r = client.post(f"{shop(merchant)}/coupons/applicable", json=body, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["best_coupon_id"] == coupon_id
    assert [(c["coupon_id"], c["saves_cents"]) for c in r.json()["items"]] == [(coupon_id, 2000)]
    # and orders with it
    r = client.post(f"{shop(merchant)}/orders", json={**body, "coupon_ids": [coupon_id]}, headers=me)
    assert r.status_code == 201, r.text
    assert (r.json()["total_cents"], r.json()["payable_cents"]) == (10_000, 10_000)
    # then: my coupons show it used, and the figures count it
    r = client.get(f"{shop(merchant)}/coupons", params={"status": "used"}, headers=me)
    assert [(c["id"], c["order_id"], c["discount_cents"]) for c in r.json()["items"]] == [
        (coupon_id, r.json()["items"][0]["order_id"], 2000)]
    r = client.get(f"{ADMIN}/{template['id']}/figures", headers=admin)
    figures = r.json()
    assert (figures["claimed"], figures["remaining"], figures["used"], figures["gmv_cents"],
            figures["discount_cents"]) == (1, 1, 1, 10_000, 2000)
    # when: the admin pauses, the centre hides it; ends it, it cannot resume
    assert client.post(f"{ADMIN}/{template['id']}/pause", headers=admin).json()["status"] == "paused"
    assert client.get(f"{shop(merchant)}/coupons/centre", headers=me).json()["items"] == []
    assert client.post(f"{ADMIN}/{template['id']}/end", headers=admin).json()["status"] == "ended"
    r = client.post(f"{ADMIN}/{template['id']}/resume", headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")


def test_admin_issues_to_customers_and_list_shows_figures(client, db: Session) -> None:
    merchant = make_merchant(db)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    template = make_coupon_template(db, merchant=merchant, total_stock=2, channels=["guide"])
    people = [make_customer(db, merchant=merchant) for _ in range(3)]
    r = client.post(f"{ADMIN}/{template.id}/issue", json={"customer_ids": [p.id for p in people]}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["issued"], r.json()["refused"]) == (2, {"coupon_sold_out": 1})
    r = client.get(ADMIN, headers=admin)
    assert [(t["id"], t["figures"]["claimed"], t["figures"]["available"]) for t in r.json()["items"]] == [
        (template.id, 2, 2)]


def test_4xx_answers(client, db: Session) -> None:
    merchant, other = make_merchant(db), make_merchant(db)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    guide = auth_headers(db, make_staff(db, merchant=merchant, role="guide"))
    foreign = make_coupon_template(db, merchant=other)
    customer = make_customer(db, merchant=merchant)
    me = customer_headers(db, customer)
    sku = make_sku(db, merchant=merchant, price_cents=1000)
    # a missing field, a threshold coupon without its threshold, a naive date, a bad id
    r = client.post(ADMIN, json={"kind": "fixed"}, headers=admin)
    assert r.status_code == 422
    r = client.post(ADMIN, json={**TEMPLATE, "threshold_cents": 0}, headers=admin)
    assert (r.status_code, sorted(r.json()["error"]["details"]["fields"])) == (422, ["threshold_cents"])
    r = client.post(ADMIN, json={**TEMPLATE, "validity": "fixed", "ends_at": "2030-01-01T00:00:00"}, headers=admin)
    assert (r.status_code, sorted(r.json()["error"]["details"]["fields"])) == (422, ["ends_at"])
    assert client.get(f"{ADMIN}/{2**60}", headers=admin).status_code == 422
    # another merchant's template: 404, for staff and for customers
    assert client.get(f"{ADMIN}/{foreign.id}", headers=admin).status_code == 404
    r = client.post(f"{shop(merchant)}/coupon-templates/{foreign.id}/claim", headers=me)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "coupon_template_not_found")
    # a guide may not build campaigns; nobody signed out may claim
    assert client.post(ADMIN, json=TEMPLATE, headers=guide).status_code == 403
    assert client.post(f"{shop(merchant)}/coupon-templates/{foreign.id}/claim").status_code == 401
    # a coupon that is not the customer's, and a sold-out template
    stranger = give_coupon(db, template=make_coupon_template(db, merchant=merchant),
                           customer=make_customer(db, merchant=merchant))
    r = client.post(f"{shop(merchant)}/checkout/preview", json=checkout_body([(sku, 1)], coupon_ids=[stranger.id]),
                    headers=me)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "coupon_not_found")
    sold = make_coupon_template(db, merchant=merchant, total_stock=1)
    give_coupon(db, template=sold, customer=make_customer(db, merchant=merchant))
    r = client.post(f"{shop(merchant)}/coupon-templates/{sold.id}/claim", headers=me)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "coupon_sold_out")
    assert db.scalars(select(Coupon).where(Coupon.customer_id == customer.id)).all() == []


def test_a_guide_sends_coupons_to_own_customers_through_the_api(client, db: Session) -> None:
    merchant = make_merchant(db)
    guide = make_staff(db, merchant=merchant, role="guide")
    template = make_coupon_template(db, merchant=merchant, channels=["guide"])
    mine, theirs = make_customer(db, merchant=merchant, owner=guide), make_customer(db, merchant=merchant)
    h = auth_headers(db, guide)
    r = client.post(f"{ADMIN}/{template.id}/issue", json={"customer_ids": [mine.id, theirs.id]}, headers=h)
    assert (r.status_code, r.json()["issued"], r.json()["refused"]) == (200, 1, {"not_found": 1})
    # a guide may not send through another channel
    r = client.post(f"{ADMIN}/{template.id}/issue", json={"customer_ids": [mine.id], "channel": "segment"}, headers=h)
    assert r.status_code == 403
    assert [c.customer_id for c in db.scalars(select(Coupon))] == [mine.id]
