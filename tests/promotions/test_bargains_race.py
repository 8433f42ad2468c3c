"""Simultaneous assists with real threads on a committed database (SQLite and PostgreSQL): never below
the floor, never two assists by one friend, and the cuts always sum exactly to start − current."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.customers.models import Customer
from siyu.db import Database, use_database
from siyu.promotions.models.bargains import Bargain, BargainAssist
from siyu.promotions.service import bargains
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal
from tests.factories.promotions import make_bargain_campaign
from tests.promotions.conftest import run_at_once

SEED = 11
FRIENDS = 14
EXPECTED = 10


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h5_bargain_race") as database:
        yield database


def _race(database: Database, jobs: list[tuple[int, int]]) -> list[str]:
    """Run assist(customer_id, bargain_id) jobs at once; their outcomes ("ok" or the error code)."""
    results: list[str] = [""] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        customer_id, bargain_id = jobs[i]
        with use_database(database):
            start.wait()
            try:
                with database.scope() as session:
                    customer = session.get(Customer, customer_id)
                    bargains.assist(session, actor=customer_principal(customer), bargain_id=bargain_id,
                                    device_id=f"dev-{customer_id}")
                results[i] = "ok"
            except AppError as exc:
                results[i] = exc.code

    run_at_once(run, [(i,) for i in range(len(jobs))])
    return results


def test_simultaneous_assists_stop_exactly_at_the_floor(race_db: Database) -> None:
    # given: 100.00 → 10.00 in 10 assists, and 14 friends pressing "help" at once
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_bargain_campaign(session, merchant=merchant, start_price_cents=10000, floor_price_cents=1000,
                                         expected_assists=EXPECTED)
        starter = make_customer(session, merchant=merchant)
        bargain_id = bargains.start_bargain(session, actor=customer_principal(starter), campaign_id=campaign.id,
                                            seed=SEED).id
        friend_ids = [make_customer(session, merchant=merchant).id for _ in range(FRIENDS)]
    # when
    results = _race(race_db, [(f, bargain_id) for f in friend_ids])
    # then: ten made it, the rest found the floor reached
    assert results.count("ok") == EXPECTED
    assert sorted(set(results) - {"ok"}) == ["bargain_at_floor"]
    with race_db.scope() as session:
        bargain = session.get(Bargain, bargain_id)
        rows = list(session.scalars(select(BargainAssist).where(BargainAssist.bargain_id == bargain_id)
                                    .order_by(BargainAssist.seq)))
        assert (bargain.current_price_cents, bargain.assists_count) == (1000, EXPECTED)
        assert sum(r.cut_cents for r in rows) == 10000 - 1000
        assert [r.seq for r in rows] == list(range(1, EXPECTED + 1))
        assert len({r.helper_customer_id for r in rows}) == EXPECTED
        # each cut is exactly what a one-by-one replay of the same seed gives
        price, replay = 10000, []
        for seq in range(1, EXPECTED + 1):
            cut = bargains.compute_cut(remaining_cents=price - 1000, assists_left=EXPECTED - seq + 1,
                                       factor_bps=bargains.factor_for(SEED, seq))
            price -= cut
            replay.append(cut)
        assert [r.cut_cents for r in rows] == replay
        assert [r.price_after_cents for r in rows][-1] == 1000


def test_one_friend_pressing_twice_at_once_assists_once(race_db: Database) -> None:
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_bargain_campaign(session, merchant=merchant, start_price_cents=10000, floor_price_cents=1000,
                                         expected_assists=5)
        starter = make_customer(session, merchant=merchant)
        bargain_id = bargains.start_bargain(session, actor=customer_principal(starter), campaign_id=campaign.id,
                                            seed=SEED).id
        friend_id = make_customer(session, merchant=merchant).id
        other_id = make_customer(session, merchant=merchant).id
    # when: the same friend four times and another friend once, all at once
    results = _race(race_db, [(friend_id, bargain_id)] * 4 + [(other_id, bargain_id)])
    # then
    assert results.count("ok") == 2
    assert sorted(r for r in results if r != "ok") == ["already_assisted"] * 3
    with race_db.scope() as session:
        bargain = session.get(Bargain, bargain_id)
        cuts = session.scalar(select(func.sum(BargainAssist.cut_cents)).where(BargainAssist.bargain_id == bargain_id))
        helpers = list(session.scalars(select(BargainAssist.helper_customer_id)
                                       .where(BargainAssist.bargain_id == bargain_id)))
        assert sorted(helpers) == sorted([friend_id, other_id])
        assert bargain.assists_count == 2
        assert cuts == 10000 - bargain.current_price_cents
        assert bargain.current_price_cents >= 1000
