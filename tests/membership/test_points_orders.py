"""Points at checkout over HTTP: cash deduction with its cap, refusal when short, given back on
cancellation, expiry of the unpaid order and refunds (spent points back, earned points reversed,
in the refunded share); points-mall exchanges; earning on completion."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.models import Customer
from siyu.ledger import service as ledger
from siyu.membership.models.members import Member
from siyu.membership.models.points import OrderPoints, PointsMallItem
from siyu.membership.service import points
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.membership import make_member, set_rules
from tests.factories.merchants import auth_headers, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku


def base(merchant: Merchant) -> str:
    return f"/api/v1/shop/{merchant.slug}"


@pytest.fixture
def member(db: Session, merchant: Merchant) -> Member:
    return make_member(db, merchant=merchant, points=1000)


@pytest.fixture
def headers(db: Session, member: Member) -> dict[str, str]:
    return customer_headers(db, db.get(Customer, member.customer_id))


@pytest.fixture
def admin(db: Session, merchant: Merchant) -> dict[str, str]:
    return auth_headers(db, make_staff(db, merchant=merchant))


def balance(db: Session, member: Member) -> int:
    return points.balance(db, merchant_id=member.merchant_id, customer_id=member.customer_id)


def pay(client: TestClient, merchant: Merchant, headers: dict, order_id: int) -> None:
    r = client.post(f"{base(merchant)}/orders/{order_id}/pay", json={"method": "sandbox"}, headers=headers)
    assert r.status_code == 200, r.text
    assert client.post(r.json()["sandbox_confirm_url"], headers=headers).status_code == 200


def test_points_pay_part_capped_and_refused_when_short(client, db, merchant, member, headers) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1500)
    # when: 1,000 points (¥10) on a ¥15 order with the default cap of 50%
    r = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 1)], points=1000), headers=headers)
    # then: ¥7.50 is taken, for 750 points
    assert r.status_code == 200, r.text
    assert r.json()["payment_parts"] == [{"kind": "points", "amount_cents": 750}]
    assert r.json()["payable_cents"] == 750
    # when: the merchant makes 50 points worth ¥1 and the cap 100%
    set_rules(db, merchant=merchant, redeem_points_per_yuan=50, redeem_cap_bps=10_000)
    r = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 1)], points=700), headers=headers)
    assert r.json()["payment_parts"] == [{"kind": "points", "amount_cents": 1400}]
    # when: more points than the member has
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 1)], points=1001), headers=headers)
    # then: 409, no order, no points moved
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    assert db.scalar(select(Order.id).where(Order.merchant_id == merchant.id)) is None
    assert balance(db, member) == 1000


def test_a_customer_without_a_card_cannot_use_points(client, db, merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, price_cents=1500)
    r = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 1)], points=100),
                    headers=customer_headers(db, customer))
    assert r.status_code == 200 and r.json()["payment_parts"] == []
    assert [n["kind"] for n in r.json()["notices"]] == ["points_unavailable"]


def test_cancelled_and_expired_orders_give_the_points_back(client, db, merchant, member, headers) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=2000)
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 1)], points=600), headers=headers)
    assert r.status_code == 201, r.text
    assert balance(db, member) == 400
    # when: cancelled while unpaid
    r = client.post(f"{base(merchant)}/orders/{r.json()['id']}/cancel", json={}, headers=headers)
    assert r.status_code == 200, r.text
    # then: all back
    assert balance(db, member) == 1000
    # when: another order is left unpaid until it expires
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 1)], points=300), headers=headers)
    assert balance(db, member) == 700
    with clock.frozen(clock.now() + dt.timedelta(days=1)):
        orders.expire_unpaid(db, clock.now())
        db.commit()  # the order.cancelled handlers run after the commit
    assert db.get(Order, r.json()["id"]).status == "cancelled"
    assert balance(db, member) == 1000
    assert ledger.verify(db, merchant.id) == []


def test_refunds_return_spent_points_and_reverse_earned_ones(client, db, merchant, member, headers, admin) -> None:
    # given: ¥30 + ¥20, 1,000 points pay ¥10, ¥40 paid in the sandbox, completed
    a = make_sku(db, merchant=merchant, price_cents=3000)
    b = make_sku(db, merchant=merchant, price_cents=2000)
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(a, 1), (b, 1)], points=1000), headers=headers)
    order = r.json()
    assert (order["total_cents"], order["payable_cents"]) == (5000, 4000)
    assert balance(db, member) == 0
    pay(client, merchant, headers, order["id"])
    client.post(f"/api/v1/admin/orders/{order['id']}/ship", json={"carrier": "顺丰", "tracking_no": "SF7654321"},
                headers=admin)
    client.post(f"{base(merchant)}/orders/{order['id']}/confirm-receipt", headers=headers)
    # then: 40 points for ¥40 paid, 100 for the first purchase
    assert balance(db, member) == 140
    lines = {line.sku_id: line.id for line in orders.order_lines(db, order["id"])}

    # when: the ¥30 line is refunded (¥24 money, ¥6 of points)
    r = client.post(f"{base(merchant)}/orders/{order['id']}/refunds",
                    json={"lines": [{"order_line_id": lines[a.id], "quantity": 1}], "reason": "坏了"}, headers=headers)
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["amount_cents"], refund["money_cents"], refund["parts_cents"]) == (3000, 2400, 600)
    assert client.post(f"/api/v1/admin/refunds/{refund['id']}/approve", json={}, headers=admin).status_code == 200
    # then: 600 of the 1,000 points come back, 24 of the 40 earned are taken back
    assert balance(db, member) == 140 + 600 - 24
    row = db.scalars(select(OrderPoints).where(OrderPoints.order_id == order["id"])).one()
    assert (row.returned_points, row.reversed_points, row.growth_reversed) == (600, 24, 24)

    # when: the rest is refunded
    r = client.post(f"{base(merchant)}/orders/{order['id']}/refunds", json={"reason": "都不要了"}, headers=headers)
    assert client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin).status_code == 200
    # then: all 1,000 back, all 40 earned reversed; the first-purchase bonus stays
    assert balance(db, member) == 1000 + 100
    db.refresh(member)
    assert member.growth == 0
    assert ledger.verify(db, merchant.id) == []
    bal, lots = points.check_lots(db, merchant_id=merchant.id, customer_id=member.customer_id)
    assert bal == lots


def test_points_mall_exchange_over_http(client, db, merchant, member, headers) -> None:
    # given: a ¥59 item offered for 800 points
    sku = make_sku(db, merchant=merchant, price_cents=5900, stock=2)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.post("/api/v1/admin/membership/mall-items", json={"sku_id": sku.id, "points": 800}, headers=admin)
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    assert [i["id"] for i in client.get(f"{base(merchant)}/membership/mall").json()["items"]] == [item_id]
    # when: exchanged through checkout
    body = checkout_body([(sku, 1)], points_mall_item_id=item_id)
    r = client.post(f"{base(merchant)}/orders", json=body, headers=headers)
    # then: nothing to pay (so it is paid at once), 800 points gone
    assert r.status_code == 201, r.text
    assert (r.json()["total_cents"], r.json()["status"]) == (0, "paid")
    assert balance(db, member) == 200
    # and: a second exchange is refused for lack of points, and a mall item needs its own checkout
    r = client.post(f"{base(merchant)}/orders", json=body, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    other = make_sku(db, merchant=merchant, price_cents=100)
    r = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 1), (other, 1)],
                                                                             points_mall_item_id=item_id),
                    headers=headers)
    assert r.status_code == 422
    assert db.scalars(select(PointsMallItem)).one().points == 800


def test_staff_adjustment_api_and_lookup(client, db, merchant, member) -> None:
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.post(f"/api/v1/admin/membership/members/{member.id}/points-adjustments",
                    json={"delta": -2000, "reason": "纠错"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    r = client.post(f"/api/v1/admin/membership/members/{member.id}/points-adjustments",
                    json={"delta": 250, "reason": "门店活动"}, headers=admin)
    assert r.status_code == 201 and r.json()["balance"] == 1250
    r = client.get(f"/api/v1/admin/membership/lookup?code={member.card_no}", headers=admin)
    assert r.status_code == 200 and r.json()["id"] == member.id and r.json()["points"]["balance"] == 1250
    history = client.get(f"/api/v1/admin/membership/members/{member.id}/points", headers=admin).json()["items"]
    assert [(e["delta"], e["reason"]) for e in history] == [(250, "adjust"), (1000, "adjust")]
    # a guide cannot adjust; another merchant's member is not found
    guide = auth_headers(db, make_staff(db, merchant=merchant, role="guide"))
    r = client.post(f"/api/v1/admin/membership/members/{member.id}/points-adjustments",
                    json={"delta": 1, "reason": "x"}, headers=guide)
    assert r.status_code in (403, 404)
    from tests.factories.merchants import make_merchant

    other = make_merchant(db)
    r = client.get(f"/api/v1/admin/membership/members/{member.id}", headers=auth_headers(db, make_staff(db, merchant=other)))
    assert r.status_code == 404
