"""Two checkouts racing to spend the same points, with real threads on a real, committed database
(SQLite and PostgreSQL): exactly one order gets them, the other is refused and keeps nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.db import Database, set_database
from siyu.ledger import service as ledger
from siyu.membership.service import points
from siyu.orders import service as orders
from siyu.orders.models import Order
from siyu.orders.schemas import CheckoutRequest
from tests.conftest import BACKENDS, committed
from tests.factories.membership import make_member
from tests.factories.merchants import make_merchant
from tests.factories.orders import checkout_body, customer_principal, make_sku


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest):
    with committed(request.param, "points_race") as database:
        set_database(database)
        try:
            yield database
        finally:
            set_database(None)


def test_two_checkouts_spend_the_same_points_one_wins(committed_database: Database) -> None:
    # given: a member with 1,000 points (¥10) and two ¥20 items, committed
    database = committed_database
    with database.scope() as s:
        merchant = make_merchant(s)
        member = make_member(s, merchant=merchant, points=1000)
        skus = [make_sku(s, merchant=merchant, price_cents=2000, stock=5).id for _ in range(2)]
        merchant_id, customer_id = merchant.id, member.customer_id
        from siyu.customers.models import Customer

        actor = customer_principal(s.get(Customer, customer_id))
    barrier = threading.Barrier(2)
    results: list[str] = ["", ""]

    # when: two checkouts, each paying with all 1,000 points, start at the same moment
    def buy(i: int) -> None:
        request = CheckoutRequest.model_validate(checkout_body([(skus[i], 1)], points=1000))
        barrier.wait()
        try:
            with database.scope() as s:
                orders.create_order(s, actor=actor, request=request)
            results[i] = "ok"
        except AppError as exc:
            results[i] = exc.code
        except Exception as exc:  # pragma: no cover - shows up in the assertion below
            results[i] = repr(exc)

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # then: one order took the points, the other was refused and left nothing behind
    assert sorted(results) == ["insufficient_points", "ok"]
    with database.scope() as s:
        assert points.balance(s, merchant_id=merchant_id, customer_id=customer_id) == 0
        placed = list(s.scalars(select(Order).where(Order.merchant_id == merchant_id)))
        assert len(placed) == 1
        assert placed[0].payment_parts[0]["kind"] == "points" and placed[0].payable_cents == 1000
        assert ledger.verify(s, merchant_id) == []
        balance, lots = points.check_lots(s, merchant_id=merchant_id, customer_id=customer_id)
        assert balance == lots == 0
        assert s.scalar(select(func.count()).select_from(Order).where(Order.merchant_id == merchant_id)) == 1


def test_a_spend_racing_the_expiry_tick_never_spends_expired_points(committed_database: Database) -> None:
    import datetime as dt

    from siyu.core import clock

    # given: 500 points earned in 2025 (they expire at the end of 2026) and 100 earned in 2027, committed
    database = committed_database
    with database.scope() as s:
        merchant = make_merchant(s)
        with clock.frozen(dt.datetime(2025, 5, 1, tzinfo=dt.UTC)):
            member = make_member(s, merchant=merchant, points=500)
        with clock.frozen(dt.datetime(2027, 1, 5, tzinfo=dt.UTC)):
            points.earn(s, merchant_id=merchant.id, customer_id=member.customer_id, points=100, reason="test",
                        key="fresh")
        merchant_id, customer_id = merchant.id, member.customer_id
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    # when: in 2027 a spend of 300 and the expiry tick start at the same moment
    def spend() -> None:
        barrier.wait()
        try:
            with database.scope() as s:
                points.spend(s, merchant_id=merchant_id, customer_id=customer_id, points=300, reason="test",
                             key="late-spend")
            results["spend"] = "ok"
        except AppError as exc:
            results["spend"] = exc.code

    def tick() -> None:
        barrier.wait()
        with database.scope() as s:
            results["tick"] = points.expire_tick(s, clock.now())

    with clock.frozen(dt.datetime(2027, 1, 10, tzinfo=dt.UTC)):
        threads = [threading.Thread(target=spend), threading.Thread(target=tick)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

    # then: the spend is refused whichever runs first; 100 points are left; the ledger and lots agree
    assert results["spend"] == "insufficient_points"
    with database.scope() as s:
        assert points.balance(s, merchant_id=merchant_id, customer_id=customer_id) == 100
        assert points.check_lots(s, merchant_id=merchant_id, customer_id=customer_id) == (100, 100)
        assert ledger.verify(s, merchant_id) == []
