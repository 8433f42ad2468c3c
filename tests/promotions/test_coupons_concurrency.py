"""Coupons under real concurrency (threads on a committed database, SQLite and PostgreSQL): a coupon's
stock is never exceeded, the per-customer limit holds, and one coupon never pays two orders."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.db import Database, use_database
from siyu.orders.models import Order
from siyu.promotions.models.coupons import Coupon, CouponClaimCount, CouponTemplate
from siyu.promotions.service import coupons as coupon_service
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import make_sku, place_order
from tests.factories.promotions import give_coupon, make_coupon_template

WAIT_S = 60


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h1_coupons") as database:
        yield database


def race(database: Database, n: int, fn: Callable[[Any, int], Any]) -> list[str]:
    """Run `fn(session, i)` in n threads started together, each in its own unit of work; the outcome
    of each: "ok" or the error code."""
    start = threading.Barrier(n, timeout=WAIT_S)
    outcomes: list[str] = ["missing"] * n

    def run(i: int) -> None:
        with use_database(database):
            try:
                start.wait()
                with database.scope() as session:
                    fn(session, i)
                outcomes[i] = "ok"
            except AppError as exc:
                outcomes[i] = exc.code
            except Exception as exc:  # noqa: BLE001 (reported as the outcome: the test shows it)
                outcomes[i] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    return outcomes


def test_twelve_customers_claiming_a_stock_of_five_get_exactly_five(race_db: Database) -> None:
    # given: a coupon with a stock of 5 and 12 customers
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        template = make_coupon_template(session, merchant=merchant, total_stock=5)
        ids = {"merchant": merchant.id, "template": template.id,
               "customers": [make_customer(session, merchant=merchant).id for _ in range(12)]}

    # when: they all claim at once
    def claim(session: Any, i: int) -> None:
        coupon_service.issue_coupon(session, merchant_id=ids["merchant"], template_id=ids["template"],
                                    customer_id=ids["customers"][i], channel="centre")

    outcomes = race(race_db, 12, claim)
    # then: exactly five coupons, seven refusals, and the counter says five
    assert Counter(outcomes) == {"ok": 5, "coupon_sold_out": 7}
    with race_db.scope() as session:
        assert session.get(CouponTemplate, ids["template"]).claimed == 5
        assert session.scalar(select(func.count()).select_from(Coupon)) == 5


def test_one_customer_in_ten_threads_with_a_limit_of_three_gets_three(race_db: Database) -> None:
    # given: an unlimited coupon, three per customer
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        template = make_coupon_template(session, merchant=merchant, per_customer_limit=3)
        customer = make_customer(session, merchant=merchant)
        ids = {"merchant": merchant.id, "template": template.id, "customer": customer.id}

    # when: the same customer claims ten times at once
    def claim(session: Any, i: int) -> None:
        coupon_service.issue_coupon(session, merchant_id=ids["merchant"], template_id=ids["template"],
                                    customer_id=ids["customer"], channel="centre")

    outcomes = race(race_db, 10, claim)
    # then
    assert Counter(outcomes) == {"ok": 3, "coupon_limit_reached": 7}
    with race_db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Coupon)) == 3
        assert session.get(CouponTemplate, ids["template"]).claimed == 3
        assert session.scalars(select(CouponClaimCount.claimed)).all() == [3]


def test_two_orders_racing_with_the_same_coupon_one_wins(race_db: Database) -> None:
    # given: a customer with one ¥5 coupon
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        sku = make_sku(session, merchant=merchant, price_cents=3000, stock=100)
        customer = make_customer(session, merchant=merchant)
        coupon = give_coupon(session, template=make_coupon_template(session, merchant=merchant, amount_cents=500),
                             customer=customer)
        ids = {"sku": sku.id, "customer": customer.id, "coupon": coupon.id}

    # when: two orders using it are placed at once
    def buy(session: Any, i: int) -> None:
        from siyu.customers.models import Customer

        place_order(session, customer=session.get(Customer, ids["customer"]), items=[(ids["sku"], 1)],
                    coupon_ids=[ids["coupon"]])

    outcomes = race(race_db, 2, buy)
    # then: one order at ¥25, one refusal, the coupon used by the order that was placed
    assert sorted(outcomes) == ["coupon_unavailable", "ok"]
    with race_db.scope() as session:
        orders = session.scalars(select(Order)).all()
        assert [(o.total_cents, o.adjustments_cents) for o in orders] == [(2500, -500)]
        used = session.get(Coupon, ids["coupon"])
        assert (used.status, used.order_id, used.discount_cents, used.order_total_cents) == (
            "used", orders[0].id, 500, 2500)
