"""End to end over HTTP: a member climbs tiers by buying (upgrade on the spot, better pricing at
checkout), falls short after the evaluation period, gets a grace period, then is downgraded by
the scheduled review — never retroactively. Paid membership bought through the normal payment."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.jobs import registered
from siyu.membership.models.members import Member, TierChange
from siyu.merchants.models import Merchant
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.membership import make_tier, set_rules
from tests.factories.merchants import auth_headers, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def base(merchant: Merchant) -> str:
    return f"/api/v1/shop/{merchant.slug}"


def buy(client: TestClient, merchant: Merchant, headers: dict, admin: dict, body: dict) -> dict:
    """Order, pay in the sandbox, ship, confirm receipt: a completed order."""
    r = client.post(f"{base(merchant)}/orders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    order = r.json()
    r = client.post(f"{base(merchant)}/orders/{order['id']}/pay", json={"method": "sandbox"}, headers=headers)
    assert r.status_code == 200, r.text
    assert client.post(r.json()["sandbox_confirm_url"], headers=headers).status_code == 200
    r = client.post(f"/api/v1/admin/orders/{order['id']}/ship", json={"carrier": "顺丰", "tracking_no": "SF1234567"},
                    headers=admin)
    assert r.status_code == 200, r.text
    r = client.post(f"{base(merchant)}/orders/{order['id']}/confirm-receipt", headers=headers)
    assert r.json()["status"] == "completed"
    return order


def run_ticks(db: Session, now: dt.datetime) -> None:
    for name, fn in registered().items():
        if name.startswith("membership."):
            fn(db, now)
    db.flush()


def test_upgrade_on_purchase_then_grace_then_downgrade(client: TestClient, db: Session, merchant: Merchant) -> None:
    # given: tiers by growth within 30 days, a 7-day grace period, flat shipping ¥8
    set_rules(db, merchant=merchant, evaluation_days=30, grace_days=7, growth_per_yuan=1, points_per_yuan=1,
              first_purchase_points=100)
    merchant.settings = {"shipping": {"flat_cents": 800}}
    base_tier = make_tier(db, merchant=merchant, name="普通会员", growth_threshold=0)
    silver = make_tier(db, merchant=merchant, name="银卡", growth_threshold=100, points_multiplier_bps=20_000)
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=300, discount_bps=1000, free_shipping=True)
    customer = make_customer(db, merchant=merchant)
    headers = customer_headers(db, customer)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    sku = make_sku(db, merchant=merchant, price_cents=5000, stock=100)

    with clock.frozen(T0):
        # when: the customer activates a card
        r = client.post(f"{base(merchant)}/membership/activate", json={"phone": "13700001234"}, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["tier"]["name"] == "普通会员" and r.json()["next_tier"]["name"] == "银卡"
        # and: buys ¥150 (3 × ¥50 + ¥8 shipping): completed
        buy(client, merchant, headers, admin, checkout_body([(sku, 3)]))
    # then: growth 150 (money paid ¥158 → 158 yuan) upgrades to silver on the spot; points at 1× + first purchase
    me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
    assert me["tier"]["name"] == "银卡" and me["growth"] == 158
    assert me["points"]["balance"] == 158 + 100

    with clock.frozen(T0 + dt.timedelta(days=2)):
        # when: a second purchase of ¥150 + ¥8: points at 2× (silver), growth 316 → gold
        buy(client, merchant, headers, admin, checkout_body([(sku, 3)]))
        me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert me["tier"]["name"] == "金卡"
        assert me["points"]["balance"] == 258 + 316
        # and: gold prices the next basket: 10% off, free shipping
        r = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 2)]), headers=headers)
        preview = r.json()
        assert [a["kind"] for a in preview["adjustments"]] == ["tier_discount"]
        assert (preview["adjustments"][0]["amount_cents"], preview["shipping_cents"], preview["total_cents"]) == \
            (-1000, 0, 9000)
        r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 2)]), headers=headers)
        gold_order_id = r.json()["id"]

    member = db.scalars(select(Member).where(Member.customer_id == customer.id)).one()
    # when: the review after 30 days finds no growth in the window: a grace period, still gold
    with clock.frozen(T0 + dt.timedelta(days=33)):
        run_ticks(db, clock.now())
        db.refresh(member)
        assert member.tier_id == gold.id and member.grace_until == T0 + dt.timedelta(days=40)
        me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert me["grace_until"] is not None
    # and: a tick inside the grace period changes nothing
    with clock.frozen(T0 + dt.timedelta(days=36)):
        run_ticks(db, clock.now())
        db.refresh(member)
        assert member.tier_id == gold.id
    # when: the grace period ends without growth: down to the tier the growth reaches (none in the window → base)
    with clock.frozen(T0 + dt.timedelta(days=41)):
        run_ticks(db, clock.now())
        db.refresh(member)
        assert member.tier_id == base_tier.id and member.grace_until is None
        preview = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 2)]),
                              headers=headers).json()
        assert preview["adjustments"] == [] and preview["shipping_cents"] == 800
    # then: never retroactive: the order priced while gold keeps its price
    assert db.get(Order, gold_order_id).total_cents == 9000
    kinds = [c.kind for c in db.scalars(select(TierChange).where(TierChange.member_id == member.id)
                                        .order_by(TierChange.id))]
    assert kinds == ["upgrade", "upgrade", "upgrade", "grace", "downgrade"]
    assert silver.id != gold.id


def test_paid_membership_through_checkout_and_payment(client: TestClient, db: Session, merchant: Merchant) -> None:
    # given: a plan selling gold for 30 days at ¥19.90, and a member at the base tier
    make_tier(db, merchant=merchant, name="普通会员", growth_threshold=0)
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=10_000, discount_bps=1000)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.post("/api/v1/admin/membership/plans", json={"name": "金卡月卡", "tier_id": gold.id, "days": 30,
                                                           "price_cents": 1990}, headers=admin)
    assert r.status_code == 201, r.text
    plan_id = r.json()["id"]
    customer = make_customer(db, merchant=merchant)
    headers = customer_headers(db, customer)
    sku = make_sku(db, merchant=merchant, price_cents=10000)
    with clock.frozen(T0):
        client.post(f"{base(merchant)}/membership/activate", json={"phone": "13700004321"}, headers=headers)
        # when: the member buys the plan and pays in the sandbox
        r = client.post(f"{base(merchant)}/membership/plans/{plan_id}/buy", headers={**headers, "Idempotency-Key": "b1"})
        assert r.status_code == 201, r.text
        bought = r.json()
        assert bought["payable_cents"] == 1990
        before = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert before["tier"]["name"] == "普通会员"
        r = client.post(f"{base(merchant)}/orders/{bought['order_id']}/pay", json={"method": "sandbox"}, headers=headers)
        assert client.post(r.json()["sandbox_confirm_url"], headers=headers).status_code == 200
        # then: gold applies at once, at checkout too
        me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert me["tier"]["name"] == "金卡" and me["paid_until"] is not None
        preview = client.post(f"{base(merchant)}/checkout/preview", json=checkout_body([(sku, 1)]),
                              headers=headers).json()
        assert preview["adjustments"][0]["amount_cents"] == -1000
        # and: a paid plan earns no points or growth
        assert me["points"]["balance"] == 0 and me["growth"] == 0
    # when: the 30 days are over: the paid tier ends at the next tick
    with clock.frozen(T0 + dt.timedelta(days=31)):
        run_ticks(db, clock.now())
        me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert me["tier"]["name"] == "普通会员" and me["paid_until"] is None


def test_refunding_a_paid_membership_takes_the_days_back(client: TestClient, db: Session, merchant: Merchant) -> None:
    # given: a member who bought 30 days of gold twice (60 days)
    make_tier(db, merchant=merchant, name="普通会员", growth_threshold=0)
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=10_000)
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    plan_id = client.post("/api/v1/admin/membership/plans", json={"name": "金卡月卡", "tier_id": gold.id, "days": 30,
                                                                 "price_cents": 1990}, headers=admin).json()["id"]
    customer = make_customer(db, merchant=merchant)
    headers = customer_headers(db, customer)
    with clock.frozen(T0):
        client.post(f"{base(merchant)}/membership/activate", json={"phone": "13700009999"}, headers=headers)
        bought = []
        for _ in range(2):
            order = client.post(f"{base(merchant)}/membership/plans/{plan_id}/buy", headers=headers).json()
            r = client.post(f"{base(merchant)}/orders/{order['order_id']}/pay", json={"method": "sandbox"},
                            headers=headers)
            assert client.post(r.json()["sandbox_confirm_url"], headers=headers).status_code == 200
            bought.append(order)
        member = db.scalars(select(Member).where(Member.customer_id == customer.id)).one()
        assert member.paid_until == T0 + dt.timedelta(days=60)
        # when: staff refund the second purchase
        r = client.post(f"/api/v1/admin/membership/purchases/{bought[1]['purchase_id']}/refund",
                        json={"reason": "买重了"}, headers=admin)
        assert r.status_code == 200, r.text
        # then: 30 days are left, the order is refunded in full, a second refund is refused
        db.refresh(member)
        assert member.paid_until == T0 + dt.timedelta(days=30) and member.paid_tier_id == gold.id
        refunded = db.get(Order, bought[1]["order_id"])
        assert (refunded.status, refunded.refunded_cents) == ("refunded", 1990)
        r = client.post(f"/api/v1/admin/membership/purchases/{bought[1]['purchase_id']}/refund",
                        json={"reason": "again"}, headers=admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "purchase_not_refundable"
        # and: refunding the first ends the paid tier now
        r = client.post(f"/api/v1/admin/membership/purchases/{bought[0]['purchase_id']}/refund",
                        json={"reason": "不要了"}, headers=admin)
        db.refresh(member)
        assert member.paid_tier_id is None and member.paid_until is None
        me = client.get(f"{base(merchant)}/membership/me", headers=headers).json()["member"]
        assert me["tier"]["name"] == "普通会员"
