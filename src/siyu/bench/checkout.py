"""`siyu bench checkout`: paid checkouts per second over HTTP, and proof that none was oversold,
lost or paid twice.

1. The database is migrated and a bench merchant of its own is created through the services (a
   fresh `bench-…` slug each run, so a database is never wiped): one hot SKU with `stock` units
   (the flash sale) and `skus` normal SKUs with plenty of stock.
2. A server subprocess (uvicorn, `workers` processes, SIYU_DEV_LOGIN=1) is started on a free port.
3. `buyers` coroutines in one event loop, each with its own keep-alive connection, dev-login once and then loop:
   POST /api/v1/shop/{m}/orders (Idempotency-Key) → POST …/orders/{id}/pay {method: sandbox}
   → POST …/payments/{id}/sandbox-confirm, until `duration` seconds or `checkouts` paid checkouts.
   `flash`: everyone buys the hot SKU; once it is sold out buyers get 409 out_of_stock, which is
   sampled for a short while and the run ends. `flash_sale`: the same through a real flash-sale
   campaign (promotions.flash_sales) whose allocation is `stock` while the SKU holds twice that; sold-out
   answers are 409 flash_sold_out (the admission check's cheap refusal), counted with their rate. `spread`: a random normal SKU each time.
4. Correctness is read from the database afterwards: oversold units, lost orders, double-paid
   orders, the stock ledger against its balance.
5. On PostgreSQL, pgbench runs the raw database limit: one transaction that decrements a stock row
   conditionally and inserts an order and two lines (into scratch tables created in the same
   database and dropped afterwards), at the same client count; our rate is reported as a ratio of it.

The load generator's own CPU is measured (`cpu.client_percent`, 100 = one core; it is one Python
process, so near 100 it is the bottleneck), as are the server's and PostgreSQL's (local server).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from siyu.bench.common import (
    cpu_seconds,
    event_worker,
    latency_summary,
    machine_busy_seconds,
    machine_cpus,
    postgres_cpu_seconds,
    server,
)
from siyu.config import get_settings

MODES = ("flash", "spread", "flash_sale")
EVENTS = ("inline", "worker")
HOT_PRICE_CENTS = 990
# flash_sale mode: a real flash-sale campaign on the hot SKU (promotions.flash_sales) at this price, its
# allocation = --stock, the SKU's own stock twice that (the allocation is what runs out).
FLASH_PRICE_CENTS = 590
# Refusals that mean "it is gone" (counted and timed as sold-out answers).
SOLD_OUT_CODES = ("create:409:out_of_stock", "create:409:flash_sold_out")
NORMAL_STOCK = 1_000_000
# After a flash sale sells out, keep measuring the out_of_stock answers for this long, then stop.
SOLD_OUT_SAMPLE_S = 1.5
ADDRESS = {"name": "压测买家", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "黄浦区",
           "detail": "南京东路 1 号"}
PAID_STATUSES = ("paid", "shipped", "ready_for_pickup", "completed")


@dataclasses.dataclass
class Setup:
    url: str
    merchant_id: int
    slug: str
    hot_sku_id: int
    normal_sku_ids: list[int]
    initial_stock: dict[int, int]
    # flash_sale mode: the campaign and its allocation.
    flash_sale_id: int | None = None
    allocation: int | None = None


# ---------------------------------------------------------------- preparing the database


def _dialect(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def prepare(url: str, *, stock: int, skus: int, flash_sale: bool = False) -> Setup:
    """Build or migrate `url`'s schema and create a bench merchant with a hot SKU and `skus` normal SKUs."""
    from sqlalchemy import select

    from siyu.catalog import service as catalog
    from siyu.catalog.models import Sku
    from siyu.core.auth import system_principal
    from siyu.db import Database, import_all_models, use_database
    from siyu.merchants import service as merchants

    import_all_models()
    _build_schema(url)
    database = Database(url)
    try:
        with use_database(database), database.scope() as session:
            slug = f"bench-{time.strftime('%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
            merchant = merchants.create_merchant(session, slug=slug, name="压测商户")
            session.flush()
            actor = system_principal(merchant.id)
            hot_stock = 2 * stock if flash_sale else stock
            hot = catalog.create_product(session, actor=actor, title="秒杀爆款", status="on_sale",
                                         skus=[{"spec": {}, "price_cents": HOT_PRICE_CENTS, "stock": hot_stock}])
            per_product = 10
            for p in range((skus + per_product - 1) // per_product):
                n = min(per_product, skus - p * per_product)
                catalog.create_product(session, actor=actor, title=f"常规商品 {p + 1}", status="on_sale",
                                       skus=[{"spec": {"款式": f"{j + 1}"}, "price_cents": 1990 + 100 * j,
                                              "stock": NORMAL_STOCK} for j in range(n)])
            session.flush()
            rows = session.execute(select(Sku.id, Sku.product_id).where(Sku.merchant_id == merchant.id)
                                   .order_by(Sku.id)).all()
            hot_id = next(sid for sid, pid in rows if pid == hot.id)
            normal = [sid for sid, pid in rows if pid != hot.id]
            flash_sale_id = _make_flash_sale(session, actor, hot_id, stock) if flash_sale else None
            return Setup(url=url, merchant_id=merchant.id, slug=slug, hot_sku_id=hot_id, normal_sku_ids=normal,
                         initial_stock={hot_id: hot_stock, **dict.fromkeys(normal, NORMAL_STOCK)},
                         flash_sale_id=flash_sale_id, allocation=stock if flash_sale else None)
    finally:
        database.dispose()


def _make_flash_sale(session: Any, actor: Any, sku_id: int, allocation: int) -> int:
    """A running flash sale (scheduled, started a minute ago, for a day) of `allocation` units of the
    hot SKU; a per-customer limit that never binds first (the counter row is still written)."""
    import datetime as dt

    from siyu.core import clock
    from siyu.promotions.service import flash_sales

    now = clock.now()
    sale = flash_sales.create_flash_sale(
        session, actor=actor, title="压测秒杀", starts_at=now - dt.timedelta(minutes=1),
        ends_at=now + dt.timedelta(days=1),
        items=[flash_sales.FlashItemIn(sku_id=sku_id, flash_price_cents=FLASH_PRICE_CENTS, allocation=allocation,
                                       per_customer_limit=allocation if allocation <= 999 else None)])
    flash_sales.schedule(session, sale.id, actor=actor)
    return sale.id


def _build_schema(url: str) -> None:
    """An empty database (the temporary SQLite file, a new PostgreSQL database) gets its tables from
    the models and is stamped at the migrations' head, as the tests build theirs; a database that
    has tables is migrated."""
    from alembic import command
    from sqlalchemy import inspect

    from siyu import migrate
    from siyu.db import Base, make_engine

    engine = make_engine(url)
    try:
        empty = not inspect(engine).get_table_names()
        if empty:
            Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    if empty:
        command.stamp(migrate.alembic_config(url), "head")
    else:
        migrate.upgrade(url)


@contextlib.contextmanager
def bench_url(database_url: str | None) -> Iterator[str]:
    """The given database, or a temporary SQLite file removed afterwards."""
    if database_url:
        yield database_url
        return
    with tempfile.TemporaryDirectory(prefix="siyu-bench-checkout-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


# ---------------------------------------------------------------- the buyers


@dataclasses.dataclass
class BuyerResult:
    created: list[int] = dataclasses.field(default_factory=list)
    # (order id, payment id) of every checkout whose sandbox confirm answered 200
    paid: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    full: list[float] = dataclasses.field(default_factory=list)
    steps: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"create": [], "pay": [], "confirm": []})
    out_of_stock: list[float] = dataclasses.field(default_factory=list)
    errors: Counter = dataclasses.field(default_factory=Counter)
    last_paid_at: float = 0.0
    login_failed: bool = False


class _Run:
    """Shared state of one run (the buyers are coroutines of one event loop: no locks): the stop signal
    and the paid counter."""

    def __init__(self, *, checkouts: int | None, deadline: float, flash: bool) -> None:
        self.stopped = False
        self.paid = 0
        self.checkouts = checkouts
        self.deadline = deadline
        self.flash = flash
        self.sold_out_at: float | None = None

    def count_paid(self) -> None:
        self.paid += 1
        if self.checkouts is not None and self.paid >= self.checkouts:
            self.stopped = True

    def sold_out(self, now: float) -> None:
        if self.sold_out_at is None:
            self.sold_out_at = now

    def over(self, now: float) -> bool:
        if self.stopped or now >= self.deadline:
            return True
        return self.sold_out_at is not None and now - self.sold_out_at >= SOLD_OUT_SAMPLE_S


class _Connection:
    """One keep-alive HTTP/1.1 connection, written and read by hand (a request line, a few headers, a
    `Content-Length` body): a load generator must cost far less than the server it loads, and a
    general-purpose client (httpx in a thread per buyer) cost about a fifth of the server's CPU."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.authority = f"{self.host}:{self.port}".encode()
        self.headers = b""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None,
                      idempotency_key: bool = False) -> tuple[int, bytes]:
        """(status, body). Raises OSError or asyncio.IncompleteReadError when the connection fails; the
        next request opens a new one."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = [b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method.encode(), path.encode(), self.authority), self.headers]
        if body is not None:
            head.append(b"Content-Type: application/json\r\n")
        if idempotency_key:
            head.append(b"Idempotency-Key: %s\r\n" % uuid.uuid4().hex.encode())
        head.append(b"Content-Length: %d\r\n\r\n" % len(payload))
        self.writer.write(b"".join(head) + payload)
        try:
            return await self._response()
        except BaseException:
            await self.close()
            raise

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, closing = 0, False, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                closing = b"close" in value.lower()
        if chunked:
            parts = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readuntil(b"\r\n")
            content = b"".join(p[:-2] for p in parts)
        else:
            content = await self.reader.readexactly(length) if length else b""
        if closing:
            await self.close()
        return status, content


def _error_code(status: int, content: bytes, step: str) -> str:
    code = ""
    with contextlib.suppress(Exception):
        code = json.loads(content).get("error", {}).get("code", "")
    return f"{step}:{status}" + (f":{code}" if code else "")


async def _sign_in(n: int, connection: _Connection, shop: str, run_id: str) -> bool:
    try:
        status, content = await connection.request("POST", f"{shop}/auth/dev-login", {
            "openid": f"bench-{run_id}-{n}", "nickname": f"买家{n}"})
        if status != 200:
            return False
        connection.headers = b"Authorization: Bearer %s\r\n" % json.loads(content)["access_token"].encode()
        # Warm up the worker serving this connection: FastAPI builds a router's route state on its first
        # request, which is not what a checkout costs.
        await connection.request("GET", f"{shop}/orders?limit=1")
        await connection.request("GET", f"{shop}/payments/1")
        return True
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return False


async def _buyer(n: int, connection: _Connection, setup: Setup, mode: str, run: _Run, result: BuyerResult) -> None:
    rng = random.Random(n)
    shop = f"/api/v1/shop/{setup.slug}"
    perf = time.perf_counter
    flash = mode in ("flash", "flash_sale")
    while not run.over(perf()):
        sku = setup.hot_sku_id if flash else rng.choice(setup.normal_sku_ids)
        body: dict[str, Any] = {"items": [{"sku_id": sku, "quantity": 1}],
                                "fulfilment": {"type": "delivery", "address": ADDRESS}}
        if setup.flash_sale_id is not None:
            body["promotion"] = {"kind": "flash_sale", "campaign_id": setup.flash_sale_id}
        try:
            t0 = perf()
            status, content = await connection.request("POST", f"{shop}/orders", body, idempotency_key=True)
            t1 = perf()
            if status != 201:
                key = _error_code(status, content, "create")
                if key in SOLD_OUT_CODES:
                    result.out_of_stock.append(t1 - t0)
                    if flash:
                        run.sold_out(t1)
                else:
                    result.errors[key] += 1
                continue
            order_id = json.loads(content)["id"]
            result.created.append(order_id)
            status, content = await connection.request("POST", f"{shop}/orders/{order_id}/pay", {"method": "sandbox"},
                                                       idempotency_key=True)
            t2 = perf()
            if status != 200:
                result.errors[_error_code(status, content, "pay")] += 1
                continue
            payment_id = json.loads(content)["payment_id"]
            status, content = await connection.request("POST", f"{shop}/payments/{payment_id}/sandbox-confirm",
                                                       idempotency_key=True)
            t3 = perf()
            if status != 200:
                result.errors[_error_code(status, content, "confirm")] += 1
                continue
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            result.errors[f"transport:{type(exc).__name__}"] += 1
            continue
        result.paid.append((order_id, payment_id))
        result.steps["create"].append(t1 - t0)
        result.steps["pay"].append(t2 - t1)
        result.steps["confirm"].append(t3 - t2)
        result.full.append(t3 - t0)
        result.last_paid_at = t3
        run.count_paid()


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def drive(base: str | list[str], setup: Setup, *, mode: str, buyers: int, duration: float, checkouts: int | None,
          server_pids: list[int] | None = None, worker_pid: int | None = None, on_start: Any = None) -> dict[str, Any]:
    """Run the buyers against a running server (or servers: buyer n uses `base[n % len(base)]`); the
    client-side half of the report."""
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        return runner.run(_drive(base, setup, mode=mode, buyers=buyers, duration=duration, checkouts=checkouts,
                                 server_pids=server_pids, worker_pid=worker_pid, on_start=on_start))


async def _drive(base: str | list[str], setup: Setup, *, mode: str, buyers: int, duration: float,
                 checkouts: int | None, server_pids: list[int] | None, worker_pid: int | None,
                 on_start: Any) -> dict[str, Any]:
    bases = [base] if isinstance(base, str) else list(base)
    run_id = uuid.uuid4().hex[:8]
    results = [BuyerResult() for _ in range(buyers)]
    run = _Run(checkouts=checkouts, deadline=float("inf"), flash=mode in ("flash", "flash_sale"))
    connections = [_Connection(bases[i % len(bases)]) for i in range(buyers)]
    shop = f"/api/v1/shop/{setup.slug}"
    # Everyone signed in, connections open and the workers warmed up before the clock starts.
    signed = await asyncio.gather(*(_sign_in(i, c, shop, run_id) for i, c in enumerate(connections)))
    for result, ok in zip(results, signed, strict=True):
        result.login_failed = not ok
    if on_start is not None:
        on_start()
    pg_before = postgres_cpu_seconds() if _dialect(setup.url) == "postgresql" else None
    server_before = cpu_seconds(server_pids) if server_pids else None
    per_worker_before = {pid: cpu_seconds([pid]) for pid in server_pids or []}
    machine_before = machine_busy_seconds()
    worker_before = cpu_seconds([worker_pid]) if worker_pid else None
    client_before = time.process_time()
    start = time.perf_counter()
    run.deadline = start + duration
    await asyncio.gather(*(_buyer(i, connections[i], setup, mode, run, results[i])
                           for i in range(buyers) if signed[i]))
    for connection in connections:
        await connection.close()
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_before
    machine_busy = machine_busy_seconds() - machine_before if machine_before is not None else None
    server_cpu = cpu_seconds(server_pids) - server_before if server_pids and server_before is not None else None
    pg_cpu = postgres_cpu_seconds() - pg_before if pg_before is not None else None
    worker_cpu = cpu_seconds([worker_pid]) - worker_before if worker_pid and worker_before is not None else None
    per_worker = [round(100 * (cpu_seconds([pid]) - before) / elapsed, 1) if elapsed else 0.0
                  for pid, before in per_worker_before.items()]

    paid = [p for r in results for p in r.paid]
    full = [v for r in results for v in r.full]
    steps = {name: [v for r in results for v in r.steps[name]] for name in ("create", "pay", "confirm")}
    oos = [v for r in results for v in r.out_of_stock]
    errors: Counter = Counter()
    for r in results:
        errors.update(r.errors)
    last_paid = max((r.last_paid_at for r in results), default=0.0)
    # A sold-out flash sale is measured over its selling window: start → the last paid checkout.
    selling = (last_paid - start) if run.sold_out_at is not None and last_paid > start else elapsed
    return {
        "seconds": round(elapsed, 3),
        "selling_seconds": round(selling, 3),
        "sold_out_after_s": round(run.sold_out_at - start, 3) if run.sold_out_at is not None else None,
        "paid_checkouts": len(paid),
        "paid_checkouts_per_s": round(len(paid) / selling, 1) if selling > 0 else 0.0,
        "orders_created": sum(len(r.created) for r in results),
        "latency": {"checkout": latency_summary(full), **{k: latency_summary(v) for k, v in steps.items()}},
        # per_s: sold-out answers per second once sold out (the stampede the admission check serves).
        "out_of_stock": {"answers": len(oos), **{k: v for k, v in latency_summary(oos).items() if k != "count"},
                         "per_s": round(len(oos) / (elapsed - (run.sold_out_at - start)), 1)
                         if run.sold_out_at is not None and elapsed > run.sold_out_at - start else None},
        "errors": dict(sorted(errors.items())),
        "login_failures": sum(r.login_failed for r in results),
        "cpu": {
            "machine_cpus": machine_cpus(),
            # Everything that ran on the machine meanwhile (100 = one core): ours plus anyone else's.
            "machine_busy_percent": round(100 * machine_busy / elapsed, 1) if machine_busy is not None and elapsed else None,
            "client_s": round(client_cpu, 2),
            "client_percent": round(100 * client_cpu / elapsed, 1) if elapsed else 0.0,
            "server_s": round(server_cpu, 2) if server_cpu is not None else None,
            "server_percent": round(100 * server_cpu / elapsed, 1) if server_cpu is not None and elapsed else None,
            "server_processes_percent": per_worker,
            "postgres_s": round(pg_cpu, 2) if pg_cpu is not None else None,
            "postgres_percent": round(100 * pg_cpu / elapsed, 1) if pg_cpu is not None and elapsed else None,
            # The event worker (--events worker) during the sale.
            "worker_s": round(worker_cpu, 2) if worker_cpu is not None else None,
            "worker_percent": round(100 * worker_cpu / elapsed, 1) if worker_cpu is not None and elapsed else None,
        },
        "_created": [o for r in results for o in r.created],
        "_paid": paid,
    }


# ---------------------------------------------------------------- correctness, read from the database


def check(setup: Setup, created: list[int], paid: list[tuple[int, int]]) -> dict[str, Any]:
    """Oversold units, lost orders, double-paid orders and the stock ledger, from the database."""
    from sqlalchemy import func, select

    from siyu.catalog.service.common import STOCK_KIND, STOCK_OWNER
    from siyu.db import Database
    from siyu.ledger import service as ledger
    from siyu.orders.models import Order, OrderLine
    from siyu.payments.models import Payment

    database = Database(setup.url)
    mid = setup.merchant_id
    try:
        with database.scope() as session:
            status_of = dict(session.execute(select(Order.id, Order.status).where(Order.merchant_id == mid)).all())
            units = session.execute(
                select(OrderLine.sku_id, Order.status, func.sum(OrderLine.quantity))
                .join(Order, Order.id == OrderLine.order_id).where(Order.merchant_id == mid)
                .group_by(OrderLine.sku_id, Order.status)).all()
            balances = ledger.balances(session, merchant_id=mid, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                                       owner_ids=list(setup.initial_stock))
            mismatches = ledger.verify(session, mid, kind=STOCK_KIND)
            double_paid = session.scalar(select(func.count()).select_from(
                select(Payment.order_id).where(Payment.merchant_id == mid, Payment.status == "succeeded")
                .group_by(Payment.order_id).having(func.count() > 1).subquery()))
            succeeded_sum = session.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
                Payment.merchant_id == mid, Payment.status == "succeeded"))
            paid_orders_sum = session.scalar(select(func.coalesce(func.sum(Order.paid_cents), 0)).where(
                Order.merchant_id == mid, Order.status.in_(PAID_STATUSES)))
    finally:
        database.dispose()

    reserved: Counter = Counter()
    paid_units: Counter = Counter()
    for sku_id, status, qty in units:
        if status != "cancelled":
            reserved[sku_id] += int(qty)
        if status in PAID_STATUSES:
            paid_units[sku_id] += int(qty)
    oversold = 0
    conservation = 0
    for sku_id, initial in setup.initial_stock.items():
        bal = balances.get(sku_id, 0)
        oversold += max(0, paid_units[sku_id] - initial, reserved[sku_id] - initial, -bal)
        conservation += initial - reserved[sku_id] != bal
    missing = [o for o in created if o not in status_of]
    unpaid_confirmed = [o for o, _p in paid if status_of.get(o) not in PAID_STATUSES]
    statuses = Counter(status_of.values())
    hot = setup.hot_sku_id
    flash: dict[str, Any] = {}
    if setup.flash_sale_id is not None:
        flash = _check_flash_sale(setup, reserved[hot], paid_units[hot])
        oversold += flash["oversold_units"]
    return {
        **({"flash_sale": flash} if flash else {}),
        "oversold_units": oversold,
        "lost_orders": len(missing) + len(unpaid_confirmed),
        "double_paid_orders": int(double_paid or 0),
        "stock_ledger_mismatches": len(mismatches),
        "stock_not_conserved_skus": conservation,
        "payments_sum_equals_paid_orders": int(succeeded_sum or 0) == int(paid_orders_sum or 0),
        "orders_by_status": dict(sorted(statuses.items())),
        "hot_sku": {"initial_stock": setup.initial_stock[hot], "stock_left": balances.get(hot, 0),
                    "paid_units": paid_units[hot], "reserved_units": reserved[hot]},
    }


def _check_flash_sale(setup: Setup, reserved: int, paid: int) -> dict[str, Any]:
    """The campaign's allocation against what its orders hold: never more sold than allocated, and the
    campaign's own counter equal to the units of its live orders."""
    from sqlalchemy import func, select

    from siyu.db import Database
    from siyu.promotions.models.flash_sales import FlashSaleItem, FlashSaleOrder

    database = Database(setup.url)
    try:
        with database.scope() as session:
            item = session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == setup.flash_sale_id)).one()
            held = session.scalar(select(func.coalesce(func.sum(FlashSaleOrder.quantity), 0)).where(
                FlashSaleOrder.flash_sale_id == setup.flash_sale_id, FlashSaleOrder.status != "released"))
            allocation, sold = item.allocation, item.sold
    finally:
        database.dispose()
    return {"allocation": allocation, "sold": sold, "held_by_orders": int(held or 0), "reserved_units": reserved,
            "paid_units": paid, "counter_matches_orders": sold == int(held or 0) == reserved,
            "oversold_units": max(0, sold - allocation, reserved - allocation, paid - allocation)}


# ---------------------------------------------------------------- round trips of one checkout


def _count_round_trips(database: Any) -> Counter:
    """A counter of the database's statements, commits and savepoints from now on (engine events)."""
    from sqlalchemy import event

    counts: Counter = Counter()

    def on(name: str) -> Any:
        def count(*_args: Any, **_kwargs: Any) -> None:
            counts[name] += 1
        return count

    event.listen(database.engine, "before_cursor_execute", on("statements"))
    event.listen(database.engine, "commit", on("commits"))
    event.listen(database.engine, "savepoint", on("savepoints"))
    return counts


def trace_one_checkout(setup: Setup) -> dict[str, Any]:
    """One checkout (create, pay, confirm) through the app in this process, counting per request the
    SQL statements sent, the transactions committed and the savepoints taken (event handlers
    included: they run inline after each commit)."""
    import warnings


    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's note about httpx in its TestClient
        from fastapi.testclient import TestClient

    from siyu.app import create_app
    from siyu.customers import service as customers
    from siyu.customers.signin import issue_customer_token
    from siyu.db import Database, use_database

    database = Database(setup.url)
    counts = _count_round_trips(database)
    try:
        with use_database(database):
            with database.scope() as session:
                customer, _ = customers.find_or_create_by_identity(
                    session, merchant_id=setup.merchant_id, kind="openid", value=f"bench-trace-{uuid.uuid4().hex[:12]}")
                token = issue_customer_token(session, customer)
            shop = f"/api/v1/shop/{setup.slug}"
            steps: dict[str, dict[str, int]] = {}
            with TestClient(create_app(configure_database=False, database=database)) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                client.get(f"{shop}/orders", params={"limit": 1})
                client.get(f"{shop}/payments/1")

                def step(name: str, path: str, body: Any = None) -> httpx.Response:
                    before = dict(counts)
                    answer = client.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                    steps[name] = {k: counts[k] - before.get(k, 0) for k in ("statements", "commits", "savepoints")}
                    steps[name]["status"] = answer.status_code
                    return answer

                sku = setup.normal_sku_ids[0]
                order = step("create", f"{shop}/orders", {"items": [{"sku_id": sku, "quantity": 1}],
                                                          "fulfilment": {"type": "delivery", "address": ADDRESS}})
                pay = step("pay", f"{shop}/orders/{order.json()['id']}/pay", {"method": "sandbox"})
                step("confirm", f"{shop}/payments/{pay.json()['payment_id']}/sandbox-confirm")
    finally:
        database.dispose()
    total = {k: sum(s[k] for s in steps.values()) for k in ("statements", "commits", "savepoints")}
    return {**steps, "total": total}


# ---------------------------------------------------------------- in-process: CPU per checkout and per handler

STEPS = ("create", "pay", "confirm")
COUNTED = ("statements", "commits", "savepoints")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class _HandlerClock:
    """The `core.events` observer of an in-process run: CPU time (of the thread running it) and SQL
    statements of every handler run, and of every whole event run (claims, handlers, commit). An event
    dispatched after another event's commit (order.paid after payment.succeeded) runs inside that run;
    it is counted as its own, not twice."""

    def __init__(self, counts: Counter) -> None:
        self.counts = counts
        self.cpu: dict[tuple[str, str], float] = {}
        self.statements: Counter = Counter()
        self.runs: Counter = Counter()
        self.on = False
        # Open event runs: [cpu, statements] of the event runs nested in each.
        self.nested: list[list[float]] = []

    @contextlib.contextmanager
    def __call__(self, event_name: str, key: str) -> Iterator[None]:
        from siyu.core.events import EVENT_RUN_KEY

        if not self.on:
            yield
            return
        whole = key == EVENT_RUN_KEY
        if whole:
            self.nested.append([0.0, 0])
        statements, cpu = self.counts["statements"], time.thread_time()
        try:
            yield
        finally:
            spent, sent = time.thread_time() - cpu, self.counts["statements"] - statements
            own_cpu, own_sent = spent, sent
            if whole:
                inner = self.nested.pop()
                own_cpu, own_sent = spent - inner[0], sent - inner[1]
                if self.nested:
                    self.nested[-1][0] += spent
                    self.nested[-1][1] += sent
            where = (event_name, key)
            self.cpu[where] = self.cpu.get(where, 0.0) + own_cpu
            self.statements[where] += own_sent
            self.runs[where] += 1


def _one_run(url: str, *, checkouts: int, warmup: int, mode: str) -> dict[str, Any]:
    """`warmup` + `checkouts` sequential checkouts of one customer through the ASGI app (TestClient) on a
    new bench merchant; what the measured ones cost."""
    import warnings


    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's note about httpx in its TestClient
        from fastapi.testclient import TestClient

    from siyu.app import create_app
    from siyu.core import events
    from siyu.customers import service as customers
    from siyu.customers.signin import issue_customer_token
    from siyu.db import Database, use_database

    total = warmup + checkouts
    setup = prepare(url, stock=total + 10, skus=1, flash_sale=mode == "flash_sale")
    database = Database(url)
    counts = _count_round_trips(database)
    clock = _HandlerClock(counts)
    steps_cpu = dict.fromkeys(STEPS, 0.0)
    steps_counts: dict[str, Counter] = {name: Counter() for name in STEPS}
    errors: Counter = Counter()
    try:
        with use_database(database), events.observe_handlers(clock):
            with database.scope() as session:
                customer, _ = customers.find_or_create_by_identity(
                    session, merchant_id=setup.merchant_id, kind="openid", value=f"bench-inproc-{uuid.uuid4().hex[:12]}")
                token = issue_customer_token(session, customer)
            shop = f"/api/v1/shop/{setup.slug}"
            body: dict[str, Any] = {"items": [{"sku_id": setup.hot_sku_id, "quantity": 1}],
                                    "fulfilment": {"type": "delivery", "address": ADDRESS}}
            if setup.flash_sale_id is not None:
                body["promotion"] = {"kind": "flash_sale", "campaign_id": setup.flash_sale_id}
            with TestClient(create_app(configure_database=False, database=database)) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                client.get(f"{shop}/orders", params={"limit": 1})
                client.get(f"{shop}/payments/1")

                def step(name: str, path: str, payload: Any, measured: bool) -> Any:
                    before, cpu = Counter(counts), time.process_time()
                    answer = client.post(path, json=payload, headers={"Idempotency-Key": uuid.uuid4().hex})
                    if measured:
                        steps_cpu[name] += time.process_time() - cpu
                        steps_counts[name].update({k: counts[k] - before[k] for k in COUNTED})
                    if answer.status_code not in (200, 201):
                        errors[_error_code(answer.status_code, answer.content, name)] += 1
                        return None
                    return answer.json()

                wall = 0.0
                for n in range(total):
                    measured = n >= warmup
                    if measured and n == warmup:
                        clock.on, wall = True, time.perf_counter()
                    order = step("create", f"{shop}/orders", body, measured)
                    pay = order and step("pay", f"{shop}/orders/{order['id']}/pay", {"method": "sandbox"}, measured)
                    if pay:
                        step("confirm", f"{shop}/payments/{pay['payment_id']}/sandbox-confirm", None, measured)
                wall = time.perf_counter() - wall
    finally:
        database.dispose()
    per = 1000.0 / checkouts
    handlers: dict[str, dict[str, Any]] = {}
    for (event_name, key), cpu in sorted(clock.cpu.items()):
        runs = clock.runs[(event_name, key)]
        entry = handlers.setdefault(event_name, {"runs_per_checkout": 0.0, "cpu_ms": 0.0, "statements": 0.0,
                                                 "handlers": {}})
        figures = {"cpu_ms": round(cpu * per, 3), "statements": round(clock.statements[(event_name, key)] / checkouts, 2)}
        if key == events.EVENT_RUN_KEY:
            entry.update(figures, runs_per_checkout=round(runs / checkouts, 2))
        else:
            entry["handlers"][key] = figures
    for entry in handlers.values():
        in_handlers = sum(h["cpu_ms"] for h in entry["handlers"].values())
        entry["outside_handlers_cpu_ms"] = round(entry["cpu_ms"] - in_handlers, 3)
        entry["handlers"] = dict(sorted(entry["handlers"].items(), key=lambda kv: -kv[1]["cpu_ms"]))
    return {
        "merchant": setup.slug,
        "cpu_ms_per_checkout": round(sum(steps_cpu.values()) * per, 3),
        "wall_ms_per_checkout": round(wall * per, 3),
        "steps": {name: {"cpu_ms": round(steps_cpu[name] * per, 3),
                         **{k: round(steps_counts[name][k] / checkouts, 2) for k in COUNTED}} for name in STEPS},
        "events": handlers,
        "errors": dict(errors),
    }


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number over the runs, in the first run's shape."""
    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            keys = [k for k in first if all(isinstance(v, dict) and k in v for v in values)]
            return {k: merge([v[k] for v in values]) for k in keys}
        if isinstance(first, int | float) and not isinstance(first, bool):
            return round(_median([float(v) for v in values]), 3)
        return first
    return merge(runs)


def run_in_process(*, checkouts: int = 100, runs: int = 3, warmup: int = 10, mode: str = "flash",
                   database_url: str | None = None) -> dict[str, Any]:
    """`runs` times: a new bench merchant, then `warmup` + `checkouts` sequential create → pay → sandbox
    confirm of one customer through the ASGI app in this process (no HTTP server, no concurrency). Reports
    the median over the runs of the CPU per checkout (this process: the app, and on SQLite the database
    too), SQL statements, commits and savepoints per step, and the CPU and statements of every event
    handler per checkout (`core.events.observe_handlers`): where a checkout's Python time goes."""
    if mode not in ("flash", "flash_sale"):
        raise ValueError("in-process mode runs flash (the hot SKU) or flash_sale (a flash-sale campaign)")
    with bench_url(database_url) as url:
        results = [_one_run(url, checkouts=checkouts, warmup=warmup, mode=mode) for _ in range(runs)]
    return {
        "bench": "checkout-in-process",
        "mode": mode,
        "database": _dialect(url),
        "database_source": "given" if database_url else "temporary SQLite file",
        "checkouts": checkouts,
        "warmup": warmup,
        "runs": runs,
        "median": _median_of([{k: v for k, v in r.items() if k not in ("merchant", "errors")} for r in results]),
        "cpu_ms_per_checkout_by_run": [r["cpu_ms_per_checkout"] for r in results],
        "errors": dict(sum((Counter(r["errors"]) for r in results), Counter())),
        "load_average": list(os.getloadavg()),
    }


# ---------------------------------------------------------------- pgbench, the raw database limit

PGBENCH_TABLES = ("siyu_bench_raw_lines", "siyu_bench_raw_orders", "siyu_bench_raw_stock")
PGBENCH_SCRIPT = """\\set customer random(1, 1000000)
BEGIN;
UPDATE siyu_bench_raw_stock SET stock = stock - 1 WHERE id = 1 AND stock >= 1;
WITH o AS (INSERT INTO siyu_bench_raw_orders (customer_id, status, total_cents, created_at)
           VALUES (:customer, 'pending_payment', 990, now()) RETURNING id)
INSERT INTO siyu_bench_raw_lines (order_id, sku_id, quantity, price_cents)
SELECT id, 1, 1, 990 FROM o UNION ALL SELECT id, 2, 1, 0 FROM o;
END;
"""


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def _pg_exec(url: str, statements: list[str]) -> None:
    from sqlalchemy import create_engine, text

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))
    finally:
        engine.dispose()


def pgbench(url: str, *, clients: int, seconds: int) -> dict[str, Any]:
    """tps of the raw checkout transaction at `clients` connections, or {"skipped": why}."""
    from sqlalchemy.engine import make_url

    if _dialect(url) != "postgresql":
        return {"skipped": "pgbench runs on PostgreSQL only"}
    exe = find_pgbench()
    if exe is None:
        return {"skipped": "pgbench was not found (install the postgresql client package)"}
    u = make_url(url)
    drop = f"DROP TABLE IF EXISTS {', '.join(PGBENCH_TABLES)}"
    _pg_exec(url, [
        drop,
        "CREATE TABLE siyu_bench_raw_stock (id bigint PRIMARY KEY, stock bigint NOT NULL)",
        "CREATE TABLE siyu_bench_raw_orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, "
        "status varchar(20) NOT NULL, total_cents bigint NOT NULL, created_at timestamptz NOT NULL)",
        "CREATE TABLE siyu_bench_raw_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL "
        "REFERENCES siyu_bench_raw_orders (id), sku_id bigint NOT NULL, quantity int NOT NULL, "
        "price_cents bigint NOT NULL)",
        "CREATE INDEX ON siyu_bench_raw_lines (order_id)",
        "INSERT INTO siyu_bench_raw_stock VALUES (1, 1000000000)",
    ])
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(PGBENCH_SCRIPT)
            script = f.name
        cmd = [exe, "-n", "-c", str(clients), "-j", str(max(1, min(clients, machine_cpus()))), "-T", str(seconds),
               "-f", script, "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
               u.database or "postgres"]
        env = {**os.environ}
        if u.password:
            env["PGPASSWORD"] = u.password
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 120, check=False)
        os.unlink(script)
        if done.returncode != 0:
            return {"skipped": f"pgbench failed: {done.stderr.strip()[:300]}"}
        tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout) or \
            re.search(r"tps = ([0-9.]+)", done.stdout)
        latency = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        return {"tps": round(float(tps.group(1)), 1) if tps else None, "clients": clients, "seconds": seconds,
                "latency_avg_ms": float(latency.group(1)) if latency else None,
                "failed_transactions": int(failed.group(1)) if failed else 0,
                "transaction": "UPDATE stock row conditionally + INSERT order + INSERT 2 lines (scratch tables)"}
    finally:
        _pg_exec(url, [drop])


# ---------------------------------------------------------------- profiling (optional)


class Profiler:
    """py-spy record of the server (and its worker subprocesses) while the buyers run; `gil_only`
    samples only threads holding the GIL, i.e. where the server's Python CPU goes."""

    def __init__(self, out: str | None, *, gil_only: bool = False) -> None:
        self.out, self.gil_only = out, gil_only
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}

    def start(self, pid: int, seconds: float) -> None:
        if not self.out:
            return
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            self.info["skipped"] = "py-spy is not installed (pip install py-spy)"
            return
        fmt = "speedscope" if self.out.endswith(".json") else ("raw" if self.out.endswith(".txt") else "flamegraph")
        self.info.update({"file": self.out, "format": fmt, "gil_only": self.gil_only})
        cmd = [exe, "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--nonblocking",
               "--duration", str(max(1, int(seconds))), "--format", fmt, "-o", self.out]
        self.proc = subprocess.Popen(cmd + (["--gil"] if self.gil_only else []), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)

    def finish(self) -> dict[str, Any]:
        if self.proc is None:
            return self.info
        self.proc.send_signal(2)  # SIGINT: py-spy writes what it has when the run ended early
        try:
            _out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        if not Path(self.out or "").exists():
            self.info = {"skipped": f"py-spy failed: {(err or '').strip()[:300]}"}
        return self.info


# ---------------------------------------------------------------- the whole run


def drain_events(url: str, merchant_id: int, worker_pid: int, *, timeout: float) -> dict[str, Any]:
    """Wait until the worker has run the handlers of every event the sale emitted (or `timeout`): the
    backlog the sale left, how long the worker took to clear it and the worker's CPU meanwhile."""
    from sqlalchemy import func, select

    from siyu.core.models import OutboxEvent
    from siyu.db import Database

    waiting = select(func.count()).select_from(OutboxEvent).where(
        OutboxEvent.merchant_id == merchant_id, OutboxEvent.processed_at.is_(None))
    database = Database(url)  # one engine for every poll

    def pending_now() -> int:
        with database.scope() as session:
            return session.scalar(waiting) or 0

    try:
        start, cpu_before = time.perf_counter(), cpu_seconds([worker_pid])
        backlog = pending = pending_now()
        while pending and time.perf_counter() - start < timeout:
            time.sleep(0.25)
            pending = pending_now()
    finally:
        database.dispose()
    return {"backlog_at_sale_end": backlog, "pending_after_drain": pending,
            "drain_seconds": round(time.perf_counter() - start, 2) if backlog else 0.0,
            "worker_cpu_s_draining": round(cpu_seconds([worker_pid]) - cpu_before, 2)}


def run(*, mode: str = "flash", buyers: int = 64, workers: int = 2, duration: float = 10.0,
        checkouts: int | None = None, stock: int = 1000, skus: int = 200, database_url: str | None = None,
        pgbench_seconds: int = 5, profile: str | None = None, profile_gil: bool = False,
        events: str = "inline", event_threads: int = 2, event_nice: int = 10) -> dict[str, Any]:
    """Prepare, serve, drive, check, compare with pgbench; the JSON report.

    `events`: "inline", the handlers of order.created / order.paid run in the server processes after each
    commit (SIYU_EVENTS_MODE=inline); "worker", the servers only queue them and one `siyu worker`
    (`event_threads` threads, `event_nice` steps below the servers) runs them, through Redis when
    SIYU_REDIS_URL is set, else a SQLite queue file; the report then says what backlog the sale left
    and how long the worker took to clear it."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if events not in EVENTS:
        raise ValueError(f"events must be one of {EVENTS}")
    with bench_url(database_url) as url, tempfile.TemporaryDirectory(prefix="siyu-bench-queue-") as queue_dir:
        setup = prepare(url, stock=stock, skus=skus, flash_sale=mode == "flash_sale")
        profiler = Profiler(profile, gil_only=profile_gil)
        # A queue of the run's own (its own Redis keys, or a file), so that nothing else's tasks mix in.
        queue_env = {"SIYU_EVENTS_MODE": "huey", "SIYU_HUEY_NAME": f"siyu-bench-{uuid.uuid4().hex[:8]}",
                     "SIYU_HUEY_PATH": str(Path(queue_dir) / "queue.db")} if events == "worker" else {}
        drained: dict[str, Any] | None = None
        # One single-worker uvicorn process per worker, each on its own port, the buyers dealt out
        # round-robin: uvicorn's --workers share one listening socket, and 64 keep-alive connections
        # opened in one burst often land mostly on one worker, which then does all the work.
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(server(url, workers=1, env=queue_env)) for _ in range(workers)]
            consumer = stack.enter_context(event_worker(
                url, threads=event_threads, nice=event_nice, env=queue_env,
                log_path=Path(queue_dir) / "worker.log")) if events == "worker" else None
            try:
                client = drive([s.base for s in servers], setup, mode=mode, buyers=buyers, duration=duration,
                               checkouts=checkouts, server_pids=[p for s in servers for p in s.pids()],
                               worker_pid=consumer.pid if consumer else None,
                               on_start=lambda: profiler.start(servers[0].proc.pid, duration))
            finally:
                prof = profiler.finish()
            if consumer is not None:
                drained = drain_events(url, setup.merchant_id, consumer.pid, timeout=max(120.0, 20 * duration))
                if drained["pending_after_drain"]:
                    drained["worker_log_tail"] = (Path(queue_dir) / "worker.log").read_text(errors="replace")[-2000:]
        created, paid = client.pop("_created"), client.pop("_paid")
        correctness = check(setup, created, paid)
        # After the check: the traced checkout is one more order, on a normal SKU.
        round_trips = trace_one_checkout(setup)
        raw = pgbench(url, clients=buyers, seconds=pgbench_seconds) if pgbench_seconds > 0 else \
            {"skipped": "disabled (--pgbench-seconds 0)"}
    rate = client["paid_checkouts_per_s"]
    report: dict[str, Any] = {
        "bench": "checkout",
        "mode": mode,
        "database": _dialect(url),
        "database_source": "given" if database_url else "temporary SQLite file",
        "merchant": setup.slug,
        "workers": workers,
        "server_layout": f"{workers} uvicorn process(es), one worker and one port each; buyers dealt round-robin",
        "events": events if events == "inline" else {
            "mode": "worker", "queue": "redis" if get_settings().redis_url else "sqlite file",
            "worker_threads": event_threads, "worker_nice": event_nice, **(drained or {}),
            # Paid checkouts per second counting the time the worker took to catch up after the sale.
            "paid_checkouts_per_s_with_drain": round(
                client["paid_checkouts"] / (client["selling_seconds"] + drained["drain_seconds"]), 1)
            if drained and client["selling_seconds"] else None},
        # Requests each server process works on at once (SIYU_MAX_INFLIGHT; the others wait in its event loop).
        "max_inflight_per_server": get_settings().max_inflight or "database pool size",
        "buyers": buyers,
        "duration_s": duration,
        "checkouts_limit": checkouts,
        "stock": stock if mode in ("flash", "flash_sale") else None,
        "skus": 1 if mode in ("flash", "flash_sale") else len(setup.normal_sku_ids),
        **client,
        "correctness": correctness,
        "per_checkout_round_trips": round_trips,
        "pgbench": raw,
        "ratio_to_pgbench": round(rate / raw["tps"], 3) if raw.get("tps") else None,
    }
    if profile:
        report["profile"] = prof
    return report
