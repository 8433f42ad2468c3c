"""Concurrent first touches for one customer, from different guides and referrers, on a real committed
database with real threads: exactly one binding per kind, one "bind" history line each, and the
customer's owner is the guide who won."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.attribution.models.ownership import BindingHistory, CustomerBinding
from siyu.attribution.service import ownership
from siyu.core import clock
from siyu.core.auth import Role
from siyu.customers.models import Customer
from siyu.db import Database, use_database
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store

RACERS = 12


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "ownership_race") as database:
        yield database


def test_concurrent_first_touches_bind_once(committed_database: Database) -> None:
    # given: one new customer, RACERS guides and RACERS sharing customers, all committed
    with use_database(committed_database), committed_database.scope() as session:
        merchant = make_merchant(session)
        store = make_store(session, merchant=merchant)
        guides = [make_staff(session, merchant=merchant, role=Role.GUIDE, store=store).id for _ in range(RACERS)]
        sharers = [make_customer(session, merchant=merchant).id for _ in range(RACERS)]
        customer_id = make_customer(session, merchant=merchant).id
        merchant_id = merchant.id
    start = threading.Barrier(RACERS)
    errors: list[BaseException] = []

    def first_touch(i: int) -> None:
        try:
            with use_database(committed_database):
                start.wait()
                with committed_database.scope() as session:
                    ownership.apply_touch(session, merchant_id=merchant_id, customer_id=customer_id, touch_id=None,
                                          channel="chat", sharer_staff_id=guides[i], sharer_customer_id=sharers[i],
                                          at=clock.now())
        except BaseException as exc:  # reported below
            errors.append(exc)

    # when: they all touch the customer at once
    threads = [threading.Thread(target=first_touch, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # then: no error, one binding per kind, one bind line per kind, owner = the winning guide
    assert errors == []
    with committed_database.scope() as session:
        bindings = {b.kind: b for b in session.scalars(select(CustomerBinding).where(
            CustomerBinding.customer_id == customer_id))}
        assert set(bindings) == {"guide", "referrer"}
        assert bindings["guide"].guide_id in guides
        assert bindings["referrer"].referrer_customer_id in sharers
        lines = session.execute(select(BindingHistory.kind, BindingHistory.action, func.count()).where(
            BindingHistory.customer_id == customer_id).group_by(BindingHistory.kind, BindingHistory.action)).all()
        assert sorted(lines) == [("guide", "bind", 1), ("referrer", "bind", 1)]
        customer = session.get(Customer, customer_id)
        assert (customer.owner_id, customer.store_id) == (bindings["guide"].guide_id, store.id)
