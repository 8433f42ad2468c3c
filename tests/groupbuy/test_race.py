"""Cut-off racing with late orders, with real threads on a real (committed) database: every order
either makes the wave (paid, counted, in the cut-off snapshot) or is refused and leaves no trace.

Three groups of buyers, so the outcome does not depend on timing: the early ones have all committed
before the cut-off job starts (they must make the wave), the racing ones start together with the
cut-off job (either outcome, but nothing half-done), and the late ones start only once the cut-off's
transaction has committed (they must all be refused). Every wait has a timeout: a stuck thread fails
the test with a message instead of hanging it."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.errors import AppError
from siyu.db import Database, use_database
from siyu.groupbuy.models import ManifestLine, Wave, WaveItem, WaveOrder
from siyu.groupbuy.service import cutoff
from siyu.orders.models import Order
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.groupbuy import leader_fulfilment, make_leader, make_wave
from tests.factories.merchants import make_merchant
from tests.factories.orders import make_sku, pay, place_order

EARLY, RACING, LATE = 10, 10, 10
BUYERS = EARLY + RACING + LATE
WAIT_S = 60  # the longest any thread waits for another before the test gives up and fails
REFUSED = {"wave_closed", "not_in_wave"}


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "groupbuy_race") as database:
        yield database


def test_cutoff_race_all_or_nothing(race_db: Database) -> None:
    # given: an open wave and thirty customers, committed
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        sku = make_sku(session, merchant=merchant, price_cents=1000, stock=10_000)
        leader = make_leader(session, merchant=merchant)
        wave = make_wave(session, merchant=merchant, items=[(sku, 800, 10_000)],
                         cutoff_at=clock.now() + dt.timedelta(hours=1))
        customer_ids = [make_customer(session, merchant=merchant).id for _ in range(BUYERS)]
        ids = {"merchant": merchant.id, "sku": sku.id, "leader": leader.id, "wave": wave.id}
        cutoff_at = wave.cutoff_at
    early, racing, late = range(EARLY), range(EARLY, EARLY + RACING), range(EARLY + RACING, BUYERS)
    results: dict[int, tuple[str, int | None]] = {}
    problems: list[str] = []  # what went wrong in a thread (a timeout, an unexpected exception)
    race_start = threading.Barrier(RACING + 1, timeout=WAIT_S)  # the racing buyers and the cut-off job
    cut_over = threading.Event()  # the cut-off job has finished: committed, or failed
    cut_committed = threading.Event()

    def buy(i: int) -> None:
        try:
            with race_db.scope() as session:
                from siyu.customers.models import Customer
                from siyu.groupbuy.models import Leader

                customer = session.get(Customer, customer_ids[i])
                leader = session.get(Leader, ids["leader"])
                order = place_order(session, customer=customer, items=[(ids["sku"], 1 + i % 3)],
                                    fulfilment=leader_fulfilment(leader))
                pay(session, order)
                order_id = order.id
            results[i] = ("ok", order_id)
        except AppError as exc:
            results[i] = (exc.code, None)

    def buyer(i: int) -> None:
        with use_database(race_db):
            try:
                if i in racing:
                    race_start.wait()
                elif i in late:
                    if not cut_over.wait(3 * WAIT_S):  # the cut-off itself waits up to twice WAIT_S
                        problems.append(f"late buyer {i}: the cut-off job did not finish in time")
                        return
                    if not cut_committed.is_set():
                        return  # the cut-off failed (reported by its thread): nothing to be late for
                buy(i)
            except BaseException as exc:
                problems.append(f"buyer {i}: {exc!r}")
                race_start.abort()  # no one waits for a buyer that will not come

    def cut(early_threads: list[threading.Thread]) -> None:
        with use_database(race_db):
            try:
                deadline = time.monotonic() + WAIT_S
                for t in early_threads:
                    t.join(max(0.0, deadline - time.monotonic()))
                if any(t.is_alive() for t in early_threads):
                    problems.append(f"cut-off: the early buyers did not finish within {WAIT_S} s")
                    race_start.abort()
                    return
                race_start.wait()
                with race_db.scope() as session:
                    closed = cutoff.close_due(session, cutoff_at + dt.timedelta(seconds=1))
                if closed != [ids["wave"]]:
                    problems.append(f"cut-off closed {closed}, not [{ids['wave']}]")
                    return
                cut_committed.set()
            except BaseException as exc:
                problems.append(f"cut-off: {exc!r}")
                race_start.abort()
            finally:
                cut_over.set()

    buyers = [threading.Thread(target=buyer, args=(i,), name=f"buyer-{i}", daemon=True) for i in range(BUYERS)]
    cutter = threading.Thread(target=cut, args=([buyers[i] for i in early],), name="cut-off", daemon=True)
    for t in [*buyers, cutter]:
        t.start()
    deadline = time.monotonic() + 4 * WAIT_S
    for t in [*buyers, cutter]:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in [*buyers, cutter] if t.is_alive()]
    assert not stuck, f"threads still running after {4 * WAIT_S} s: {stuck} ({problems})"
    assert not problems, problems
    assert cut_committed.is_set()

    # then: every early buyer made the wave, every late one was refused as closed, and each racing
    # order either made it or was refused
    assert sorted(results) == list(range(BUYERS))
    assert {i: results[i][0] for i in early} == {i: "ok" for i in early}
    assert {results[i][0] for i in late} <= REFUSED, {i: results[i] for i in late}
    assert {results[i][0] for i in racing} <= {"ok"} | REFUSED
    made = {oid for code, oid in results.values() if code == "ok"}
    assert len(made) == sum(1 for code, _ in results.values() if code == "ok")
    assert EARLY <= len(made) <= EARLY + RACING
    with race_db.scope() as session:
        wave_row = session.get(Wave, ids["wave"])
        assert wave_row.status == "closed"
        assert wave_row.orders_count == len(made)
        snapshot = {oid for (oid,) in session.execute(select(ManifestLine.order_id).where(
            ManifestLine.wave_id == ids["wave"]))}
        assert snapshot == made
        units = session.scalar(select(func.sum(ManifestLine.quantity)).where(ManifestLine.wave_id == ids["wave"]))
        assert units == sum(1 + i % 3 for i, (code, _) in results.items() if code == "ok")
        item = session.scalars(select(WaveItem).where(WaveItem.wave_id == ids["wave"])).one()
        assert item.sold == units
        assert set(session.scalars(select(WaveOrder.order_id))) == made
        assert set(session.scalars(select(WaveOrder.status))) == {"paid"}
        # refused customers have no order at all
        assert set(session.scalars(select(Order.id).where(Order.merchant_id == ids["merchant"]))) == made
