"""`siyu bench commissions`: commission computation and settlement throughput.

A fresh bench merchant gets `--distributors` distributors in two-level chains (every tenth one at the
top, the others recruited by one of them), a default rule per level and product rules for a tenth of
the products. Then `--orders` paid orders (one to three lines, each bought through a lower-level
distributor, so both levels earn) go through the real engine in batches of 5,000 orders, each batch one
transaction: `distribution.service.accrue` (rule resolution, commission rows, pending ledger entries, one
per beneficiary per batch), and, once their after-sales window has closed, `settle_due` in runs of
20,000 rows as the jobs tick does (pending -> withdrawable on the ledger, one entry per beneficiary per
run, grades). The
orders themselves are facts in memory (the orders domain has its own `bench checkout`); everything
commission writes is real. Prints JSON: orders per second for each phase and overall, and a check that
the commission ledger balances and every row settled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH = 5000
SETTLE_ROWS = 20_000


@contextlib.contextmanager
def _url(database_url: str | None) -> Iterator[tuple[str, str]]:
    if database_url:
        yield database_url, database_url.split(":", 1)[0].split("+", 1)[0]
        return
    with tempfile.TemporaryDirectory(prefix="siyu-bench-commissions-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}", "temporary sqlite"


def _setup(database: Any, *, distributors: int, products: int, rng: random.Random) -> tuple[int, list[int], list[int]]:
    """The merchant, its distributors (customer ids of the lower level) and product ids."""
    from sqlalchemy import insert, select

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.customers.models import Customer
    from siyu.distribution import service
    from siyu.distribution.models import Distributor
    from siyu.merchants import service as merchants

    with database.scope() as session:
        slug = f"bench-{time.strftime('%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
        merchant = merchants.create_merchant(session, slug=slug, name="分销压测商户")
        session.flush()
        mid, now = merchant.id, clock.now()
        customer_ids = list(session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [
            {"merchant_id": mid, "nickname": f"分销员{i}", "created_at": now, "updated_at": now}
            for i in range(distributors)]))
        tops = customer_ids[::10]
        rows = [{"merchant_id": mid, "customer_id": cid, "status": "active", "grade": "junior", "upline_id": None,
                 "invite_code": f"B{i:07d}", "nickname": f"分销员{i}", "applied_at": now, "joined_at": now,
                 "updated_at": now} for i, cid in enumerate(customer_ids)]
        session.execute(insert(Distributor), rows)
        by_customer = dict(session.execute(select(Distributor.customer_id, Distributor.id)
                                           .where(Distributor.merchant_id == mid)).all())
        top_ids = [by_customer[c] for c in tops]
        lower = [c for c in customer_ids if c not in set(tops)]
        for cid in lower:
            session.execute(Distributor.__table__.update().where(Distributor.id == by_customer[cid])
                            .values(upline_id=rng.choice(top_ids)))
        # Commission accounts are opened up front (as the first commission of each distributor would).
        from siyu.distribution.service import accounts
        from siyu.ledger import service as ledger

        for kind in (accounts.PENDING, accounts.SETTLED):
            ledger.open_accounts(session, merchant_id=mid, kind=kind, owner_type="distributor",
                                 opening=dict.fromkeys(by_customer.values(), 0), reason="opened",
                                 key_prefix=f"bench:{kind}")
        actor = system_principal(mid)
        codes = [g["code"] for g in service.grades(service.get_programme(session, merchant_id=mid))]
        for level, bps in ((1, 1000), (2, 300)):
            service.create_rule(session, actor=actor, grade_codes=codes,
                                data={"scope": "default", "level": level, "kind": "bps", "value": bps})
        product_ids = list(range(1, products + 1))
        for pid in product_ids[::10]:
            service.create_rule(session, actor=actor, grade_codes=codes,
                                data={"scope": "product", "scope_id": pid, "level": 1, "kind": "fixed", "value": 500})
    return mid, lower, product_ids


def run(*, orders: int = 100_000, distributors: int = 1000, database_url: str | None = None,
        seed: int = 7) -> dict[str, Any]:
    from sqlalchemy import func, select, update

    from siyu.core import clock
    from siyu.db import Base, Database, import_all_models, use_database
    from siyu.distribution import service
    from siyu.distribution.models import Commission

    rng = random.Random(seed)
    with _url(database_url) as (url, label):
        import_all_models()
        database = Database(url)
        try:
            Base.metadata.create_all(database.engine)
            with use_database(database):
                merchant_id, buyers_via, product_ids = _setup(database, distributors=max(10, distributors),
                                                              products=200, rng=rng)
                facts = []
                next_line = 1
                base_id = 10**12 + merchant_id * 10**8  # synthetic order and line ids, apart from real ones
                for n in range(orders):
                    lines = []
                    for _ in range(rng.randint(1, 3)):
                        qty = rng.randint(1, 3)
                        lines.append(service.LineFacts(id=base_id + next_line, product_id=rng.choice(product_ids),
                                                       category_id=None, title="压测商品", quantity=qty,
                                                       paid_cents=qty * rng.randint(990, 29_900)))
                        next_line += 1
                    facts.append(service.OrderFacts(
                        merchant_id=merchant_id, order_id=base_id + n, order_no=f"B{n:010d}",
                        customer_id=10**12 + n, store_id=None, owner_id=None,
                        attribution={"referrer_customer_id": rng.choice(buyers_via), "guide_id": None},
                        lines=tuple(lines)))

                # phase 1: computation (rules, rows, pending ledger entries), one transaction per batch
                started = time.perf_counter()
                with database.scope() as session:
                    ctx = service.Context.load(session, merchant_id)
                    ctx.preload(session, merchant_id)
                    for d in ctx.by_id.values():
                        if d is not None:
                            session.expunge(d)
                rows_written = 0
                for start in range(0, len(facts), BATCH):
                    with database.scope() as session:
                        rows_written += service.accrue(session, ctx, facts[start:start + BATCH])
                accrue_s = time.perf_counter() - started

                # the orders complete and their after-sales window closes
                closes = clock.now() - dt.timedelta(seconds=1)
                with database.scope() as session:
                    session.execute(update(Commission).where(Commission.merchant_id == merchant_id)
                                    .values(settle_after=closes))

                # phase 2: settlement, as the jobs tick runs it
                started = time.perf_counter()
                runs = 0
                while True:
                    with database.scope() as session:
                        settled = service.settle_due(session, clock.now(), limit=SETTLE_ROWS, merchant_id=merchant_id)
                    runs += 1
                    if not settled:
                        break
                settle_s = time.perf_counter() - started

                with database.scope() as session:
                    pending = session.scalar(select(func.count()).select_from(Commission).where(
                        Commission.merchant_id == merchant_id, Commission.status == "pending"))
                    total = int(session.scalar(select(func.coalesce(func.sum(Commission.amount_cents), 0)).where(
                        Commission.merchant_id == merchant_id)) or 0)
                    withdrawable = sum(b.settled_cents for b in service.accounts.balances_of(
                        session, merchant_id=merchant_id, owner_type="distributor",
                        owner_ids=[d.id for d in ctx.by_id.values() if d is not None]).values())
                    mismatches = service.accounts.verify(session, merchant_id=merchant_id)
        finally:
            database.dispose()

    def orders_per_s(seconds: float) -> float:  # throughput, not money
        return round(orders / seconds, 1) if seconds > 0 else 0.0

    return {
        "bench": "commissions", "database": label, "orders": orders, "distributors": max(10, distributors),
        "levels": 2, "commission_rows": rows_written, "batch_orders": BATCH, "settle_rows_per_run": SETTLE_ROWS,
        "accrue": {"seconds": round(accrue_s, 3), "orders_per_s": orders_per_s(accrue_s)},
        "settle": {"seconds": round(settle_s, 3), "orders_per_s": orders_per_s(settle_s), "runs": runs},
        "total": {"seconds": round(accrue_s + settle_s, 3), "orders_per_s": orders_per_s(accrue_s + settle_s)},
        "checks": {"rows_left_pending": int(pending or 0), "commission_cents": total,
                   "withdrawable_cents": withdrawable, "ledger_balanced": not mismatches,
                   "all_settled": not pending and total == withdrawable},
    }
