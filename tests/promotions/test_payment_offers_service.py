"""Payment offers: which rule a paid order gets (priority, amount, new or returning, tier, store), shows recorded
once, claims (coupon, gift pack) once, link clicks, conversions within the window (frozen clock)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from siyu.core import clock
from siyu.core.errors import AppError
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.payment_offers import PaymentOfferShow
from siyu.promotions.service import payment_offers as service
from tests.factories.customers import make_customer
from tests.factories.distribution import run_events
from tests.factories.membership import make_member, make_tier
from tests.factories.merchants import make_merchant, make_store
from tests.factories.orders import customer_principal, make_order
from tests.factories.promotions import make_coupon_template, make_offer_rule


def test_first_matching_rule_by_priority_and_amount(db) -> None:
    # given: a big-spender rule (priority 10, ≥ ¥100) and a catch-all (priority 50)
    merchant = make_merchant(db)
    big = make_offer_rule(db, merchant=merchant, name="大单", priority=10, min_paid_cents=10_000)
    anyone = make_offer_rule(db, merchant=merchant, name="所有人", priority=50)
    make_offer_rule(db, merchant=merchant, name="草稿", priority=1, publish=False)
    customer = make_customer(db, merchant=merchant)
    small = make_order(db, merchant=merchant, customer=customer, status="paid", price_cents=5_000)
    large = make_order(db, merchant=merchant, customer=customer, status="paid", price_cents=20_000)
    pending = make_order(db, merchant=merchant, customer=customer, price_cents=20_000)
    # when / then
    assert service.matching_rule(db, order=small).id == anyone.id
    assert service.matching_rule(db, order=large).id == big.id
    assert service.matching_rule(db, order=pending) is None


def test_new_and_returning_customers(db) -> None:
    merchant = make_merchant(db)
    new_rule = make_offer_rule(db, merchant=merchant, name="新客", customer_type="new", priority=1)
    back_rule = make_offer_rule(db, merchant=merchant, name="老客", customer_type="returning", priority=2)
    customer = make_customer(db, merchant=merchant)
    first = make_order(db, merchant=merchant, customer=customer, status="paid")
    second = make_order(db, merchant=merchant, customer=customer, status="paid")
    assert service.matching_rule(db, order=first).id == new_rule.id
    assert service.matching_rule(db, order=second).id == back_rule.id


def test_store_and_tier_conditions(db) -> None:
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    gold = make_tier(db, merchant=merchant, name="金卡", growth_threshold=0)
    tier_rule = make_offer_rule(db, merchant=merchant, name="金卡", tier_id=gold.id, priority=1)
    store_rule = make_offer_rule(db, merchant=merchant, name="门店", store_id=store.id, priority=2)
    at_store_customer = make_customer(db, merchant=merchant, store=store)
    plain = make_customer(db, merchant=merchant)
    at_store = make_order(db, merchant=merchant, customer=at_store_customer, status="paid")
    delivered = make_order(db, merchant=merchant, customer=plain, status="paid")
    member = make_member(db, merchant=merchant)
    member_order = make_order(db, merchant=merchant, customer=db.get(type(plain), member.customer_id), status="paid")
    assert (at_store.store_id, delivered.store_id, member.tier_id) == (store.id, None, gold.id)
    assert service.matching_rule(db, order=member_order).id == tier_rule.id
    assert service.matching_rule(db, order=at_store).id == store_rule.id
    assert service.matching_rule(db, order=delivered) is None


def test_show_once_and_claim_gift_pack_once(db) -> None:
    # given: a gift pack of two coupons
    merchant = make_merchant(db)
    t1 = make_coupon_template(db, merchant=merchant, name="满减券", amount_cents=500, channels=["payment"],
                              per_customer_limit=5)
    t2 = make_coupon_template(db, merchant=merchant, name="运费券", amount_cents=800, channels=["payment"],
                              per_customer_limit=5)
    rule = make_offer_rule(db, merchant=merchant, offer_kind="gift_pack", templates=[t1, t2])
    customer = make_customer(db, merchant=merchant)
    order = make_order(db, merchant=merchant, customer=customer, status="paid")
    # when: the page is shown twice
    first = service.show_for_order(db, order=order)
    again = service.show_for_order(db, order=order)
    assert first.show.id == again.show.id
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["shown"] == 1
    # when: claimed
    show = service.claim(db, actor=customer_principal(customer), show_id=first.show.id)
    # then: both coupons, once
    coupons = list(db.scalars(select(Coupon).where(Coupon.customer_id == customer.id).order_by(Coupon.id)))
    assert [(c.template_id, c.channel) for c in coupons] == [(t1.id, "payment"), (t2.id, "payment")]
    assert show.coupon_ids == [c.id for c in coupons]
    with pytest.raises(AppError) as exc:
        service.claim(db, actor=customer_principal(customer), show_id=first.show.id)
    assert exc.value.code == "offer_already_claimed"
    assert len(list(db.scalars(select(Coupon).where(Coupon.customer_id == customer.id)))) == 2
    # someone else's show is not found
    with pytest.raises(AppError) as exc:
        service.claim(db, actor=customer_principal(make_customer(db, merchant=merchant)), show_id=first.show.id)
    assert exc.value.status_code == 404
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id] == \
        {"shown": 1, "claimed": 1, "clicked": 0, "converted": 0}


def test_link_click_is_counted_once_and_only_for_the_customer(db) -> None:
    merchant = make_merchant(db)
    rule = make_offer_rule(db, merchant=merchant, offer_kind="link", link_url=f"/shop/{merchant.slug}/p/1")
    customer = make_customer(db, merchant=merchant)
    order = make_order(db, merchant=merchant, customer=customer, status="paid")
    offer = service.show_for_order(db, order=order)
    assert service.click(db, merchant_id=merchant.id, show_id=offer.show.id, customer_id=None) == \
        f"/shop/{merchant.slug}/p/1"
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["clicked"] == 0
    service.click(db, merchant_id=merchant.id, show_id=offer.show.id, customer_id=customer.id)
    service.click(db, merchant_id=merchant.id, show_id=offer.show.id, customer_id=customer.id)
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["clicked"] == 1
    with pytest.raises(AppError):
        service.claim(db, actor=customer_principal(customer), show_id=offer.show.id)


def test_offsite_links_are_refused(db) -> None:
    merchant = make_merchant(db)
    for url in ("https://evil.example/", "//evil.example/", "/\\evil", "javascript:alert(1)"):
        with pytest.raises(AppError) as exc:
            make_offer_rule(db, merchant=merchant, offer_kind="link", link_url=url)
        assert exc.value.details["fields"].keys() == {"link_url"}


def test_conversion_within_window_with_frozen_clock(db) -> None:
    # given: an offer shown after a first order, with a 7-day window
    start = clock.now().replace(microsecond=0)
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    with clock.frozen(start):
        rule = make_offer_rule(db, merchant=merchant, conversion_days=7)
        first = make_order(db, merchant=merchant, customer=customer, status="paid")
        shown = service.show_for_order(db, order=first).show
        run_events(db)
    # when: a second order is paid 8 days later: too late
    with clock.frozen(start + dt.timedelta(days=8)):
        make_order(db, merchant=merchant, customer=customer, status="paid")
        run_events(db)
    db.refresh(shown)
    assert shown.converted_order_id is None
    # when: shown again on a new order, then a third order 2 days later
    with clock.frozen(start + dt.timedelta(days=9)):
        second = db.scalars(select(type(first)).where(type(first).customer_id == customer.id)
                            .order_by(type(first).id.desc())).first()
        later_show = service.show_for_order(db, order=second).show
    with clock.frozen(start + dt.timedelta(days=11)):
        third = make_order(db, merchant=merchant, customer=customer, status="paid")
        run_events(db)
    # then
    db.refresh(later_show)
    assert later_show.converted_order_id == third.id
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["converted"] == 1
    assert db.scalar(select(PaymentOfferShow.id).where(PaymentOfferShow.converted_order_id.is_not(None),
                                                       PaymentOfferShow.id == shown.id)) is None


def test_an_orders_offer_sticks_when_rules_change(db) -> None:
    # given: an order shown the catch-all offer
    merchant = make_merchant(db)
    first = make_offer_rule(db, merchant=merchant, priority=50)
    order = make_order(db, merchant=merchant, status="paid")
    shown = service.show_for_order(db, order=order)
    # when: a higher-priority rule appears
    make_offer_rule(db, merchant=merchant, priority=1, name="新规则")
    again = service.show_for_order(db, order=order)
    # then: the same show of the same rule, counted once
    assert (again.rule.id, again.show.id) == (first.id, shown.show.id)
    assert len(list(db.scalars(select(PaymentOfferShow).where(PaymentOfferShow.order_id == order.id)))) == 1
