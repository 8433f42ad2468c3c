"""Cut-off racing with late orders, with real threads on a real (committed) database: every order
either makes the wave (paid, counted, in the cut-off snapshot) or is refused and leaves no trace."""

from __future__ import annotations

import datetime as dt
import threading

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

BUYERS = 30


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
    results: dict[int, tuple[str, int | None]] = {}
    started = threading.Barrier(BUYERS + 1)
    half_done = threading.Event()

    def buy(i: int) -> None:
        with use_database(race_db):
            started.wait()
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
            if len(results) >= BUYERS // 2:
                half_done.set()

    def cut() -> None:
        with use_database(race_db):
            started.wait()
            half_done.wait(timeout=60)
            with race_db.scope() as session:
                assert cutoff.close_due(session, cutoff_at + dt.timedelta(seconds=1)) == [ids["wave"]]

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(BUYERS)] + [threading.Thread(target=cut)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    # then: each order either made the wave or was refused as closed
    made = {oid for code, oid in results.values() if code == "ok"}
    refused = [code for code, _ in results.values() if code != "ok"]
    assert len(made) + len(refused) == BUYERS
    assert set(refused) <= {"wave_closed", "not_in_wave"}
    assert made and refused, "the cut-off should land in the middle of the buying"
    with race_db.scope() as session:
        wave_row = session.get(Wave, ids["wave"])
        assert wave_row.status == "closed"
        assert wave_row.orders_count == len(made)
        snapshot = {oid for (oid,) in session.execute(select(ManifestLine.order_id).where(
            ManifestLine.wave_id == ids["wave"]))}
        assert snapshot == made
        units = session.scalar(select(func.sum(ManifestLine.quantity)).where(ManifestLine.wave_id == ids["wave"]))
        item = session.scalars(select(WaveItem).where(WaveItem.wave_id == ids["wave"])).one()
        assert item.sold == units
        assert set(session.scalars(select(WaveOrder.order_id))) == made
        assert set(session.scalars(select(WaveOrder.status))) == {"paid"}
        # refused customers have no order at all
        assert set(session.scalars(select(Order.id).where(Order.merchant_id == ids["merchant"]))) == made
