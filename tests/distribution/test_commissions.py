"""The commission lifecycle through the real order flow: accrue on payment, reverse on refunds,
settle after the after-sales window."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.distribution import service
from siyu.distribution.models import Commission
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from siyu.orders.service.common import lock_order
from tests.factories.customers import make_customer
from tests.factories.distribution import make_distributor, make_rule, refer, run_events
from tests.factories.orders import customer_principal, make_sku, pay, place_order

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def _bal(db: Session, merchant: Merchant, d) -> service.accounts.Balances:
    return service.accounts.balances(db, merchant_id=merchant.id, owner_type="distributor", owner_id=d.id)


def _buy(db: Session, merchant: Merchant, referrer, items, customer=None):
    customer = customer or make_customer(db, merchant=merchant)
    order = place_order(db, customer=customer, items=items)
    refer(db, order, referrer)
    pay(db, order)
    run_events(db)
    return order, customer


def _complete(db: Session, order) -> None:
    system = system_principal(order.merchant_id)
    orders.ship_order(db, order.id, actor=system, carrier="顺丰", tracking_no="SF1")
    locked = lock_order(db, order.id)
    orders.change_status(db, locked, "completed", actor=None)
    run_events(db)


def test_two_levels_accrue_reverse_and_settle(db: Session, merchant: Merchant) -> None:
    with clock.frozen(T0):
        # given A recruited B, 10% at level 1 and 5% at level 2
        a = make_distributor(db, merchant=merchant)
        b = make_distributor(db, merchant=merchant, upline=a)
        make_rule(db, merchant=merchant, level=1, value=1000)
        make_rule(db, merchant=merchant, level=2, value=500)
        sku = make_sku(db, merchant=merchant, price_cents=3333, stock=10)

        # when B's customer buys 3 units (¥99.99)
        order, customer = _buy(db, merchant, b, [(sku, 3)])

        # then B has 10% pending and A 5%, one row per level, with the rule snapshotted
        rows = service.of_order(db, merchant_id=merchant.id, order_id=order.id)
        assert [(r.level, r.beneficiary_id, r.amount_cents, r.base_cents) for r in rows] == [
            (1, b.id, 1000, 9999), (2, a.id, 500, 9999)]
        assert rows[0].rule["kind"] == "bps" and rows[0].rule["value"] == 1000
        assert _bal(db, merchant, b).pending_cents == 1000
        assert _bal(db, merchant, a).pending_cents == 500

        # when one of the three units is refunded
        refund = orders.request_refund(db, order.id, actor=customer_principal(customer), reason="不要了",
                                       lines=[(orders.order_lines(db, order.id)[0].id, 1)])
        orders.approve_refund(db, refund.id, actor=system_principal(merchant.id))
        run_events(db)

    # then a third is reversed (largest remainder: 1000 -> 333/667, 500 -> 167/333)
    assert _bal(db, merchant, b).pending_cents == 667 and _bal(db, merchant, b).reversed_cents == 333
    assert _bal(db, merchant, a).pending_cents == 333 and _bal(db, merchant, a).reversed_cents == 167

    # when the order completes, nothing settles before the window closes
    with clock.frozen(T0 + dt.timedelta(days=1)):
        _complete(db, order)
    assert service.settle_due(db, T0 + dt.timedelta(days=7)) == 0
    assert _bal(db, merchant, b).settled_cents == 0

    # and after the 7-day window it does, once
    later = T0 + dt.timedelta(days=8, seconds=1)
    with clock.frozen(later):
        assert service.settle_due(db, later) == 2
        assert service.settle_due(db, later) == 0
    assert _bal(db, merchant, b) == service.accounts.Balances(settled_cents=667, reversed_cents=333)
    assert _bal(db, merchant, a) == service.accounts.Balances(settled_cents=333, reversed_cents=167)
    assert service.accounts.verify(db, merchant_id=merchant.id) == []


def test_replayed_order_paid_makes_one_set(db: Session, merchant: Merchant) -> None:
    a = make_distributor(db, merchant=merchant)
    make_rule(db, merchant=merchant, value=1000)
    sku = make_sku(db, merchant=merchant, price_cents=1000)
    order, _ = _buy(db, merchant, a, [(sku, 1)])

    # when the paid reaction runs again (a replay of the event or a second event for the order)
    assert service.accrue_order(db, merchant_id=merchant.id, order_id=order.id) == 0

    assert db.scalar(select(func.count()).select_from(Commission).where(Commission.order_id == order.id)) == 1
    assert _bal(db, merchant, a).pending_cents == 100


def test_a_merchant_without_rules_pays_one_read_per_paid_order(db: Session, merchant: Merchant) -> None:
    from sqlalchemy import event

    # given a distributor who referred a paid order, but no commission rule
    a = make_distributor(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, price_cents=1000)
    customer = make_customer(db, merchant=merchant)
    order = place_order(db, customer=customer, items=[(sku, 1)])
    refer(db, order, a)
    pay(db, order)
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    # when the paid reaction runs
    engine = db.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert service.accrue_order(db, merchant_id=merchant.id, order_id=order.id) == 0
    finally:
        event.remove(engine, "before_cursor_execute", count)

    # then it read the active rules only, and nothing accrued
    assert len(sent) == 1 and "commission_rules" in sent[0]
    assert db.scalar(select(func.count()).select_from(Commission).where(Commission.order_id == order.id)) == 0
    assert _bal(db, merchant, a).pending_cents == 0


def test_a_switched_off_programme_accrues_nothing_even_with_rules(db: Session, merchant: Merchant) -> None:
    # given rules, but the programme switched off
    a = make_distributor(db, merchant=merchant)
    make_rule(db, merchant=merchant, value=1000)
    service.update_programme(db, actor=system_principal(merchant.id), enabled=False)
    sku = make_sku(db, merchant=merchant, price_cents=1000)

    # when a referred order is paid
    order, _ = _buy(db, merchant, a, [(sku, 1)])

    # then no commission
    assert db.scalar(select(func.count()).select_from(Commission).where(Commission.order_id == order.id)) == 0
    assert _bal(db, merchant, a).pending_cents == 0
