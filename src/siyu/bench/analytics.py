"""`siyu bench analytics`: a deterministic merchant with N customers and M paid orders over a year, then
every analytics view timed as the console computes it (the analytics services, admin scope, the last 30
Shanghai days) next to the same computation written as plain SQL over the raw rows ("naive").

Generation is bulk: COPY on PostgreSQL, executemany on SQLite, in two passes over one seeded random
stream (the first computes each customer's purchase stats, which are written with the customers; the
second writes the identical orders), so memory stays flat at any size. Funnel events are written for the
last 60 days (two periods), shares and fission edges for 2% of the customers. The schema comes from the
models (`create_all`), on a temporary SQLite file unless --database-url is given (PostgreSQL: a new bench
merchant each run; nothing is wiped).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

SEED = 2026
CHANNELS = ("store_qr", "guide_qr", "chat", "moments", "community", "live", "oa", "search", "direct", None)
CHANNEL_WEIGHTS = (14, 12, 8, 6, 8, 9, 4, 6, 13, 20)
CAMPAIGNS = ("spring", "618", "double11", "members-day", "new-arrivals")
FUNNEL_DAYS = 60
STORES = 10
GUIDES_PER_STORE = 5
BATCH = 20_000


def _cum(weights: tuple[int, ...]) -> list[int]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


class _Orders:
    """The seeded stream of orders: (customer index, paid_at, total, refunded, channel, fulfilment, campaign).
    Customers are skewed (a few buy often) by drawing the index from a squared uniform."""

    def __init__(self, customers: int, orders: int, now: dt.datetime) -> None:
        self.customers, self.orders, self.now = customers, orders, now

    def __iter__(self) -> Iterator[tuple[int, dt.datetime, int, int, str | None, str, str | None]]:
        rng = random.Random(SEED)
        cum = _cum(CHANNEL_WEIGHTS)
        year = 365 * 86400
        for _i in range(self.orders):
            r = rng.random()
            idx = int(self.customers * r * r)
            paid_at = self.now - dt.timedelta(seconds=rng.randrange(year))
            total = rng.randrange(100, 5000) * 10
            x = rng.random()
            refunded = total if x < 0.02 else (total // 2 if x < 0.05 else 0)
            v = rng.randrange(cum[-1])
            ch = CHANNELS[next(i for i, c in enumerate(cum) if v < c)]
            f = rng.random()
            fulfilment = "pickup" if f < 0.2 else ("leader" if f < 0.25 else "delivery")
            campaign = CAMPAIGNS[rng.randrange(len(CAMPAIGNS))] if rng.random() < 0.3 else None
            yield idx, paid_at, total, refunded, ch, fulfilment, campaign


@contextlib.contextmanager
def _database(database_url: str | None) -> Iterator[Any]:
    from siyu.db import Base, Database, import_all_models

    import_all_models()
    tmp = None
    if database_url is None:
        tmp = tempfile.mkdtemp(prefix="siyu-bench-analytics-")
        database_url = f"sqlite:///{tmp}/bench.db"
    database = Database(database_url)
    if database.dialect == "sqlite":  # a bench file: speed over durability while filling it

        def _fast(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous = OFF")
            dbapi_connection.execute("PRAGMA cache_size = -1000000")

        sa_event.listen(database.engine, "connect", _fast)
    try:
        Base.metadata.create_all(database.engine)
    except OperationalError as exc:
        database.dispose()
        raise RuntimeError(f"cannot use the database: {exc.orig or exc}") from None
    try:
        yield database
    finally:
        database.dispose()
        if tmp:
            for name in os.listdir(tmp):
                os.remove(os.path.join(tmp, name))
            os.rmdir(tmp)


def _sqlite_ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _Writer:
    """Bulk rows into one table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, session: Any, table: str, columns: tuple[str, ...]) -> None:
        self.session, self.table, self.columns = session, table, columns
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.rows: list[tuple[Any, ...]] = []
        self.count = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        raw = self.session.connection().connection.driver_connection
        cols = ", ".join(self.columns)
        if self.pg:
            with raw.cursor() as cur, cur.copy(f"COPY {self.table} ({cols}) FROM STDIN") as copy:
                for row in self.rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in self.columns)
            rows = [tuple(_sqlite_ts(v) if isinstance(v, dt.datetime) else v for v in row) for row in self.rows]
            raw.executemany(f"INSERT INTO {self.table} ({cols}) VALUES ({marks})", rows)
        self.count += len(self.rows)
        self.rows = []


def generate(session: Any, *, customers: int, orders: int, now: dt.datetime) -> dict[str, Any]:
    """The bench merchant and its rows; returns ids and counts."""
    from siyu.core.auth import Role, system_principal
    from siyu.merchants import service as merchants

    started = time.perf_counter()
    merchant = merchants.create_merchant(session, slug=f"bench-a-{uuid.uuid4().hex[:8]}", name="分析基准品牌")
    system = system_principal(merchant.id)
    store_ids, guide_ids = [], []
    for s in range(STORES):
        store = merchants.create_store(session, actor=system, name=f"基准门店{s + 1}")
        store_ids.append(store.id)
        for g in range(GUIDES_PER_STORE):
            staff = merchants.create_staff(session, actor=system, username=f"{merchant.slug}-g{s}-{g}", password="",
                                           name=f"导购{s + 1}-{g + 1}", role=Role.GUIDE, store_id=store.id,
                                           password_hash="!")
            guide_ids.append(staff.id)
    admin = merchants.create_staff(session, actor=system, username=f"{merchant.slug}-admin", password="",
                                   name="基准管理员", role=Role.BRAND_ADMIN, password_hash="!")
    session.flush()
    mid = merchant.id
    stream = _Orders(customers, orders, now)

    # pass 1: each customer's stats
    n_paid = [0] * customers
    spent = [0] * customers
    refunded_sum = [0] * customers
    first: list[dt.datetime | None] = [None] * customers
    last: list[dt.datetime | None] = [None] * customers
    last_cents = [0] * customers
    max_cents = [0] * customers
    for idx, paid_at, total, refunded, *_rest in stream:
        n_paid[idx] += 1
        spent[idx] += total - refunded
        refunded_sum[idx] += refunded
        if first[idx] is None or paid_at < first[idx]:  # type: ignore[operator]
            first[idx] = paid_at
        if last[idx] is None or paid_at > last[idx]:  # type: ignore[operator]
            last[idx] = paid_at
            last_cents[idx] = total
        max_cents[idx] = max(max_cents[idx], total)

    rng = random.Random(SEED + 1)
    cols = ("merchant_id", "nickname", "name", "gender", "region", "notes", "avatar_url", "phone", "owner_id",
            "store_id", "created_at", "updated_at", "first_purchase_at", "last_purchase_at", "last_order_cents",
            "max_order_cents", "paid_orders", "total_spent_cents", "refunded_cents")
    w = _Writer(session, "customers", cols)
    owners: list[int | None] = []
    stores: list[int | None] = []
    for i in range(customers):
        g = rng.randrange(len(guide_ids)) if rng.random() < 0.9 else None
        owner = guide_ids[g] if g is not None else None
        store = store_ids[g // GUIDES_PER_STORE] if g is not None else None
        owners.append(owner)
        stores.append(store)
        created = first[i] - dt.timedelta(days=rng.randrange(30)) if first[i] else now - dt.timedelta(
            seconds=rng.randrange(400 * 86400))
        w.add((mid, f"顾客{i}", "", "", "", "", "", "", owner, store, created, created, first[i], last[i], last_cents[i],
               max_cents[i], n_paid[i], spent[i], refunded_sum[i]))
    w.flush()
    del first, last, last_cents, max_cents, n_paid, spent, refunded_sum
    ids = [r[0] for r in session.execute(text("SELECT id FROM customers WHERE merchant_id = :m ORDER BY id"), {"m": mid})]

    # pass 2: the same orders, and the funnel rows of the last FUNNEL_DAYS days
    ocols = ("merchant_id", "order_no", "customer_id", "owner_id", "store_id", "status", "kind", "fulfilment_type",
             "fulfilment", "carrier", "tracking_no", "subtotal_cents", "adjustments_cents", "shipping_cents",
             "total_cents", "payable_cents", "paid_cents", "refunded_cents", "adjustments", "payment_parts",
             "attribution", "note", "cancel_reason", "created_at", "updated_at", "paid_at")
    ow = _Writer(session, "orders", ocols)
    fcols = ("merchant_id", "kind", "at", "day", "customer_id", "visitor_id", "channel", "amount_cents")
    fw = _Writer(session, "attribution_funnel_events", fcols)
    funnel_since = now - dt.timedelta(days=FUNNEL_DAYS)
    frng = random.Random(SEED + 2)
    sh = dt.timezone(dt.timedelta(hours=8))
    for n, (idx, paid_at, total, refunded, ch, fulfilment, campaign) in enumerate(stream):
        cid = ids[idx]
        status = "refunded" if refunded == total else "completed"
        attribution = json.dumps({"channel": ch, "campaign": campaign, "guide_id": owners[idx], "store_id": stores[idx],
                                  "share_code": None, "touch_id": None, "sharer_staff_id": None,
                                  "sharer_customer_id": None, "referrer_customer_id": None, "live_id": None})
        ow.add((mid, f"BA{mid}-{n:010d}", cid, owners[idx], stores[idx], status, "goods", fulfilment, "{}", "", "",
                total, 0, 0, total, total, total, refunded, "[]", "[]", attribution, "", "",
                paid_at - dt.timedelta(minutes=2), paid_at, paid_at))
        if paid_at >= funnel_since:
            day = paid_at.astimezone(sh).date()
            fw.add((mid, 2, paid_at - dt.timedelta(minutes=10), day, cid, None, ch, 0))
            if frng.random() < 0.6:
                fw.add((mid, 3, paid_at - dt.timedelta(minutes=5), day, cid, None, ch, 0))
            for _k in range(3):  # visitors who only looked
                vid = f"bench-visitor-{frng.randrange(10 * customers):09d}"
                fw.add((mid, 1, paid_at, day, None, vid, ch, 0))
                if frng.random() < 0.5:
                    fw.add((mid, 2, paid_at, day, None, vid, ch, 0))
    ow.flush()
    fw.flush()

    # fission: 2% of the customers were brought by an earlier customer, through that customer's share
    ecols = ("merchant_id", "customer_id", "by_customer_id", "by_staff_id", "touch_id", "share_id", "campaign", "at")
    scols = ("merchant_id", "code", "target_type", "target_id", "sharer_staff_id", "sharer_customer_id", "channel",
             "campaign", "created_at")
    srng = random.Random(SEED + 3)
    sharers: dict[int, str] = {}
    sw = _Writer(session, "attribution_shares", scols)
    edges = []
    for i in range(1, customers):
        if srng.random() < 0.02:
            parent = srng.randrange(max(1, i))
            campaign = CAMPAIGNS[parent % len(CAMPAIGNS)]
            if parent not in sharers:
                sharers[parent] = campaign
                sw.add((mid, f"b{mid:x}z{parent:x}", "page", 0, None, ids[parent], "moments", campaign,
                        now - dt.timedelta(days=srng.randrange(365))))
            edges.append((ids[i], ids[parent], campaign, now - dt.timedelta(seconds=srng.randrange(365 * 86400))))
    sw.flush()
    share_ids = {row[1]: row[0] for row in session.execute(
        text("SELECT id, sharer_customer_id FROM attribution_shares WHERE merchant_id = :m"), {"m": mid})}
    ew = _Writer(session, "attribution_fission_edges", ecols)
    for child, parent, campaign, at in edges:
        ew.add((mid, child, parent, None, 0, share_ids.get(parent), campaign, at))
    ew.flush()
    tcols = ("merchant_id", "channel", "share_id", "sharer_customer_id", "target_type", "target_id", "campaign",
             "visitor_id", "customer_id", "at")
    tw = _Writer(session, "attribution_touches", tcols)
    for child, parent, campaign, at in edges:
        tw.add((mid, "moments", share_ids.get(parent), parent, "page", 0, campaign, None, child, at))
    tw.flush()
    session.flush()
    return {"merchant_id": mid, "admin_id": admin.id, "customers": customers, "orders": ow.count,
            "funnel_events": fw.count, "shares": sw.count, "fission_edges": ew.count,
            "generate_seconds": round(time.perf_counter() - started, 2)}


def _day_sql(dialect: str, column: str) -> str:
    # Shanghai has had no daylight saving since 1991: UTC+8 is exact.
    if dialect == "postgresql":
        return f"(({column} AT TIME ZONE 'UTC') + interval '8 hours')::date"
    return f"date({column}, '+8 hours')"


def _json_sql(dialect: str, column: str, key: str) -> str:
    return f"({column} ->> '{key}')" if dialect == "postgresql" else f"json_extract({column}, '$.{key}')"


def naive_queries(dialect: str) -> dict[str, list[str]]:
    """The same figures as plain SQL over the raw rows (no aggregate tables), per view."""
    day = _day_sql(dialect, "paid_at")
    ch = _json_sql(dialect, "attribution", "channel")
    month = (f"date_trunc('month', {day})" if dialect == "postgresql" else f"strftime('%Y-%m', {day})")
    first_month = month.replace("paid_at", "first_at")
    window = "merchant_id = :m AND paid_at >= :since AND paid_at < :until AND kind = 'goods'"
    return {
        "gmv": [
            f"SELECT {day} AS d, COUNT(*), COUNT(DISTINCT customer_id), SUM(total_cents), SUM(refunded_cents) "
            f"FROM orders WHERE {window} GROUP BY d",
            "SELECT day, COUNT(DISTINCT COALESCE(CAST(customer_id AS TEXT), visitor_id)) FROM attribution_funnel_events "
            "WHERE merchant_id = :m AND day >= :d0 AND day <= :d1 GROUP BY day",
        ],
        "channel_mix": [
            f"SELECT {ch} AS ch, fulfilment_type, COUNT(*), SUM(total_cents - refunded_cents) FROM orders "
            f"WHERE {window} GROUP BY ch, fulfilment_type",
        ],
        "rfm": [
            "WITH agg AS (SELECT customer_id, MAX(paid_at) AS last_at, COUNT(*) AS n, SUM(total_cents - refunded_cents) "
            "AS m FROM orders WHERE merchant_id = :m AND paid_at IS NOT NULL AND paid_at < :until "
            "AND total_cents > refunded_cents GROUP BY customer_id), "
            "scored AS (SELECT NTILE(5) OVER (ORDER BY last_at) AS r, NTILE(5) OVER (ORDER BY n) AS f, "
            "NTILE(5) OVER (ORDER BY m) AS mm, m FROM agg) "
            "SELECT r, f, mm, COUNT(*), SUM(m) FROM scored GROUP BY r, f, mm",
        ],
        "funnel": [
            "SELECT kind, COUNT(DISTINCT COALESCE(CAST(customer_id AS TEXT), visitor_id)) FROM attribution_funnel_events "
            "WHERE merchant_id = :m AND day >= :d0 AND day <= :d1 GROUP BY kind",
            f"SELECT COUNT(DISTINCT customer_id) FROM orders WHERE {window}",
            f"SELECT COUNT(*) FROM (SELECT o.customer_id FROM orders o WHERE o.merchant_id = :m AND o.paid_at < :until "
            f"AND o.customer_id IN (SELECT customer_id FROM orders WHERE {window}) GROUP BY o.customer_id "
            f"HAVING COUNT(*) >= 2) x",
        ],
        "fission": [
            "SELECT campaign, COUNT(*), COUNT(DISTINCT by_customer_id) FROM attribution_fission_edges "
            "WHERE merchant_id = :m AND at >= :since AND at < :until GROUP BY campaign",
            "SELECT share_id, COUNT(*) FROM attribution_touches WHERE merchant_id = :m AND at >= :since AND at < :until "
            "AND share_id IS NOT NULL GROUP BY share_id",
            "SELECT customer_id, by_customer_id FROM attribution_fission_edges WHERE merchant_id = :m AND at < :until "
            "AND by_customer_id IS NOT NULL",
        ],
        "cohorts": [
            f"WITH firsts AS (SELECT customer_id, MIN(paid_at) AS first_at FROM orders WHERE merchant_id = :m "
            f"AND paid_at IS NOT NULL AND paid_at < :until AND total_cents > refunded_cents GROUP BY customer_id) "
            f"SELECT {first_month} AS cm, {month} AS om, COUNT(DISTINCT o.customer_id) FROM orders o "
            f"JOIN firsts f ON f.customer_id = o.customer_id WHERE o.merchant_id = :m AND o.paid_at < :until "
            f"AND o.total_cents > o.refunded_cents AND f.first_at >= :year_ago GROUP BY cm, om",
        ],
        "leaderboard": [
            f"SELECT owner_id, COUNT(*), SUM(total_cents - refunded_cents) FROM orders WHERE {window} GROUP BY owner_id",
            "SELECT owner_id, COUNT(*), SUM(CASE WHEN paid_orders >= 2 THEN 1 ELSE 0 END) FROM customers "
            "WHERE merchant_id = :m AND merged_into_id IS NULL GROUP BY owner_id",
        ],
    }


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        el = time.perf_counter() - t
        best = el if best is None or el < best else best
    return round(best or 0.0, 3)


def run(*, customers: int = 1_000_000, orders: int = 10_000_000, database_url: str | None = None,
        days: int = 30, repeat: int = 1) -> dict[str, Any]:
    from siyu.analytics import service as analytics
    from siyu.analytics.service import aggregates
    from siyu.core import clock
    from siyu.merchants import service as merchants
    from siyu.merchants.models import Staff

    now = clock.now()
    with _database(database_url) as database:
        dialect = database.dialect
        with database.scope() as session:
            data = generate(session, customers=customers, orders=orders, now=now)
        with database.scope() as session:
            # the aggregates from the bulk-filled source tables, as `siyu analytics rebuild` does
            data["rebuild"] = aggregates.rebuild(session, merchant_id=data["merchant_id"])
            data["rebuild_seconds"] = data["rebuild"]["seconds"]
        with database.scope() as session:
            if dialect == "postgresql":
                for table in ("orders", "customers", "attribution_funnel_events", "attribution_fission_edges",
                              "attribution_touches", "attribution_shares", "analytics_daily_sales",
                              "analytics_customer_stats"):
                    session.execute(text(f"ANALYZE {table}"))
            else:
                session.execute(text("ANALYZE"))
        with database.scope() as session:
            admin = merchants.principal_for(session, session.get(Staff, data["admin_id"]))
            f = analytics.make_filters(default_days=days)
            year = analytics.make_filters(default_days=365)
            views: dict[str, Callable[[], Any]] = {
                "gmv": lambda: analytics.decompose(session, actor=admin, filters=f),
                "channel_mix": lambda: analytics.channel_mix(session, actor=admin, filters=f),
                "rfm": lambda: analytics.rfm(session, actor=admin, filters=f),
                "funnel": lambda: analytics.funnel(session, actor=admin, filters=f),
                "fission": lambda: analytics.fission(session, actor=admin, filters=f),
                "cohorts": lambda: analytics.cohorts(session, actor=admin, filters=year),
                "leaderboard": lambda: analytics.leaderboard(session, actor=admin, filters=f),
            }
            params = {"m": data["merchant_id"], "since": f.since, "until": f.until, "d0": f.start, "d1": f.end,
                      "year_ago": year.since}
            queries = naive_queries(dialect)
            results = {}
            for name, fn in views.items():
                service_s = _timed(fn, repeat)

                def naive(name: str = name) -> None:
                    for sql in queries[name]:
                        session.execute(text(sql), params).fetchall()

                results[name] = {"service_seconds": service_s, "naive_sql_seconds": _timed(naive, repeat),
                                 "under_2s": service_s < 2.0}
    return {"benchmark": "analytics", "database": dialect, "period_days": days, "data": data, "views": results,
            "note": "service_seconds: the analytics service as the console calls it (admin, whole merchant); "
                    "naive_sql_seconds: the same figures as plain SQL over the raw rows. Best of --repeat runs."}


def dumps(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    json.dump(report, buf, ensure_ascii=False, indent=2, default=str)
    return buf.getvalue()
