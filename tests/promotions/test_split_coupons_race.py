"""The last seat of a split pool under real concurrency: exactly N members, never N+1, and exactly N coupons."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from siyu.core.errors import AppError
from siyu.db import Database, use_database
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.split_coupons import SplitMember, SplitPool
from siyu.promotions.service import split_coupons as service
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal
from tests.factories.promotions import make_split_campaign

JOINERS = 12
TEAM = 4


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h2_split_race") as database:
        yield database


def test_last_seat_race_gives_exactly_team_size_members(race_db: Database) -> None:
    # given: an open pool of 4 (the opener in it) and twelve friends, committed
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        campaign = make_split_campaign(session, merchant=merchant, team_size=TEAM, pool_amount_cents=1001)
        opener = make_customer(session, merchant=merchant)
        pool_id = service.open_pool(session, actor=customer_principal(opener), campaign_id=campaign.id).id
        friends = [customer_principal(make_customer(session, merchant=merchant)) for _ in range(JOINERS)]
    results: dict[int, str] = {}
    start = threading.Barrier(JOINERS)

    def join(i: int) -> None:
        with use_database(race_db):
            start.wait()
            try:
                with race_db.scope() as session:
                    service.join_pool(session, actor=friends[i], pool_id=pool_id)
                results[i] = "ok"
            except AppError as exc:
                results[i] = exc.code
            except Exception as exc:  # a database lock timeout would show here, never silently
                results[i] = f"error:{exc!r}"

    # when: they all join at once
    threads = [threading.Thread(target=join, args=(i,)) for i in range(JOINERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    # then: three seats were taken, the rest were told the pool is full; the parts sum to the pool
    assert sorted(results.values()).count("ok") == TEAM - 1
    assert {v for v in results.values() if v != "ok"} == {"split_pool_full"}
    with use_database(race_db), race_db.scope() as session:
        pool = session.get(SplitPool, pool_id)
        assert (pool.status, pool.members_count) == ("filled", TEAM)
        seats = session.scalars(select(SplitMember.seat).where(SplitMember.pool_id == pool_id)
                                .order_by(SplitMember.seat)).all()
        assert seats == [1, 2, 3, 4]
        coupons = session.scalars(select(Coupon.amount_cents).where(Coupon.source_ref.like(f"split_pool:{pool_id}:%")))
        assert sorted(coupons) == [250, 250, 250, 251]
        assert session.scalar(select(func.count()).select_from(Coupon)) == TEAM
