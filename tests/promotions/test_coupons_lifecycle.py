"""Coupons over time: templates' statuses, claiming rules, expiry by `jobs.tick` with a frozen clock,
coupons given back by cancelled and wholly refunded orders, and merged customers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.customers import service as customers
from siyu.orders import service as orders
from siyu.promotions.jobs.coupons import coupons_expire
from siyu.promotions.models.coupons import Coupon, CouponClaimCount
from siyu.promotions.service import coupons as coupon_service
from tests.factories.customers import make_customer
from tests.factories.distribution import run_events
from tests.factories.merchants import make_staff, principal_of
from tests.factories.orders import customer_principal, make_sku, pay, place_order
from tests.factories.promotions import give_coupon, make_coupon_template

T0 = dt.datetime(2026, 5, 1, 4, 0, tzinfo=dt.UTC)


def test_expiry_job_with_a_frozen_clock(db: Session, merchant) -> None:
    # given: at T0, a 7-day relative coupon claimed, and a fixed template ending at T0 + 3 days
    with clock.frozen(T0):
        relative = make_coupon_template(db, merchant=merchant, validity="relative", days_valid=7)
        fixed = make_coupon_template(db, merchant=merchant, days_valid=3)
        customer = make_customer(db, merchant=merchant)
        weekly = give_coupon(db, template=relative, customer=customer)
        short = give_coupon(db, template=fixed, customer=customer)
    assert (weekly.valid_until, short.valid_until) == (T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=3))
    # when: the job runs at T0 + 3 days (the fixed one's end), then again (idempotent)
    with clock.frozen(T0 + dt.timedelta(days=3)):
        first = coupons_expire(db, T0 + dt.timedelta(days=3))
        second = coupons_expire(db, T0 + dt.timedelta(days=3))
    db.expire_all()
    # then: the short coupon expired and its template ended; the weekly one is still available
    assert first == {"expired": 1, "started": 0, "ended": 1}
    assert second == {"expired": 0, "started": 0, "ended": 0}
    assert (db.get(Coupon, short.id).status, db.get(Coupon, weekly.id).status) == ("expired", "available")
    assert (fixed.status, relative.status) == ("ended", "active")
    # when: a week after the claim
    assert coupons_expire(db, T0 + dt.timedelta(days=7)) == {"expired": 1, "started": 0, "ended": 0}
    db.expire_all()
    assert db.get(Coupon, weekly.id).status == "expired"


def test_a_scheduled_template_starts_by_the_job(db: Session, merchant) -> None:
    with clock.frozen(T0):
        template = make_coupon_template(db, merchant=merchant, status="scheduled",
                                        starts_at=T0 + dt.timedelta(days=1), ends_at=T0 + dt.timedelta(days=5))
        customer = make_customer(db, merchant=merchant)
        assert template.status == "scheduled"
        with pytest.raises(AppError) as err:
            give_coupon(db, template=template, customer=customer)
        assert err.value.code == "coupon_not_claimable"
    assert coupons_expire(db, T0 + dt.timedelta(days=1)) == {"expired": 0, "started": 1, "ended": 0}
    db.expire_all()
    assert template.status == "active"
    with clock.frozen(T0 + dt.timedelta(days=1, hours=1)):
        assert give_coupon(db, template=template, customer=customer).valid_until == T0 + dt.timedelta(days=5)


def test_statuses_move_only_through_the_table(db: Session, merchant) -> None:
    staff = principal_of(db, make_staff(db, merchant=merchant))
    template = coupon_service.create_template(db, actor=staff, name="十元券", kind="fixed", amount_cents=1000,
                                              validity="relative", valid_days=7)
    assert template.status == "draft"
    assert coupon_service.publish_template(db, actor=staff, template_id=template.id).status == "active"
    assert coupon_service.pause_template(db, actor=staff, template_id=template.id).status == "paused"
    with pytest.raises(AppError) as err:
        give_coupon(db, template=template, customer=make_customer(db, merchant=merchant))
    assert err.value.code == "coupon_not_claimable"
    assert coupon_service.resume_template(db, actor=staff, template_id=template.id).status == "active"
    assert coupon_service.end_template(db, actor=staff, template_id=template.id).status == "ended"
    with pytest.raises(AppError) as err:
        coupon_service.resume_template(db, actor=staff, template_id=template.id)
    assert (err.value.code, err.value.details) == ("invalid_transition", {"from": "ended", "to": "active"})


def test_a_guide_may_not_manage_templates_but_sends_to_own_customers(db: Session, merchant) -> None:
    guide_staff = make_staff(db, merchant=merchant, role="guide")
    guide = principal_of(db, guide_staff)
    with pytest.raises(AppError) as err:
        coupon_service.create_template(db, actor=guide, name="x", kind="fixed", amount_cents=100,
                                       validity="relative", valid_days=1)
    assert err.value.status_code == 403
    template = make_coupon_template(db, merchant=merchant, channels=["guide"])
    mine = make_customer(db, merchant=merchant, owner=guide_staff)
    other = make_customer(db, merchant=merchant)
    result = coupon_service.issue_to_customers(db, actor=guide, template_id=template.id,
                                               customer_ids=[mine.id, other.id])
    assert (result["issued"], result["refused"]) == (1, {"not_found": 1})
    coupon = db.get(Coupon, result["coupon_ids"][0])
    assert (coupon.customer_id, coupon.channel, coupon.issued_by) == (mine.id, "guide", guide_staff.id)


def test_channel_not_offered_is_refused(db: Session, merchant) -> None:
    template = make_coupon_template(db, merchant=merchant, channels=["centre"])
    with pytest.raises(AppError) as err:
        give_coupon(db, template=template, customer=make_customer(db, merchant=merchant), channel="payment")
    assert err.value.code == "coupon_not_claimable"
    assert db.scalars(select(Coupon)).all() == [] and db.scalars(select(CouponClaimCount)).all() == []


def test_a_cancelled_order_gives_the_coupon_back(db: Session, merchant) -> None:
    # given: an order using a ¥5 coupon
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    customer = make_customer(db, merchant=merchant)
    coupon = give_coupon(db, template=make_coupon_template(db, merchant=merchant, amount_cents=500),
                         customer=customer)
    order = place_order(db, customer=customer, items=[(sku, 1)], coupon_ids=[coupon.id])
    db.refresh(coupon)
    assert (order.total_cents, coupon.status, coupon.order_id) == (2500, "used", order.id)
    assert coupon_service.template_summary(db, merchant_id=merchant.id, template_id=coupon.template_id)["used"] == 1
    # when: the customer cancels it
    orders.cancel_order(db, order.id, actor=customer_principal(customer))
    run_events(db)
    # then: the coupon is available again
    coupon = db.get(Coupon, coupon.id)
    assert (coupon.status, coupon.order_id, coupon.discount_cents) == ("available", None, 0)


def test_a_cancelled_order_after_the_coupon_ended_expires_it(db: Session, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    customer = make_customer(db, merchant=merchant)
    with clock.frozen(T0):
        coupon = give_coupon(db, template=make_coupon_template(db, merchant=merchant, validity="relative",
                                                               days_valid=1), customer=customer)
        order = place_order(db, customer=customer, items=[(sku, 1)], coupon_ids=[coupon.id])
    with clock.frozen(T0 + dt.timedelta(days=2)):
        orders.cancel_order(db, order.id, actor=system_principal(merchant.id))
        run_events(db)
    assert db.get(Coupon, coupon.id).status == "expired"


def _refund_all(db: Session, merchant, order, customer) -> None:
    staff = principal_of(db, make_staff(db, merchant=merchant))
    refund = orders.request_refund(db, order.id, actor=customer_principal(customer), reason="不要了")
    orders.approve_refund(db, refund.id, actor=staff)
    run_events(db)


def test_a_wholly_refunded_order_gives_back_an_unexpired_coupon(db: Session, merchant) -> None:
    # given: a paid order with a ¥5 coupon
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    customer = make_customer(db, merchant=merchant)
    coupon = give_coupon(db, template=make_coupon_template(db, merchant=merchant, amount_cents=500),
                         customer=customer)
    order = pay(db, place_order(db, customer=customer, items=[(sku, 1)], coupon_ids=[coupon.id]))
    run_events(db)
    # when: the whole order is refunded
    _refund_all(db, merchant, order, customer)
    # then
    assert db.get(Coupon, coupon.id).status == "available"


def test_a_refund_after_the_coupon_ended_keeps_it_used(db: Session, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    customer = make_customer(db, merchant=merchant)
    with clock.frozen(T0):
        coupon = give_coupon(db, template=make_coupon_template(db, merchant=merchant, validity="relative",
                                                               days_valid=1), customer=customer)
        order = pay(db, place_order(db, customer=customer, items=[(sku, 1)], coupon_ids=[coupon.id]))
        run_events(db)
    with clock.frozen(T0 + dt.timedelta(days=2)):
        _refund_all(db, merchant, order, customer)
    coupon = db.get(Coupon, coupon.id)
    assert (coupon.status, coupon.order_id) == ("used", order.id)


def test_merged_customers_keep_coupons_and_counts(db: Session, merchant) -> None:
    template = make_coupon_template(db, merchant=merchant, per_customer_limit=2)
    source, target = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    give_coupon(db, template=template, customer=source)
    give_coupon(db, template=template, customer=target)
    customers.merge_customers(db, source_id=source.id, target_id=target.id, actor=system_principal(merchant.id))
    run_events(db)
    assert sorted(c.customer_id for c in db.scalars(select(Coupon))) == [target.id, target.id]
    assert [(c.customer_id, c.claimed) for c in db.scalars(select(CouponClaimCount))] == [(target.id, 2)]
    with pytest.raises(AppError) as err:
        give_coupon(db, template=template, customer=target)
    assert err.value.code == "coupon_limit_reached"
