"""A system refund of a price difference (ladder prices): money without units, spread over the order's
lines by what each has left, through the provider; later unit refunds never exceed what was paid."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.auth import system_principal
from siyu.core.errors import Conflict
from siyu.orders import service
from siyu.orders.models import Order, RefundLine, RefundRequest
from siyu.payments.models import Payment
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import make_sku, pay, place_order


def _paid_order(db: Session):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    a = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    b = make_sku(db, merchant=merchant, price_cents=500, stock=10)
    order = pay(db, place_order(db, customer=customer, items=[(a, 2), (b, 1)]))
    return merchant, order


def test_difference_is_spread_by_what_each_line_has_left_and_paid_back(db: Session) -> None:
    # given: a paid order of 2500 (lines 2000 and 500)
    merchant, order = _paid_order(db)
    system = system_principal(merchant.id)
    assert (order.total_cents, order.paid_cents) == (2500, 2500)
    # when
    refund = service.refund_price_difference(db, order.id, amount_cents=300, reason="阶梯价差额", actor=system)
    # then: refunded at once through the provider, lines of quantity 0 by largest remainder
    assert (refund.status, refund.amount_cents, refund.money_cents, refund.source, refund.whole_order) == \
        ("refunded", 300, 300, "system", False)
    lines = {rl.order_line_id: (rl.quantity, rl.amount_cents)
             for rl in service.refund_lines_of(db, [refund.id])[refund.id]}
    by_sku = {line.sku_id: line.id for line in service.order_lines(db, order.id)}
    assert sorted(lines.values()) == [(0, 60), (0, 240)]
    db.refresh(order)
    assert (order.status, order.refunded_cents) == ("paid", 300)
    assert db.get(Payment, order.payment_id).refunded_cents == 300
    assert len(by_sku) == 2

    # when: later the customer returns everything
    rest = service.request_refund(db, order.id, actor=system, reason="不要了", source="staff")
    # then: exactly what is left (2500 − 300), and the order is wholly refunded
    assert rest.amount_cents == 2200
    service.approve_refund(db, rest.id, actor=system)
    db.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 2500)
    assert db.get(Payment, order.payment_id).refunded_cents == 2500


def test_a_unit_refund_after_a_difference_subtracts_what_that_line_got(db: Session) -> None:
    merchant, order = _paid_order(db)
    system = system_principal(merchant.id)
    service.refund_price_difference(db, order.id, amount_cents=300, reason="差额", actor=system)
    line_a = next(line for line in service.order_lines(db, order.id) if line.paid_cents == 2000)
    # when: one of the two units of line A (1000 paid) comes back
    one = service.request_refund(db, order.id, actor=system, reason="坏了", lines=[(line_a.id, 1)], source="staff")
    two = service.request_refund(db, order.id, actor=system, reason="坏了", lines=[(line_a.id, 1)], source="staff")
    # then: the line's 240 of difference is taken off: 1000 − 240, then the rest of the line
    assert (one.amount_cents, two.amount_cents) == (760, 1000)
    assert line_a.paid_cents == 240 + 760 + 1000


def test_more_than_is_left_is_refused_without_a_trace(db: Session) -> None:
    merchant, order = _paid_order(db)
    system = system_principal(merchant.id)
    service.refund_price_difference(db, order.id, amount_cents=2000, reason="差额", actor=system)
    count = db.scalar(select(func.count()).select_from(RefundRequest))
    with pytest.raises(Conflict) as err:
        service.refund_price_difference(db, order.id, amount_cents=501, reason="差额", actor=system)
    assert err.value.code == "refund_exceeds_paid"
    assert db.scalar(select(func.count()).select_from(RefundRequest)) == count
    # exactly what is left still goes
    last = service.refund_price_difference(db, order.id, amount_cents=500, reason="差额", actor=system)
    assert last.amount_cents == 500
    assert db.scalar(select(func.sum(RefundLine.amount_cents))) == 2500
    db.refresh(order)
    # money without units: every unit is still the customer's
    assert (order.status, order.refunded_cents) == ("paid", 2500)


def test_unpaid_orders_and_bad_amounts_are_refused(db: Session) -> None:
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    order = place_order(db, customer=customer, items=[(make_sku(db, merchant=merchant, price_cents=1000), 1)])
    system = system_principal(merchant.id)
    with pytest.raises(Conflict) as err:
        service.refund_price_difference(db, order.id, amount_cents=100, reason="差额", actor=system)
    assert err.value.code == "not_refundable"
    with pytest.raises(Conflict) as err:
        service.refund_price_difference(db, order.id, amount_cents=0, reason="差额", actor=system)
    assert err.value.code == "invalid_refund_amount"
    assert db.get(Order, order.id).refunded_cents == 0
