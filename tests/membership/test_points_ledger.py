"""The points ledger under random sequences of earn / spend / return / expire with clock jumps,
checked against a simple model: balances never negative, the ledger sums equal the balance, the
balance equals the open lots, and expired points are never spent."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.ledger import service as ledger
from siyu.membership.models.points import PointsLot, PointsLotUse
from siyu.membership.service import points
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant

START = dt.datetime(2025, 6, 1, 4, 0, tzinfo=dt.UTC)

ops = st.lists(st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 500)),
    st.tuples(st.just("spend"), st.integers(1, 800)),
    st.tuples(st.just("give_back"), st.integers(0, 20), st.integers(1, 800)),
    st.tuples(st.just("expire"), st.just(0)),
    st.tuples(st.just("jump"), st.integers(1, 400)),
), min_size=1, max_size=25)


@dataclasses.dataclass
class Lot:
    id: int
    remaining: int
    expires_at: dt.datetime | None
    expired: bool = False


class Model:
    """What the points should be, computed without the database."""

    def __init__(self) -> None:
        self.lots: list[Lot] = []
        self.spends: dict[str, list[list[int]]] = {}  # key -> [[lot index, amount, returned]]

    def expire(self, now: dt.datetime) -> None:
        for lot in self.lots:
            if not lot.expired and lot.remaining and lot.expires_at is not None and lot.expires_at <= now:
                lot.remaining, lot.expired = 0, True

    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots if not lot.expired)

    def spend(self, key: str, n: int, now: dt.datetime) -> bool:
        self.expire(now)
        if n > self.balance():
            return False
        order = sorted((i for i, lot in enumerate(self.lots) if not lot.expired and lot.remaining),
                       key=lambda i: (self.lots[i].expires_at is None, self.lots[i].expires_at, self.lots[i].id))
        uses = []
        for i in order:
            take = min(n, self.lots[i].remaining)
            if take:
                self.lots[i].remaining -= take
                n -= take
                uses.append([i, take, 0])
        self.spends[key] = uses
        return True

    def give_back(self, key: str, n: int, now: dt.datetime) -> int:
        uses = self.spends[key]
        left = min(n, sum(u[1] - u[2] for u in uses))
        given = left
        for use in reversed(uses):
            k = min(left, use[1] - use[2])
            if k <= 0:
                continue
            use[2] += k
            lot = self.lots[use[0]]
            lot.remaining += k
            lot.expired = False
            left -= k
        self.expire(now)
        return given


@pytest.fixture
def fresh(db: Session):
    def make():
        merchant = make_merchant(db)
        return merchant, make_customer(db, merchant=merchant)
    return make


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_points_ledger_properties(db: Session, fresh, ops) -> None:
    merchant, customer = fresh()
    m, c = merchant.id, customer.id
    model = Model()
    now = START
    spend_keys: list[str] = []
    for step, op in enumerate(ops):
        with clock.frozen(now):
            kind = op[0]
            if kind == "earn":
                lot = points.earn(db, merchant_id=m, customer_id=c, points=op[1], reason="test", key=f"e{step}")
                model.lots.append(Lot(id=lot.id, remaining=op[1], expires_at=lot.expires_at))
                model.expire(now)
            elif kind == "spend":
                expected_ok = model.spend(f"s{step}", op[1], now)
                try:
                    points.spend(db, merchant_id=m, customer_id=c, points=op[1], reason="test", key=f"s{step}")
                    ok = True
                except points.InsufficientPoints:
                    ok = False
                assert ok == expected_ok, (step, op)
                if ok:
                    spend_keys.append(f"s{step}")
            elif kind == "give_back":
                if spend_keys:
                    key = spend_keys[op[1] % len(spend_keys)]
                    expected = model.give_back(key, op[2], now)
                    given = points.give_back(db, merchant_id=m, customer_id=c, spend_key=key, points=op[2],
                                             key=f"g{step}")
                    assert given == expected
            elif kind == "expire":
                points.expire_tick(db, now)
                model.expire(now)
            else:
                now = now + dt.timedelta(days=op[1])
                continue
            # then: every invariant holds after every step
            balance, lots = points.check_lots(db, merchant_id=m, customer_id=c)
            assert balance >= 0
            assert balance == lots
            if kind == "expire":
                assert balance == model.balance()
            assert points.available(db, merchant_id=m, customer_id=c, now=now) == \
                sum(x.remaining for x in model.lots if not x.expired and (x.expires_at is None or x.expires_at > now))
            assert ledger.verify(db, m, kind="points") == []
    # and: no point was ever taken from a lot at or after its expiry
    lots = {lot.id: lot for lot in db.scalars(select(PointsLot).where(PointsLot.merchant_id == m))}
    for use in db.scalars(select(PointsLotUse).where(PointsLotUse.merchant_id == m)):
        expires = lots[use.lot_id].expires_at
        assert expires is None or use.created_at < expires


def test_expiry_is_end_of_next_year_in_shanghai() -> None:
    # earned 2025-12-31 20:00 Shanghai (12:00 UTC) expires at 2027-01-01 00:00 Shanghai
    earned = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.UTC)
    assert points.expires_at_for(earned, 1) == dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)
    # 2025-12-31 17:00 UTC is already 2026-01-01 in Shanghai: one more year
    assert points.expires_at_for(dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC), 1) == \
        dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.UTC)
    assert points.expires_at_for(earned, 0) is None


def test_spending_takes_the_soonest_expiring_first_and_never_expired_points(db: Session, fresh) -> None:
    # given: 100 points earned in 2025 and 50 in 2026
    merchant, customer = fresh()
    m, c = merchant.id, customer.id
    with clock.frozen(dt.datetime(2025, 3, 1, tzinfo=dt.UTC)):
        old = points.earn(db, merchant_id=m, customer_id=c, points=100, reason="test", key="old")
    with clock.frozen(dt.datetime(2026, 3, 1, tzinfo=dt.UTC)):
        new = points.earn(db, merchant_id=m, customer_id=c, points=50, reason="test", key="new")
        # when: 120 are spent
        points.spend(db, merchant_id=m, customer_id=c, points=120, reason="test", key="s1")
    # then: the 2025 lot went first
    assert (old.remaining, new.remaining) == (0, 30)
    # and: in 2027 the 2025 lot is gone; the 2026 lot still there, so only 30 can be spent
    with clock.frozen(dt.datetime(2027, 2, 1, tzinfo=dt.UTC)):
        points.give_back(db, merchant_id=m, customer_id=c, spend_key="s1", points=120, key="g1")
        assert points.available(db, merchant_id=m, customer_id=c) == 50
        with pytest.raises(points.InsufficientPoints):
            points.spend(db, merchant_id=m, customer_id=c, points=51, reason="test", key="s2")
        assert points.balance(db, merchant_id=m, customer_id=c) == 50
    assert ledger.verify(db, m) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spent=st.integers(1, 5000), total=st.integers(1, 100_000), paid_share=st.integers(0, 100),
       cuts=st.lists(st.integers(1, 100), min_size=1, max_size=6))
def test_refunds_return_exactly_what_was_spent(db: Session, fresh, spent, total, paid_share, cuts) -> None:
    """Refunds in random parts: the points given back follow the refunded share of the order, never
    exceed what was spent, and add up to all of it once the order is wholly refunded."""
    from siyu.membership.models.points import OrderPoints
    from tests.factories.membership import make_member

    merchant, _customer = fresh()
    member = make_member(db, merchant=merchant, points=spent)
    m, c = merchant.id, member.customer_id
    order_id = 10_000 + member.id
    points.spend_for_order(db, merchant_id=m, customer_id=c, order_id=order_id, order_no="X", points=spent, cents=1)
    paid = total * paid_share // 100
    # the refunds: cumulative cut points of the order total, the last one the whole order
    marks = sorted({max(1, total * cut // 100) for cut in cuts} | {total})
    refunded = money = 0
    for i, mark in enumerate(marks):
        amount = mark - refunded
        money_after = paid if mark >= total else mark * paid // total
        refunded = mark
        points.on_order_refunded(db, merchant_id=m, order_id=order_id, customer_id=c, refund_id=i + 1,
                                 money_cents=money_after - money, order_refunded_cents=refunded,
                                 order_total_cents=total, fully=mark >= total)
        money = money_after
        row = db.scalars(select(OrderPoints).where(OrderPoints.order_id == order_id)).one()
        assert row.returned_points == (spent if mark >= total else spent * mark // total)
        assert points.balance(db, merchant_id=m, customer_id=c) == row.returned_points
        assert amount > 0
    assert points.balance(db, merchant_id=m, customer_id=c) == spent
    assert ledger.verify(db, m, kind="points") == []
