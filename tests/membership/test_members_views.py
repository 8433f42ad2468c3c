"""The membership pages: the H5 member centre (activation, check-in, profile, points, mall exchange,
paid plans) and the console (tiers, rules, mall, plans, members, detail, adjustments, counter lookup)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.models import AuditLog
from siyu.customers.deps import cookie_name
from siyu.customers.models import Customer
from siyu.customers.signin import issue_customer_token
from siyu.membership.models.members import Member, PaidMembershipPlan, Tier
from siyu.membership.models.points import PointsMallItem
from siyu.membership.service import points
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.membership import make_member, make_tier
from tests.factories.merchants import PASSWORD, make_staff
from tests.factories.orders import ADDRESS, customer_principal, make_sku


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def shop_login(db: Session, client: TestClient, merchant: Merchant, customer) -> None:
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/membership").text)


def test_member_centre_activation_check_in_and_profile(client, db, merchant) -> None:
    # given: tiers and a signed-in customer without a card
    make_tier(db, merchant=merchant, name="银卡", growth_threshold=0)
    make_tier(db, merchant=merchant, name="金卡", growth_threshold=500, discount_bps=500)
    customer = make_customer(db, merchant=merchant, nickname="小王")
    shop_login(db, client, merchant, customer)
    page = client.get(f"/shop/{merchant.slug}/member")
    assert page.status_code == 200 and 'data-testid="activate-form"' in page.text
    token = csrf(page.text)

    # when: a bad phone, then a good one
    bad = client.post(f"/shop/{merchant.slug}/member/activate", data={"csrf_token": token, "phone": "12"})
    assert bad.status_code == 422 and 'data-testid="error-phone"' in bad.text
    assert db.scalar(select(func.count()).select_from(Member)) == 0
    r = client.post(f"/shop/{merchant.slug}/member/activate",
                    data={"csrf_token": token, "phone": "13800001111", "name": "王小二"}, follow_redirects=False)
    assert r.status_code == 303
    member = db.scalars(select(Member).where(Member.customer_id == customer.id)).one()
    page = client.get(f"/shop/{merchant.slug}/member")
    assert member.card_no in page.text and "银卡" in page.text
    assert "5 more to 金卡" in page.text or "金卡" in page.text

    # then: check-in once a day, profile completion rewarded once
    r = client.post(f"/shop/{merchant.slug}/member/check-in", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    again = client.post(f"/shop/{merchant.slug}/member/check-in", data={"csrf_token": token})
    assert again.status_code == 409
    r = client.post(f"/shop/{merchant.slug}/member/profile",
                    data={"csrf_token": token, "name": "王小二", "birthday": "1990-05-01"}, follow_redirects=False)
    assert r.status_code == 303
    assert points.balance(db, merchant_id=merchant.id, customer_id=customer.id) == 5 + 50
    history = client.get(f"/shop/{merchant.slug}/member/points")
    assert history.status_code == 200 and "+50" in history.text and "+5" in history.text
    assert client.get(f"/shop/{merchant.slug}/member/card.png").content[:8] == b"\x89PNG\r\n\x1a\n"


def test_mall_exchange_through_checkout(client, db, merchant) -> None:
    # given: a member with 1,000 points and an item for 600 points + ¥5
    sku = make_sku(db, merchant=merchant, price_cents=5000, stock=3, title="保温杯")
    member = make_member(db, merchant=merchant, points=1000)
    item = PointsMallItem(merchant_id=merchant.id, sku_id=sku.id, product_id=sku.product_id, title="保温杯", points=600,
                          cash_cents=500, per_order_limit=1, active=True)
    db.add(item)
    db.flush()
    customer = db.get(Customer, member.customer_id)
    shop_login(db, client, merchant, customer)
    page = client.get(f"/shop/{merchant.slug}/member/mall/{item.id}")
    assert page.status_code == 200
    stores_or_address = client.post(f"/shop/{merchant.slug}/member/mall/{item.id}",
                                     data={"csrf_token": csrf(page.text), "choice": "", "idem_key": "k" * 20})
    assert stores_or_address.status_code == 422
    assert points.balance(db, merchant_id=merchant.id, customer_id=customer.id) == 1000

    # when: exchanged with a delivery address
    address = orders.create_address(db, actor=customer_principal(customer), **ADDRESS)
    r = client.post(f"/shop/{merchant.slug}/member/mall/{item.id}",
                    data={"csrf_token": csrf(page.text), "choice": f"a{address.id}", "idem_key": "k" * 20},
                    follow_redirects=False)

    # then: an order of ¥5 to pay, 600 points taken
    assert r.status_code == 303, r.text
    order = db.scalars(select(Order).where(Order.customer_id == customer.id)).one()
    assert order.total_cents == 500 and order.payable_cents == 500
    assert points.balance(db, merchant_id=merchant.id, customer_id=customer.id) == 400


def test_console_pages_and_adjustment(client, db, merchant) -> None:
    # given: a brand admin and a member
    admin = make_staff(db, merchant=merchant)
    member = make_member(db, merchant=merchant, points=100)
    token = console_login(client, admin)

    # when: tiers, rules, plans and mall items are set up through the pages
    r = client.post("/console/membership/tiers", data={"csrf_token": token, "name": "金卡", "growth_threshold": "100",
                                                       "discount_percent": "5", "points_multiplier": "1.5",
                                                       "free_shipping": "1", "active": "1"}, follow_redirects=False)
    assert r.status_code == 303
    tier = db.scalars(select(Tier).where(Tier.merchant_id == merchant.id)).one()
    assert (tier.discount_bps, tier.points_multiplier_bps, tier.free_shipping) == (500, 15000, True)
    bad = client.post("/console/membership/tiers", data={"csrf_token": token, "name": "", "discount_percent": "x"})
    assert bad.status_code == 422 and "error-discount_percent" in bad.text
    r = client.post("/console/membership/rules", data={"csrf_token": token, "redeem_points_per_yuan": "50",
                                                       "grace_days": "400"})
    assert r.status_code == 422 and "error-grace_days" in r.text
    r = client.post("/console/membership/rules", data={"csrf_token": token, "redeem_points_per_yuan": "50"},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/console/membership/plans", data={"csrf_token": token, "name": "金卡月卡", "tier_id": str(tier.id),
                                                       "days": "30", "price": "19.90"}, follow_redirects=False)
    assert r.status_code == 303
    assert db.scalars(select(PaidMembershipPlan)).one().price_cents == 1990
    sku = make_sku(db, merchant=merchant, price_cents=2000)
    r = client.post("/console/membership/mall", data={"csrf_token": token, "sku_id": str(sku.id), "points": "300",
                                                      "cash": "1.50", "per_order_limit": "2"}, follow_redirects=False)
    assert r.status_code == 303
    assert db.scalars(select(PointsMallItem)).one().cash_cents == 150
    for path in ("/console/membership", "/console/membership/rules", "/console/membership/plans",
                 "/console/membership/mall", "/console/membership/members", "/console/membership/lookup"):
        assert client.get(path).status_code == 200, path

    # then: adjustments are audited; taking too much is refused and moves nothing
    r = client.post(f"/console/membership/members/{member.id}/adjust",
                    data={"csrf_token": token, "delta": "-500", "reason": "纠错"})
    assert r.status_code == 409 and "error-delta" in r.text
    r = client.post(f"/console/membership/members/{member.id}/adjust",
                    data={"csrf_token": token, "delta": "+20", "reason": "到店活动"}, follow_redirects=False)
    assert r.status_code == 303
    assert points.balance(db, merchant_id=merchant.id, customer_id=member.customer_id) == 120
    assert db.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "membership.points_adjusted")) == 1
    detail = client.get(f"/console/membership/members/{member.id}")
    assert detail.status_code == 200 and "到店活动" in detail.text and member.card_no in detail.text

    # and: the counter lookup finds the card by its number and by phone
    r = client.get(f"/console/membership/lookup?code={member.card_no}", follow_redirects=False)
    assert r.headers["location"] == f"/console/membership/members/{member.id}"
    r = client.get(f"/console/membership/lookup?code={member.phone}", follow_redirects=False)
    assert r.headers["location"] == f"/console/membership/members/{member.id}"
    assert client.get("/console/membership/lookup?code=800000000000").status_code == 404


def test_customer_detail_shows_membership(client, db, merchant) -> None:
    # given: a gold member with 321 points and a customer without a card
    make_tier(db, merchant=merchant, name="金卡", growth_threshold=0)
    member = make_member(db, merchant=merchant, points=321)
    plain = make_customer(db, merchant=merchant, nickname="路人")
    admin = make_staff(db, merchant=merchant)
    console_login(client, admin)
    # when / then: the customer page shows tier, points, new vs returning and links to the card
    page = client.get(f"/console/customers/{member.customer_id}").text
    assert 'data-testid="customer-membership"' in page
    assert re.search(r'data-testid="customer-tier">金卡<', page)
    assert re.search(r'data-testid="customer-points">321<', page)
    assert re.search(r'data-testid="customer-balance">¥0.00<', page)
    assert f'href="/console/membership/members/{member.id}"' in page
    page = client.get(f"/console/customers/{plain.id}").text
    assert 'data-testid="customer-membership"' in page and 'data-testid="customer-points"' not in page
    r = client.get(f"/console/membership/customers/{member.customer_id}", follow_redirects=False)
    assert r.headers["location"] == f"/console/membership/members/{member.id}"
    assert client.get(f"/console/membership/customers/{plain.id}").status_code == 404


def test_admin_api_rules_and_tiers(client, db, merchant) -> None:
    from tests.factories.merchants import auth_headers

    admin = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.patch("/api/v1/admin/membership/rules", json={"points_per_yuan": 2, "redeem_cap_bps": 3000},
                     headers=admin)
    assert r.status_code == 200 and (r.json()["points_per_yuan"], r.json()["redeem_cap_bps"]) == (2, 3000)
    assert client.patch("/api/v1/admin/membership/rules", json={"redeem_cap_bps": 20000},
                        headers=admin).status_code == 422
    r = client.post("/api/v1/admin/membership/tiers", json={"name": "银卡", "growth_threshold": 100,
                                                           "discount_bps": 300, "free_shipping": True}, headers=admin)
    assert r.status_code == 201, r.text
    tier_id = r.json()["id"]
    r = client.patch(f"/api/v1/admin/membership/tiers/{tier_id}", json={"discount_bps": 500}, headers=admin)
    assert r.json()["discount_bps"] == 500 and r.json()["benefits"]
    assert client.post("/api/v1/admin/membership/tiers", json={"name": "银卡"}, headers=admin).status_code == 409
    listed = client.get("/api/v1/admin/membership/tiers", headers=admin).json()["items"]
    assert [(t["name"], t["members"]) for t in listed] == [("银卡", 0)]
    member = make_member(db, merchant=merchant)
    items = client.get("/api/v1/admin/membership/members?q=" + member.card_no[:6], headers=admin).json()["items"]
    assert [m["id"] for m in items] == [member.id]
    detail = client.get(f"/api/v1/admin/membership/members/{member.id}", headers=admin).json()
    assert detail["card_no"] == member.card_no and detail["profile"]["returning"] is False
    guide = auth_headers(db, make_staff(db, merchant=merchant, role="guide"))
    assert client.patch("/api/v1/admin/membership/rules", json={"points_per_yuan": 9}, headers=guide).status_code == 403


def test_checkout_page_with_points_and_buying_a_plan(client, db, merchant) -> None:
    # given: a member with 300 points, a ¥20 product, a gold plan
    member = make_member(db, merchant=merchant, points=300)
    customer = db.get(Customer, member.customer_id)
    shop_login(db, client, merchant, customer)
    sku = make_sku(db, merchant=merchant, price_cents=2000)
    address = orders.create_address(db, actor=customer_principal(customer), **ADDRESS)
    form = {"sku_id": str(sku.id), "quantity": "1", "type": "delivery", "address_id": str(address.id),
            "idem_key": "points-checkout-1"}
    page = client.get(f"/shop/{merchant.slug}/checkout?sku_id={sku.id}&quantity=1")
    token = csrf(page.text)
    # when: asking for more points than there are
    r = client.post(f"/shop/{merchant.slug}/checkout", data={**form, "csrf_token": token, "points": "301",
                                                             "action": "place"})
    # then: the page says so and no order is placed
    assert r.status_code == 409 and "300" in r.text
    assert db.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer.id)) == 0
    # when: 200 points (¥2)
    r = client.post(f"/shop/{merchant.slug}/checkout", data={**form, "csrf_token": token, "points": "200",
                                                             "action": "preview"})
    assert 'data-testid="payable">¥18.00' in r.text
    r = client.post(f"/shop/{merchant.slug}/checkout", data={**form, "csrf_token": token, "points": "200",
                                                             "action": "place", "idem_key": "points-checkout-2"},
                    follow_redirects=False)
    assert r.status_code == 303 and "/pay/" in r.headers["location"]
    assert points.balance(db, merchant_id=merchant.id, customer_id=customer.id) == 100

    # and: buying a plan from the member centre goes to the sandbox pay page
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=9999)
    plan = PaidMembershipPlan(merchant_id=merchant.id, name="金卡月卡", tier_id=gold.id, days=30, price_cents=990)
    db.add(plan)
    db.flush()
    centre = client.get(f"/shop/{merchant.slug}/member")
    assert 'data-testid="buy-plan"' in centre.text
    r = client.post(f"/shop/{merchant.slug}/member/plans/{plan.id}/buy", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "/pay/" in r.headers["location"]
    bought = db.scalars(select(Order).where(Order.customer_id == customer.id, Order.kind == "paid_membership")).one()
    assert bought.payable_cents == 990


def test_staff_open_a_card_from_the_customer_page(client, db, merchant) -> None:
    customer = make_customer(db, merchant=merchant, nickname="到店客")
    token = console_login(client, make_staff(db, merchant=merchant))
    page = client.get(f"/console/customers/{customer.id}").text
    assert 'data-testid="activate-member"' in page
    r = client.post(f"/console/membership/customers/{customer.id}/activate", data={"csrf_token": token, "phone": "1"},
                    follow_redirects=False)
    assert "member_error" in r.headers["location"]
    assert db.scalar(select(func.count()).select_from(Member)) == 0
    r = client.post(f"/console/membership/customers/{customer.id}/activate",
                    data={"csrf_token": token, "phone": "13512345678"}, follow_redirects=False)
    member = db.scalars(select(Member).where(Member.customer_id == customer.id)).one()
    assert r.headers["location"] == f"/console/membership/members/{member.id}?ok=activated"
    assert member.phone == "13512345678"
