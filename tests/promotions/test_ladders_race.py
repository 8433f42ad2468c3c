"""Ladder prices with real threads on a committed database (SQLite and PostgreSQL): payments arriving at
once count every distinct customer exactly, and two settlement runs at once refund each order once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.db import Database, use_database
from siyu.orders.models import Order, RefundRequest
from siyu.promotions.models.ladders import LadderCampaign, LadderEntry
from siyu.promotions.service import ladders
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import pay, place_order
from tests.factories.promotions import make_ladder
from tests.promotions.conftest import run_at_once

BUYERS = 8


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h5_ladder_race") as database:
        yield database


def _at_once(n: int, fn) -> None:  # type: ignore[no-untyped-def]
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            fn(i)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    run_at_once(run, [(i,) for i in range(n)])
    assert errors == []


def test_payments_at_once_count_exactly_and_settlement_twice_at_once_refunds_once(race_db: Database) -> None:
    # given: eight orders placed at 100.00 (tiers 0 → 100.00, 4 → 80.00, 8 → 70.00), unpaid
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_ladder(session, merchant=merchant, tiers=((0, 10000), (4, 8000), (8, 7000)),
                               ends_at=clock.now() + dt.timedelta(hours=1))
        campaign_id, sku_id, ends_at = campaign.id, campaign.sku_id, campaign.ends_at
        order_ids = []
        for _ in range(BUYERS):
            customer = make_customer(session, merchant=merchant)
            order_ids.append(place_order(session, customer=customer, items=[(sku_id, 1)],
                                         promotion={"kind": "ladder", "campaign_id": campaign_id}).id)

    # when: all eight pay at once (each order.paid handler recounts under the campaign's lock)
    def pay_one(i: int) -> None:
        with use_database(race_db), race_db.scope() as session:
            pay(session, session.get(Order, order_ids[i]))

    _at_once(BUYERS, pay_one)
    with race_db.scope() as session:
        assert session.get(LadderCampaign, campaign_id).participants_count == BUYERS
        assert {e.status for e in session.scalars(select(LadderEntry))} == {"paid"}

    # when: two settlement runs at the end, at once
    counts: list[int] = []

    def settle(_i: int) -> None:
        with use_database(race_db), race_db.scope() as session:
            counts.append(ladders.settle_due(session, ends_at + dt.timedelta(seconds=1)))

    _at_once(2, settle)
    # then: every order got 100.00 − 70.00 back exactly once
    assert sum(counts) == BUYERS
    with race_db.scope() as session:
        campaign = session.get(LadderCampaign, campaign_id)
        assert (campaign.status, campaign.final_price_cents) == ("settled", 7000)
        assert [session.get(Order, oid).refunded_cents for oid in order_ids] == [3000] * BUYERS
        assert session.scalar(select(func.count()).select_from(RefundRequest)) == BUYERS
        assert session.scalar(select(func.sum(LadderEntry.refund_cents))) == 3000 * BUYERS


def test_one_customers_simultaneous_orders_keep_the_per_customer_limit(race_db: Database) -> None:
    from tests.factories.customers import make_customer as _make_customer

    # given a ladder allowing 2 units per customer, and one customer
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_ladder(session, merchant=merchant, per_customer_limit=2)
        customer = _make_customer(session, merchant=merchant)
        ids = {"campaign": campaign.id, "sku": campaign.sku_id, "customer": customer.id}
    outcomes: list[str] = []

    # when the customer places four orders of one unit at once
    def buy(_i: int) -> None:
        with use_database(race_db):
            try:
                with race_db.scope() as session:
                    place_order(session, customer=session.get(type(customer), ids["customer"]),
                                items=[(ids["sku"], 1)], promotion={"kind": "ladder", "campaign_id": ids["campaign"]})
                outcomes.append("ok")
            except Exception as exc:  # noqa: BLE001 — the assertion below names it
                outcomes.append(getattr(exc, "code", repr(exc)))

    _at_once(4, buy)
    # then two went through and two were refused; the entries hold exactly the limit
    assert sorted(outcomes) == ["ladder_limit_exceeded", "ladder_limit_exceeded", "ok", "ok"]
    with race_db.scope() as session:
        assert session.scalar(select(func.sum(LadderEntry.quantity))) == 2
        assert session.scalar(select(func.count()).select_from(Order)) == 2
