"""Races on a real, committed database (SQLite and PostgreSQL): concurrent order.paid reactions make
one set of commissions; concurrent withdrawals cannot overdraw."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from siyu.core import clock, events
from siyu.db import Database, use_database
from siyu.distribution import service
from siyu.distribution.models import Commission, Withdrawal
from siyu.ledger.models import LedgerEntry
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.distribution import make_distributor, make_rule, refer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal, make_sku, pay, place_order

THREADS = 8


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "distribution_race") as database, use_database(database):
        yield database


def _race(n: int, fn) -> list[object]:
    start = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # the outcome is what the test asserts
            results[i] = exc

    # each thread runs in a copy of this context, so it sees the database bound by use_database()
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _paid_order(database: Database, *, quantity: int = 2):
    """A two-level chain and a paid order whose order.paid reaction has not run yet."""
    with database.scope() as session:
        merchant = make_merchant(session)
        a = make_distributor(session, merchant=merchant)
        b = make_distributor(session, merchant=merchant, upline=a)
        make_rule(session, merchant=merchant, level=1, value=1000)
        make_rule(session, merchant=merchant, level=2, value=500)
        sku = make_sku(session, merchant=merchant, price_cents=5000, stock=20)
        order = place_order(session, customer=make_customer(session, merchant=merchant), items=[(sku, quantity)])
        refer(session, order, b)
        pay(session, order)
        session.info.pop(events.PENDING_KEY, None)  # the reactions run below, racing
        return merchant.id, order.id, a.id, b.id, b.customer_id


def test_concurrent_order_paid_makes_one_set(database: Database) -> None:
    # given a paid order whose reaction has not run
    merchant_id, order_id, a_id, b_id, _ = _paid_order(database)

    # when eight workers run the order.paid reaction at once
    def accrue(_: int) -> int:
        with database.scope() as session:
            return service.accrue_order(session, merchant_id=merchant_id, order_id=order_id)

    results = _race(THREADS, accrue)

    # then exactly one of them wrote the two rows, and the money was posted once
    assert sorted(r for r in results if isinstance(r, int)) == [0] * (THREADS - 1) + [2], results
    with database.scope() as session:
        rows = session.execute(select(Commission.beneficiary_id, Commission.amount_cents)
                               .where(Commission.order_id == order_id).order_by(Commission.level)).all()
        assert [tuple(r) for r in rows] == [(b_id, 1000), (a_id, 500)]
        for d_id, cents in ((b_id, 1000), (a_id, 500)):
            assert service.accounts.balances(session, merchant_id=merchant_id, owner_type="distributor",
                                             owner_id=d_id).pending_cents == cents
        assert service.accounts.verify(session, merchant_id=merchant_id) == []


def test_replayed_event_runs_the_reaction_once(database: Database) -> None:
    # given the order.paid event of an order, stored in the outbox
    merchant_id, order_id, _, b_id, _ = _paid_order(database)
    with database.scope() as session:
        row = session.scalars(select(events.OutboxEvent).where(events.OutboxEvent.name == "order.paid",
                                                               events.OutboxEvent.merchant_id == merchant_id)).one()
        ev = events.Event(id=row.id, name=row.name, merchant_id=row.merchant_id, payload=dict(row.payload))

    # when it is dispatched by several workers at once
    _race(4, lambda _: events.run_event(ev))

    with database.scope() as session:
        assert session.scalar(select(func.count()).select_from(Commission)
                              .where(Commission.order_id == order_id)) == 2
        assert service.accounts.balances(session, merchant_id=merchant_id, owner_type="distributor",
                                         owner_id=b_id).pending_cents == 1000


def test_concurrent_withdrawals_cannot_overdraw(database: Database) -> None:
    # given B has ¥100 withdrawable (a settled commission) and may withdraw up to ¥1,000 a day
    merchant_id, order_id, _, b_id, b_customer_id = _paid_order(database, quantity=20)
    with database.scope() as session:
        service.accrue_order(session, merchant_id=merchant_id, order_id=order_id)
        service.schedule_settlement(session, merchant_id=merchant_id, order_id=order_id,
                                    closes_at=clock.now() - dt.timedelta(seconds=1))
        service.settle_due(session, clock.now())
        from siyu.customers.models import Customer

        principal = customer_principal(session.get(Customer, b_customer_id))
        assert service.accounts.balances(session, merchant_id=merchant_id, owner_type="distributor",
                                         owner_id=b_id).settled_cents == 10_000

    # when ten requests of ¥30 race
    def withdraw(_: int) -> str:
        with database.scope() as session:
            service.request_withdrawal(session, actor=principal, amount_cents=3000)
        return "ok"

    results = _race(10, withdraw)

    # then exactly three went through, the rest were refused, and ¥10 is left
    assert results.count("ok") == 3, results
    assert all(getattr(r, "code", None) == "insufficient_balance" for r in results if r != "ok"), results
    with database.scope() as session:
        b = service.accounts.balances(session, merchant_id=merchant_id, owner_type="distributor", owner_id=b_id)
        assert (b.settled_cents, b.withdrawing_cents) == (1000, 9000)
        assert session.scalar(select(func.count()).select_from(Withdrawal)
                              .where(Withdrawal.merchant_id == merchant_id)) == 3
        assert session.scalar(select(func.min(LedgerEntry.balance_after))
                              .where(LedgerEntry.merchant_id == merchant_id)) >= 0
        assert service.accounts.verify(session, merchant_id=merchant_id) == []


def test_two_settlement_ticks_at_once_settle_once(database: Database) -> None:
    # given a paid order's commissions whose after-sales window has closed
    merchant_id, order_id, a_id, b_id, _ = _paid_order(database, quantity=3)
    with database.scope() as session:
        service.accrue_order(session, merchant_id=merchant_id, order_id=order_id)
        service.schedule_settlement(session, merchant_id=merchant_id, order_id=order_id,
                                    closes_at=clock.now() - dt.timedelta(seconds=1))

    # when two ticks run at once
    def tick(_: int) -> int:
        with database.scope() as session:
            return service.settle_due(session, clock.now(), merchant_id=merchant_id)

    results = _race(2, tick)

    # then the two rows settled once between them
    assert sorted(results) == [0, 2], results
    with database.scope() as session:
        for d_id, cents in ((b_id, 1500), (a_id, 750)):
            b = service.accounts.balances(session, merchant_id=merchant_id, owner_type="distributor", owner_id=d_id)
            assert (b.pending_cents, b.settled_cents) == (0, cents)
        assert service.accounts.verify(session, merchant_id=merchant_id) == []
