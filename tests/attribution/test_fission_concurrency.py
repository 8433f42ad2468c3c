"""Racing shared touches of one customer, each in its own committed transaction: exactly one fission edge,
and it is the earliest touch's, whatever order the transactions commit in."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from siyu.attribution.models.shares import FissionEdge
from siyu.attribution.service import shares
from siyu.db import Database, use_database
from tests.conftest import BACKENDS, committed
from tests.factories.attribution import make_share
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant

T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
SHARERS = 12


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "fission_race") as database:
        yield database


def test_racing_first_touches_leave_one_edge_the_earliest(committed_database: Database) -> None:
    # given: a customer and twelve sharers' shares, committed
    with use_database(committed_database), committed_database.scope() as session:
        merchant = make_merchant(session)
        customer_id = make_customer(session, merchant=merchant).id
        codes = [make_share(session, merchant=merchant, customer=make_customer(session, merchant=merchant)).code
                 for _ in range(SHARERS)]
        sharer_of = {s.code: s.sharer_customer_id for s in session.scalars(
            select(shares.Share).where(shares.Share.code.in_(codes)))}
        merchant_id = merchant.id
    # when: every share's touch is recorded at once, the latest touch first in line
    barrier = threading.Barrier(SHARERS)
    errors: list[BaseException] = []

    def touch(i: int, code: str) -> None:
        try:
            barrier.wait(timeout=10)
            with use_database(committed_database), committed_database.scope() as session:
                shares.record_touch(session, merchant_id=merchant_id, channel="chat", customer_id=customer_id,
                                    share_code=code, at=T0 + dt.timedelta(minutes=SHARERS - i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=touch, args=(i, code)) for i, code in enumerate(codes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # then
    assert errors == []
    with committed_database.scope() as session:
        edges = list(session.scalars(select(FissionEdge).where(FissionEdge.merchant_id == merchant_id)))
    assert len(edges) == 1
    earliest = codes[-1]  # i = SHARERS - 1 has the earliest time
    assert (edges[0].by_customer_id, edges[0].at) == (sharer_of[earliest], T0 + dt.timedelta(minutes=1))
