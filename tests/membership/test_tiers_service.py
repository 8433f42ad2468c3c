"""Tiers: the member price on chosen products or categories, free shipping for delivery only,
catching up during the grace period, paid tiers, and tier configuration checks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.errors import AppError
from siyu.customers.models import Customer
from siyu.membership.service import tiers
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from tests.factories.membership import customer_actor, make_member, make_tier, set_rules
from tests.factories.merchants import make_staff, make_store, principal_of
from tests.factories.orders import checkout_body, make_sku, pickup

T0 = dt.datetime(2026, 1, 10, 2, 0, tzinfo=dt.UTC)


def preview(db: Session, customer: Customer, body: dict) -> dict:
    return orders.preview(db, actor=customer_actor(customer), request=CheckoutRequest.model_validate(body))


def test_member_price_on_chosen_products_only_and_free_delivery(db: Session, merchant: Merchant) -> None:
    # given: gold takes 10% off product A only and ships free; shipping is ¥10
    merchant.settings = {"shipping": {"flat_cents": 1000}}
    a = make_sku(db, merchant=merchant, price_cents=3333)
    b = make_sku(db, merchant=merchant, price_cents=2000)
    make_tier(db, merchant=merchant, name="金卡", growth_threshold=0, discount_bps=1000, free_shipping=True,
              discount_product_ids=[a.product_id])
    member = make_member(db, merchant=merchant)
    customer = db.get(Customer, member.customer_id)
    # when
    priced = preview(db, customer, checkout_body([(a, 2), (b, 1)]))
    # then: 10% of ¥66.66 = ¥6.67 (half-up) on A's line only; no shipping
    assert priced["adjustments"] == [{"kind": "tier_discount", "label": "Member price", "amount_cents": -667}]
    assert [line["discount_cents"] for line in priced["lines"]] == [-667, 0]
    assert (priced["shipping_cents"], priced["total_cents"]) == (0, 6666 - 667 + 2000)
    assert [n["kind"] for n in priced["notices"]] == ["member_free_shipping"]
    # and: a pickup order has no shipping to waive
    store = make_store(db, merchant=merchant)
    assert preview(db, customer, checkout_body([(b, 1)], fulfilment=pickup(store)))["notices"] == []


def test_catching_up_during_the_grace_period_keeps_the_tier(db: Session, merchant: Merchant) -> None:
    set_rules(db, merchant=merchant, evaluation_days=30, grace_days=10)
    make_tier(db, merchant=merchant, name="普通", growth_threshold=0)
    silver = make_tier(db, merchant=merchant, name="银卡", growth_threshold=100)
    with clock.frozen(T0):
        member = make_member(db, merchant=merchant)
        tiers.add_growth(db, member, delta=120, reason="test", key="g1")
        assert member.tier_id == silver.id
    with clock.frozen(T0 + dt.timedelta(days=31)):
        tiers.review_tick(db, clock.now())
        assert member.grace_until is not None and member.tier_id == silver.id
        # when: growth comes back within the grace period
        tiers.add_growth(db, member, delta=100, reason="test", key="g2")
    # then: kept, the grace period over, the next review a full window away
    assert member.tier_id == silver.id and member.grace_until is None
    assert member.review_at == T0 + dt.timedelta(days=61)
    with clock.frozen(T0 + dt.timedelta(days=45)):
        assert tiers.review_tick(db, clock.now()) == {}


def test_growth_reversal_never_downgrades_on_the_spot(db: Session, merchant: Merchant) -> None:
    make_tier(db, merchant=merchant, name="普通", growth_threshold=0)
    silver = make_tier(db, merchant=merchant, name="银卡", growth_threshold=100)
    member = make_member(db, merchant=merchant)
    tiers.add_growth(db, member, delta=150, reason="order", key="o1")
    tiers.add_growth(db, member, delta=-500, reason="refund", key="r1")
    assert member.growth == 0 and member.tier_id == silver.id
    tiers.add_growth(db, member, delta=-5, reason="refund", key="r2")
    assert member.growth == 0


def test_paid_tier_applies_while_better_and_running(db: Session, merchant: Merchant) -> None:
    base = make_tier(db, merchant=merchant, name="普通", growth_threshold=0)
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=1000)
    member = make_member(db, merchant=merchant)
    member.paid_tier_id, member.paid_until = gold.id, clock.now() + dt.timedelta(days=1)
    assert tiers.effective_tier(db, member).id == gold.id
    assert tiers.effective_tier(db, member, clock.now() + dt.timedelta(days=2)).id == base.id


def test_tier_configuration_is_checked_and_audited(db: Session, merchant: Merchant) -> None:
    admin = principal_of(db, make_staff(db, merchant=merchant))
    tier = tiers.create_tier(db, actor=admin, name="银卡", growth_threshold="100", discount_bps=300,
                             discount_category_ids="3, 5,5")
    assert (tier.growth_threshold, tier.discount_category_ids) == (100, [3, 5])
    with pytest.raises(AppError) as exc:
        tiers.create_tier(db, actor=admin, name="银卡")
    assert exc.value.code == "tier_name_taken"
    with pytest.raises(AppError) as exc:
        tiers.update_tier(db, tier.id, actor=admin, discount_bps=9500, growth_threshold="x")
    assert set(exc.value.details["fields"]) == {"discount_bps", "growth_threshold"}
    guide = principal_of(db, make_staff(db, merchant=merchant, role="guide"))
    with pytest.raises(AppError) as exc:
        tiers.update_tier(db, tier.id, actor=guide, name="改名")
    assert exc.value.status_code == 403
    assert tier.name == "银卡"
