"""A flash sale under a burst of buyers, over HTTP with real threads on a real (committed) database:
never more sold than allocated, the per-customer limit holds when one customer fires several requests
at once, and the SKU's own stock (larger than the allocation) is reserved exactly for the flash orders."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from siyu.catalog import service as catalog
from siyu.customers.signin import issue_customer_token
from siyu.db import Database, use_database
from siyu.orders.models import Order
from siyu.promotions.models.flash_sales import FlashSaleBuyer, FlashSaleItem, FlashSaleOrder
from tests.conftest import BACKENDS, committed
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import checkout_body, make_sku
from tests.factories.promotions import flash_promotion, make_flash_sale

CUSTOMERS = 12
REQUESTS_EACH = 3  # each customer fires 3 requests at once: 36 requests
ALLOCATION = 10
LIMIT = 2
STOCK = 25


@pytest.fixture(params=BACKENDS)
def race_db(request: pytest.FixtureRequest) -> Database:
    with committed(request.param, "h3_flash_race") as database:
        yield database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(race_db: Database):
    from siyu.app import create_app

    app = create_app(configure_database=False, database=race_db)
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


def test_a_burst_never_oversells_and_the_limit_holds(race_db: Database, live_server: str) -> None:
    # given a SKU with 25 in stock on flash sale with 10 units, at most 2 per customer, and 12 customers
    with use_database(race_db), race_db.scope() as session:
        merchant = make_merchant(session)
        sku = make_sku(session, merchant=merchant, price_cents=1990, stock=STOCK)
        sale = make_flash_sale(session, merchant=merchant, items=[(sku, 990, ALLOCATION, LIMIT)])
        customers = [make_customer(session, merchant=merchant) for _ in range(CUSTOMERS)]
        tokens = [issue_customer_token(session, c) for c in customers]
        ids = {"slug": merchant.slug, "merchant": merchant.id, "sku": sku.id, "sale": sale.id}
        body = checkout_body([(sku.id, 1)], promotion=flash_promotion(sale))
        customer_ids = [c.id for c in customers]
    jobs = [(c, n) for c in range(CUSTOMERS) for n in range(REQUESTS_EACH)]
    start = threading.Barrier(len(jobs))
    results: dict[tuple[int, int], tuple[int, str]] = {}

    def buy(c: int, n: int) -> None:
        with httpx.Client(base_url=live_server, timeout=120) as client:
            start.wait()
            r = client.post(f"/api/v1/shop/{ids['slug']}/orders", json=body,
                            headers={"Authorization": f"Bearer {tokens[c]}", "Idempotency-Key": f"flash-{c}-{n}"})
            results[(c, n)] = (r.status_code, r.json().get("error", {}).get("code", "") if r.status_code != 201 else "")

    # when all 36 requests go at once
    threads = [threading.Thread(target=buy, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then exactly the allocation was sold, never more than 2 to anyone, the rest refused with stable codes
    answers = Counter(results.values())
    assert answers[(201, "")] == ALLOCATION, answers
    assert set(answers) <= {(201, ""), (409, "flash_sold_out"), (409, "flash_limit_reached")}, answers
    per_customer = Counter(c for (c, _n), (status, _) in results.items() if status == 201)
    assert max(per_customer.values()) <= LIMIT, per_customer
    with use_database(race_db), race_db.scope() as session:
        item = session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == ids["sale"])).one()
        assert (item.sold, item.allocation, item.sold_out_at is not None) == (ALLOCATION, ALLOCATION, True)
        assert session.scalar(select(func.count()).select_from(Order).where(Order.merchant_id == ids["merchant"])) \
            == ALLOCATION
        assert session.scalar(select(func.count()).select_from(FlashSaleOrder)) == ALLOCATION
        counts = dict(session.execute(select(FlashSaleBuyer.customer_id, FlashSaleBuyer.bought)).tuples().all())
        assert {customer_ids.index(k): v for k, v in counts.items() if v} == dict(per_customer)
        # the SKU's own stock covered the flash orders: 25 − 10 left for normal sales
        assert catalog.stock_of(session, merchant_id=ids["merchant"], sku_ids=[ids["sku"]]) == {ids["sku"]: STOCK - ALLOCATION}
