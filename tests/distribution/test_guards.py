"""Guards and rules: self-binding, cycles, upline churn, self-purchase, frozen distributors, the level
cap, enrolment modes, rule precedence, guide commission, and refunds after settlement."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.distribution import service
from siyu.distribution.models import UplineChange
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from tests.factories.customers import make_customer
from tests.factories.distribution import admin, make_distributor, make_rule, refer, run_events, set_programme
from tests.factories.merchants import make_staff, make_store
from tests.factories.orders import customer_principal, make_sku, pay, place_order

T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)


def _bal(db: Session, merchant: Merchant, d, owner_type: str = "distributor") -> service.accounts.Balances:
    return service.accounts.balances(db, merchant_id=merchant.id, owner_type=owner_type,
                                     owner_id=d if isinstance(d, int) else d.id)


def _order(db: Session, merchant: Merchant, referrer, *, customer=None, items=None, price: int = 10000):
    customer = customer or make_customer(db, merchant=merchant)
    order = place_order(db, customer=customer, items=items or [(make_sku(db, merchant=merchant, price_cents=price), 1)])
    refer(db, order, referrer)
    pay(db, order)
    run_events(db)
    return order


def _rows(db: Session, order) -> list[tuple[int, int, int]]:
    return [(r.level, r.beneficiary_id, r.amount_cents) for r in service.of_order(db, merchant_id=order.merchant_id,
                                                                                   order_id=order.id)]


def test_no_self_binding_and_no_cycles(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    b = make_distributor(db, merchant=merchant, upline=a)
    c = make_distributor(db, merchant=merchant, upline=b)
    changes = db.scalar(select(func.count()).select_from(UplineChange).where(UplineChange.merchant_id == merchant.id))

    with pytest.raises(AppError) as self_bind:
        service.set_upline(db, row=a, upline=a, actor=None)
    with pytest.raises(AppError) as cycle:
        service.change_upline(db, actor=admin(merchant), distributor_id=a.id, upline_id=c.id)
    # joining with one's own invitation code is refused too
    with pytest.raises(AppError) as own_code:
        service.join(db, actor=customer_principal(db.get(type(make_customer(db, merchant=merchant)), a.customer_id)),
                     invite_code=a.invite_code)

    assert (self_bind.value.code, cycle.value.code) == ("self_binding", "upline_cycle")
    assert own_code.value.code == "already_joined"
    db.refresh(a)
    assert a.upline_id is None
    assert db.scalar(select(func.count()).select_from(UplineChange)
                     .where(UplineChange.merchant_id == merchant.id)) == changes


def test_upline_churn_is_rate_limited(db: Session, merchant: Merchant) -> None:
    with clock.frozen(T0):
        a, x = make_distributor(db, merchant=merchant), make_distributor(db, merchant=merchant)
        b = make_distributor(db, merchant=merchant, upline=a)
        with pytest.raises(AppError) as refused:
            service.set_upline(db, row=b, upline=x, actor=None)
        assert refused.value.code == "upline_rate_limited" and b.upline_id == a.id
    with clock.frozen(T0 + dt.timedelta(days=31)):
        service.set_upline(db, row=b, upline=x, actor=None)
    assert b.upline_id == x.id
    db.refresh(a), db.refresh(x)
    assert (a.team_size, x.team_size) == (0, 1)


def test_own_orders_earn_only_with_self_purchase(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    b = make_distributor(db, merchant=merchant, upline=a)
    make_rule(db, merchant=merchant, level=1, value=1000)
    make_rule(db, merchant=merchant, level=2, value=500)
    b_customer = db.get(type(make_customer(db, merchant=merchant)), b.customer_id)

    # self-purchase off: B earns nothing on B's own order (bound to B), A still earns level 2
    off = _order(db, merchant, b, customer=b_customer)
    assert _rows(db, off) == [(2, a.id, 500)]

    # self-purchase on: B earns level 1 on their own order, A level 2
    set_programme(db, merchant=merchant, self_purchase=True)
    on = _order(db, merchant, None, customer=b_customer)
    assert _rows(db, on) == [(1, b.id, 1000), (2, a.id, 500)]


def test_frozen_distributors_accrue_nothing(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    b = make_distributor(db, merchant=merchant, upline=a)
    make_rule(db, merchant=merchant, level=1, value=1000)
    make_rule(db, merchant=merchant, level=2, value=500)
    service.change_status(db, actor=admin(merchant), distributor_id=b.id, status="frozen")

    order = _order(db, merchant, b)

    assert _rows(db, order) == [(2, a.id, 500)]
    assert _bal(db, merchant, b).earned_cents == 0
    # and a frozen distributor cannot withdraw
    with pytest.raises(AppError) as refused:
        service.request_withdrawal(db, actor=customer_principal(db.get(type(make_customer(db, merchant=merchant)),
                                                                       b.customer_id)), amount_cents=100)
    assert refused.value.code == "distributor_not_active"


def test_two_levels_unless_a_third_is_explicitly_allowed(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    b = make_distributor(db, merchant=merchant, upline=a)
    c = make_distributor(db, merchant=merchant, upline=b)
    for level, bps in ((1, 1000), (2, 500), (3, 200)):
        make_rule(db, merchant=merchant, level=level, value=bps)

    with pytest.raises(AppError) as refused:
        set_programme(db, merchant=merchant, levels=3)
    assert refused.value.code == "levels_not_allowed"
    assert _rows(db, _order(db, merchant, c)) == [(1, c.id, 1000), (2, b.id, 500)]

    set_programme(db, merchant=merchant, allow_third_level=True, levels=3)
    assert _rows(db, _order(db, merchant, c)) == [(1, c.id, 1000), (2, b.id, 500), (3, a.id, 200)]


def test_enrolment_modes(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    set_programme(db, merchant=merchant, enrolment_mode="invitation")
    someone = customer_principal(make_customer(db, merchant=merchant))
    with pytest.raises(AppError) as refused:
        service.join(db, actor=someone)
    assert refused.value.code == "invitation_required"
    assert service.join(db, actor=someone, invite_code=a.invite_code.lower()).upline_id == a.id

    set_programme(db, merchant=merchant, enrolment_mode="first_purchase")
    buyer = make_customer(db, merchant=merchant)
    with pytest.raises(AppError) as refused:
        service.join(db, actor=customer_principal(buyer))
    assert refused.value.code == "first_purchase_required"
    _order(db, merchant, None, customer=buyer)
    assert service.join(db, actor=customer_principal(buyer)).status == "active"

    set_programme(db, merchant=merchant, enrolment_mode="approval")
    applicant = service.join(db, actor=customer_principal(make_customer(db, merchant=merchant)), invite_code=a.invite_code)
    assert applicant.status == "pending"
    db.refresh(a)
    team_before = a.team_size
    service.review(db, actor=admin(merchant), distributor_id=applicant.id, approve=True)
    db.refresh(a)
    assert (applicant.status, a.team_size) == ("active", team_before + 1)


def test_the_most_specific_rule_wins(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant, grade="senior")
    sku = make_sku(db, merchant=merchant, price_cents=10000)
    make_rule(db, merchant=merchant, value=100)  # default 1%
    assert _rows(db, _order(db, merchant, a, items=[(sku, 1)])) == [(1, a.id, 100)]
    make_rule(db, merchant=merchant, scope="grade", grade="senior", value=200)
    assert _rows(db, _order(db, merchant, a, items=[(sku, 1)])) == [(1, a.id, 200)]
    order = _order(db, merchant, None, items=[(sku, 1)])
    category_id = orders.order_lines(db, order.id)[0].category_id
    if category_id is not None:
        make_rule(db, merchant=merchant, scope="category", scope_id=category_id, value=300)
        assert _rows(db, _order(db, merchant, a, items=[(sku, 1)])) == [(1, a.id, 300)]
    # a fixed amount per unit, never more than what was paid for the line
    make_rule(db, merchant=merchant, scope="product", scope_id=sku.product_id, kind="fixed", value=6000)
    assert _rows(db, _order(db, merchant, a, items=[(sku, 3)])) == [(1, a.id, 18000)]
    cheap = make_sku(db, merchant=merchant, price_cents=500)
    make_rule(db, merchant=merchant, scope="product", scope_id=cheap.product_id, kind="fixed", value=800)
    assert _rows(db, _order(db, merchant, a, items=[(cheap, 2)])) == [(1, a.id, 1000)]


def test_guides_earn_by_store_and_by_guide(db: Session, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role="guide", store=store)
    other = make_staff(db, merchant=merchant, role="guide", store=store)
    make_rule(db, merchant=merchant, audience="guide", scope="store", scope_id=store.id, value=200)
    make_rule(db, merchant=merchant, audience="guide", scope="guide", scope_id=guide.id, value=500)

    for g in (guide, other):
        order = place_order(db, customer=make_customer(db, merchant=merchant),
                            items=[(make_sku(db, merchant=merchant, price_cents=10000), 1)])
        order.attribution = {**(order.attribution or {}), "guide_id": g.id, "store_id": store.id,
                             "referrer_customer_id": None}
        db.flush()
        pay(db, order)
        run_events(db)
    assert _bal(db, merchant, guide, "guide").pending_cents == 500
    assert _bal(db, merchant, other, "guide").pending_cents == 200


def test_a_refund_after_settlement_is_taken_back_or_owed(db: Session, merchant: Merchant) -> None:
    with clock.frozen(T0):
        a = make_distributor(db, merchant=merchant)
        make_rule(db, merchant=merchant, value=1000)
        customer = make_customer(db, merchant=merchant)
        sku = make_sku(db, merchant=merchant, price_cents=10000)
        order = _order(db, merchant, a, customer=customer, items=[(sku, 2)])
        system = system_principal(merchant.id)
        orders.ship_order(db, order.id, actor=system, carrier="顺丰", tracking_no="SF0001")
        orders.confirm_receipt(db, order.id, actor=customer_principal(customer))
        run_events(db)
        # the customer asks for one unit back before the window closes; staff decide only later
        refund = orders.request_refund(db, order.id, actor=customer_principal(customer), reason="质量问题",
                                       lines=[(orders.order_lines(db, order.id)[0].id, 1)])
    later = T0 + dt.timedelta(days=8)
    with clock.frozen(later):
        service.settle_due(db, later)
        a_principal = customer_principal(db.get(type(customer), a.customer_id))
        w = service.request_withdrawal(db, actor=a_principal, amount_cents=1500)
        assert _bal(db, merchant, a).settled_cents == 500
        orders.approve_refund(db, refund.id, actor=system)
        run_events(db)

    # then ¥5 of the ¥10 reversal came from the balance and ¥5 is owed
    b = _bal(db, merchant, a)
    assert (b.settled_cents, b.reversed_cents, b.owed_cents, b.withdrawing_cents) == (0, 1000, 500, 1500)
    assert b.earned_cents == 2000
    # the next settlement pays the debt first
    with clock.frozen(later):
        service.reject(db, actor=system, withdrawal_id=w.id, reason="测试")
        second = _order(db, merchant, a, items=[(sku, 1)])
        service.schedule_settlement(db, merchant_id=merchant.id, order_id=second.id, closes_at=later)
        service.settle_due(db, later)
    b = _bal(db, merchant, a)
    assert (b.settled_cents, b.owed_cents, b.earned_cents) == (1500 + 1000 - 500, 0, 3000)
    assert service.accounts.verify(db, merchant_id=merchant.id) == []


def test_withdrawal_minimum_and_daily_limit(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    make_rule(db, merchant=merchant, value=1000)
    set_programme(db, merchant=merchant, min_withdrawal_cents=500, daily_withdrawal_limit_cents=800)
    order = _order(db, merchant, a, price=20000)
    service.schedule_settlement(db, merchant_id=merchant.id, order_id=order.id, closes_at=clock.now())
    service.settle_due(db, clock.now() + dt.timedelta(seconds=1))
    principal = customer_principal(db.get(type(make_customer(db, merchant=merchant)), a.customer_id))

    with pytest.raises(AppError) as low:
        service.request_withdrawal(db, actor=principal, amount_cents=499)
    service.request_withdrawal(db, actor=principal, amount_cents=500)
    with pytest.raises(AppError) as over:
        service.request_withdrawal(db, actor=principal, amount_cents=500)

    assert (low.value.code, over.value.code) == ("below_minimum", "daily_limit_reached")
    assert over.value.details == {"left_today_cents": 300}
    assert _bal(db, merchant, a).settled_cents == 1500


def test_grades_go_up_by_team_size_or_settled_sales(db: Session, merchant: Merchant) -> None:
    set_programme(db, merchant=merchant, grades=[
        {"code": "junior", "name": "初级", "min_settled_sales_cents": 0, "min_team_size": 0},
        {"code": "intermediate", "name": "中级", "min_settled_sales_cents": 0, "min_team_size": 2},
        {"code": "senior", "name": "高级", "min_settled_sales_cents": 10_000, "min_team_size": 0}])
    make_rule(db, merchant=merchant, value=1000)
    a = make_distributor(db, merchant=merchant)
    assert a.grade == "junior"

    make_distributor(db, merchant=merchant, upline=a)
    make_distributor(db, merchant=merchant, upline=a)
    db.refresh(a)
    assert (a.team_size, a.grade) == (2, "intermediate")

    order = _order(db, merchant, a, price=10_000)
    db.refresh(a)
    assert a.grade == "intermediate"  # pending sales do not count
    service.schedule_settlement(db, merchant_id=merchant.id, order_id=order.id, closes_at=clock.now())
    service.settle_due(db, clock.now() + dt.timedelta(seconds=1))
    db.refresh(a)
    assert (a.settled_sales_cents, a.grade) == (10_000, "senior")


def test_a_merged_customers_distributor_record_follows_them(db: Session, merchant: Merchant) -> None:
    from siyu.customers import service as customers

    a = make_distributor(db, merchant=merchant)
    target = make_customer(db, merchant=merchant)
    customers.merge_customers(db, source_id=a.customer_id, target_id=target.id, actor=admin(merchant))
    run_events(db)

    assert service.of_customer(db, merchant_id=merchant.id, customer_id=target.id).id == a.id
