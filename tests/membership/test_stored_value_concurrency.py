"""Double spend: two checkouts at once each try to spend the whole balance; exactly one succeeds
(real threads, real commits, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.db import Database, use_database
from siyu.ledger import service as ledger
from siyu.membership.service import stored_value as sv
from siyu.orders import service as orders
from siyu.orders.models import Order
from siyu.orders.schemas import CheckoutRequest
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, principal_of
from tests.factories.orders import checkout_body, customer_principal, make_sku


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    sv.install()
    with committed(request.param, "stored_value_race") as database:
        yield database


def _race(fn, n: int = 2) -> list[str]:
    start = threading.Barrier(n)
    results = [""] * n

    def run(i: int) -> None:
        start.wait()
        try:
            fn(i)
            results[i] = "ok"
        except AppError as exc:
            results[i] = exc.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _given(database: Database, *, price_cents: int) -> tuple[int, int, int, object]:
    with use_database(database), database.scope() as session:
        merchant = make_merchant(session)
        admin = principal_of(session, make_staff(session, merchant=merchant))
        customer = make_customer(session, merchant=merchant)
        sv.adjust(session, actor=admin, customer_id=customer.id, account="principal", delta_cents=8000, reason="开户")
        sv.adjust(session, actor=admin, customer_id=customer.id, account="bonus", delta_cents=2000, reason="开户")
        sku = make_sku(session, merchant=merchant, price_cents=price_cents, stock=10)
        return merchant.id, customer.id, sku.id, customer_principal(customer)


def test_two_checkouts_spending_the_whole_balance(committed_database: Database) -> None:
    # given: a balance of 80.00 + 20.00 and an item of exactly 100.00
    merchant_id, customer_id, sku_id, actor = _given(committed_database, price_cents=10000)
    request = CheckoutRequest.model_validate(checkout_body([(sku_id, 1)], use_balance=True))

    def buy(i: int) -> None:
        with use_database(committed_database), committed_database.scope() as session:
            orders.place_order(session, actor=actor, request=request)

    # when: two checkouts at once
    results = _race(buy)

    # then: one order paid in full by the balance, the other refused; nothing negative, ledger exact
    assert sorted(results) == ["insufficient_balance", "ok"]
    with use_database(committed_database), committed_database.scope() as session:
        rows = list(session.scalars(select(Order).where(Order.merchant_id == merchant_id)))
        assert [(o.status, o.payable_cents) for o in rows] == [("paid", 0)]
        b = sv.balance_of(session, merchant_id=merchant_id, customer_id=customer_id)
        assert (b.principal_cents, b.bonus_cents) == (0, 0)
        assert ledger.verify(session, merchant_id) == []


def test_two_balance_payments_of_the_whole_balance(committed_database: Database) -> None:
    # given: two unpaid orders of 100.00 each and a balance of 100.00
    merchant_id, customer_id, sku_id, actor = _given(committed_database, price_cents=10000)
    request = CheckoutRequest.model_validate(checkout_body([(sku_id, 1)]))
    with use_database(committed_database), committed_database.scope() as session:
        ids = [orders.place_order(session, actor=actor, request=request)[0].id for _ in range(2)]

    def pay(i: int) -> None:
        with use_database(committed_database), committed_database.scope() as session:
            orders.pay_order(session, ids[i], actor=actor, method="balance")

    # when: both are paid with the balance at once
    results = _race(pay)

    # then: exactly one payment took the balance
    assert sorted(results) == ["insufficient_balance", "ok"]
    with use_database(committed_database), committed_database.scope() as session:
        paid = session.scalar(select(func.count()).select_from(Order).where(Order.merchant_id == merchant_id,
                                                                            Order.status == "paid"))
        assert paid == 1
        b = sv.balance_of(session, merchant_id=merchant_id, customer_id=customer_id)
        assert b.total_cents == 0
        assert ledger.verify(session, merchant_id) == []
