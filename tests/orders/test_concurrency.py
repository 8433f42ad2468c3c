"""No oversell: 200 buyers race over HTTP for 50 units of one SKU on a real, committed database."""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from siyu.catalog import service as catalog
from siyu.customers.signin import issue_customer_token
from siyu.db import Database, use_database
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerAccount, LedgerEntry
from siyu.orders.models import Order
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import checkout_body, make_sku

BUYERS = int(os.environ.get("SIYU_RACE_BUYERS", "200"))
UNITS = 50


@pytest.fixture(params=BACKENDS)
def committed_database(request: pytest.FixtureRequest) -> Database:
    """A real database whose transactions really commit (for racing threads)."""
    with committed(request.param, "orders_race") as database:
        yield database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(committed_database: Database):
    from siyu.app import create_app

    app = create_app(configure_database=False, database=committed_database)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_two_hundred_buyers_fifty_units(committed_database: Database, live_server: str) -> None:
    # given: one SKU with 50 units and 200 signed-in customers, all committed
    with use_database(committed_database), committed_database.scope() as session:
        merchant = make_merchant(session)
        sku = make_sku(session, merchant=merchant, price_cents=990, stock=UNITS)
        tokens = [issue_customer_token(session, make_customer(session, merchant=merchant))
                  for _ in range(BUYERS)]
        slug, merchant_id, sku_id = merchant.slug, merchant.id, sku.id
    body = checkout_body([(sku_id, 1)])
    start = threading.Barrier(BUYERS)
    results: list[tuple[int, str]] = [(0, "")] * BUYERS

    def buy(i: int) -> None:
        with httpx.Client(base_url=live_server, timeout=120) as client:
            start.wait()
            r = client.post(f"/api/v1/shop/{slug}/orders", json=body,
                            headers={"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": f"race-{i}"})
            code = r.json().get("error", {}).get("code", "") if r.status_code != 201 else ""
            results[i] = (r.status_code, code)

    # when: they all buy at once, each in its own thread
    threads = [threading.Thread(target=buy, args=(i,)) for i in range(BUYERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: exactly 50 orders, the rest out of stock, stock 0, the ledger agrees
    statuses = sorted(set(results))
    assert sum(1 for s, _ in results if s == 201) == UNITS, statuses
    assert sum(1 for s, c in results if (s, c) == (409, "out_of_stock")) == BUYERS - UNITS, statuses
    with use_database(committed_database), committed_database.scope() as session:
        assert catalog.stock_of(session, merchant_id=merchant_id, sku_ids=[sku_id]) == {sku_id: 0}
        assert session.scalar(select(func.count()).select_from(Order).where(Order.merchant_id == merchant_id)) == UNITS
        account_id = session.scalar(select(LedgerAccount.id).where(
            LedgerAccount.merchant_id == merchant_id, LedgerAccount.kind == "stock", LedgerAccount.owner_id == sku_id))
        deltas = list(session.scalars(select(LedgerEntry.delta).where(LedgerEntry.account_id == account_id)))
        assert sum(deltas) == 0
        assert sorted(deltas) == [-1] * UNITS + [UNITS]
        assert ledger.verify(session, merchant_id, kind="stock") == []
