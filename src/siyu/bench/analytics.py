"""`siyu bench analytics`: a deterministic merchant with N customers and M paid orders over a year, then
every analytics view timed as the console computes it (the analytics services, admin scope, the last 30
Shanghai days) next to the same computation written as plain SQL over the raw rows ("naive").

Generation is one pass over a seeded random stream of orders, written in bulk (COPY text on PostgreSQL,
executemany with the constant columns inlined on SQLite) with the filled tables' secondary indexes (and,
on PostgreSQL, foreign keys) dropped and recreated afterwards; each customer's purchase stats are then
set from its orders by one set-based UPDATE. Funnel events are written for the last 60 days (two periods),
shares and fission edges for 2% of the customers. The schema comes from the models (`create_all`), on a
temporary SQLite file unless --keep or --database-url is given (PostgreSQL: a new bench merchant each
run; nothing is wiped).

Generated data can be kept and timed again (`--reuse`): the source rows stay, the derived `analytics_*`
tables are dropped and recreated from the current models, any column the models gained is added to the
kept tables, and the aggregates are rebuilt before the views are timed, so a 10,000,000-order data set
is generated once and re-timed after every change to the analytics code.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import functools
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, literal, text
from sqlalchemy.exc import OperationalError

SEED = 2026
CHANNELS = ("store_qr", "guide_qr", "chat", "moments", "community", "live", "oa", "search", "direct", None)
CHANNEL_WEIGHTS = (14, 12, 8, 6, 8, 9, 4, 6, 13, 20)
CAMPAIGNS = ("spring", "618", "double11", "members-day", "new-arrivals")

VARIANT_HELP = {
    "store": "the brand admin, one store (the first)",
    "guide": "the brand admin, one guide's customers (the first guide)",
    "as_guide": "signed in as that guide (their own customers)",
    "group": "the brand admin, the social channel group",
    "channel": "the brand admin, the moments touch channel",
    "campaign": "the brand admin, the first bench campaign",
    "past": "the brand admin, the same length of period ending 60 days before today",
}
VARIANTS = tuple(VARIANT_HELP)
PAST_BACK = dt.timedelta(days=60)  # the "past" variant: the period this many days earlier
FUNNEL_DAYS = 60
STORES = 10
GUIDES_PER_STORE = 5
BATCH = 50_000
YEAR_S = 365 * 86400
# The bench merchant's slug starts with this: --reuse finds the latest one by it.
MARKER = "bench-a-"
# The tables generate() fills in bulk (their secondary indexes are rebuilt once, after the fill).
BULK_TABLES = ("customers", "orders", "attribution_funnel_events", "attribution_shares",
               "attribution_fission_edges", "attribution_touches")
VIEWS = ("gmv", "channel_mix", "rfm", "funnel", "fission", "cohorts", "leaderboard")


class _Orders:
    """The seeded stream of orders: (customer index, paid_at as epoch seconds, total, refunded, channel,
    fulfilment, campaign). Customers are skewed (a few buy often) by drawing the index from a squared
    uniform; 2% of the orders are refunded whole and 3% half; 30% carry one of five campaigns."""

    def __init__(self, customers: int, orders: int, now: dt.datetime | int) -> None:
        self.customers, self.orders = customers, orders
        self.now_s = now if isinstance(now, int) else int(now.timestamp())

    def __iter__(self) -> Iterator[tuple[int, int, int, int, str | None, str, str | None]]:
        rnd = random.Random(SEED).random
        cum, weight = [], 0
        for w in CHANNEL_WEIGHTS:
            weight += w
            cum.append(weight / sum(CHANNEL_WEIGHTS))
        cum[-1] = 2.0  # never past the last channel through rounding
        customers, now_s, channels, campaigns, bisect_right = self.customers, self.now_s, CHANNELS, CAMPAIGNS, \
            bisect.bisect_right
        for _i in range(self.orders):
            r = rnd()
            idx = int(customers * r * r)
            paid = now_s - int(rnd() * YEAR_S)
            total = (100 + int(rnd() * 4900)) * 10
            x = rnd()
            refunded = total if x < 0.02 else (total // 2 if x < 0.05 else 0)
            ch = channels[bisect_right(cum, rnd())]
            f = rnd()
            fulfilment = "pickup" if f < 0.2 else ("leader" if f < 0.25 else "delivery")
            campaign = campaigns[int(rnd() * 5)] if rnd() < 0.3 else None
            yield idx, paid, total, refunded, ch, fulfilment, campaign


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _progress(message: str) -> None:
    """One line on stderr per step (the JSON report goes to stdout): a long run shows where it is."""
    print(f"[bench analytics {time.strftime('%H:%M:%S')} load {_load()}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _database(database_url: str | None, *, keep: Path | None = None, reuse: bool = False) -> Iterator[Any]:
    """The bench database: a temporary SQLite file (removed afterwards), the SQLite file --keep names
    (kept), or --database-url. A bench SQLite file is filled for speed over durability (no journal, no
    sync, no foreign-key checks while generating): it holds nothing but bench data."""
    from siyu.db import Base, Database, import_all_models

    import_all_models()
    tmp = None
    if keep is not None and database_url is not None:
        raise RuntimeError("--keep names an SQLite file; with --database-url the bench merchant is kept anyway")
    if keep is not None:
        keep = Path(keep).absolute()
        if reuse and not keep.exists():
            raise RuntimeError(f"--reuse: {keep} does not exist; generate it first with --keep")
        if not reuse and keep.exists():
            raise RuntimeError(f"{keep} exists; time it with --reuse, or remove it to generate again")
        keep.parent.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{keep}"
    elif database_url is None:
        if reuse:
            raise RuntimeError("--reuse needs --keep (SQLite) or --database-url")
        tmp = tempfile.mkdtemp(prefix="siyu-bench-analytics-")
        database_url = f"sqlite:///{tmp}/bench.db"
    database = Database(database_url)
    if database.dialect == "sqlite":

        def _fast(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous = OFF")
            dbapi_connection.execute("PRAGMA cache_size = -1000000")
            dbapi_connection.execute("PRAGMA temp_store = MEMORY")
            if not reuse:
                dbapi_connection.execute("PRAGMA journal_mode = OFF")
                dbapi_connection.execute("PRAGMA foreign_keys = OFF")

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


def refresh_schema(connection: Any, *, recreate_derived: bool = True) -> dict[str, Any]:
    """Bring a kept bench database to the current models without touching its source rows: drop and
    recreate the derived `analytics_*` tables (unless `recreate_derived` is off: aggregates rebuilt by an
    earlier run are kept), create missing tables, add each column a kept table lacks (with its default,
    so existing rows get a value; NOT NULL only where a default exists) and each missing index."""
    from sqlalchemy.schema import CreateIndex

    from siyu.db import Base

    dialect = connection.dialect
    existing = set(inspect(connection).get_table_names())
    derived = [t for t in Base.metadata.sorted_tables if t.name.startswith("analytics_")] if recreate_derived else []
    Base.metadata.drop_all(connection, tables=[t for t in derived if t.name in existing])
    Base.metadata.create_all(connection)
    insp = inspect(connection)
    added, indexes, changed = [], [], set()
    for table in Base.metadata.sorted_tables:
        if table.name not in existing or table in derived:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name in have:
                continue
            spec = f"{dialect.identifier_preparer.quote(col.name)} {col.type.compile(dialect=dialect)}"
            default = None
            if col.server_default is not None and isinstance(getattr(col.server_default, "arg", None), str):
                default = literal(col.server_default.arg)
            elif col.server_default is not None:
                default = col.server_default.arg  # a text() clause
            elif col.default is not None and col.default.is_scalar:
                default = literal(col.default.arg)
            if default is not None:
                spec += " DEFAULT " + str(default.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                if not col.nullable:
                    spec += " NOT NULL"
            connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))
            added.append(f"{table.name}.{col.name}")
            changed.add(table.name)
        names = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in names:
                connection.execute(CreateIndex(index))
                indexes.append(index.name)
                changed.add(table.name)
    return {"recreated": sorted(t.name for t in derived), "added_columns": added, "created_indexes": indexes,
            "changed_tables": sorted(changed)}


class _BulkLoad:
    """Drop the secondary (non-unique) indexes of the bulk-filled tables, and on PostgreSQL their
    foreign keys, for the fill; `restore` recreates exactly what was dropped (one sort per index and one
    validating join per key, instead of a B-tree insert and a trigger per row)."""

    def __init__(self, connection: Any) -> None:
        from siyu.db import Base

        self.connection = connection
        self.indexes: list[Any] = []
        self.foreign_keys: list[Any] = []
        insp = inspect(connection)
        for name in BULK_TABLES:
            table = Base.metadata.tables[name]
            present = {ix["name"] for ix in insp.get_indexes(name)}
            self.indexes += [ix for ix in table.indexes if not ix.unique and ix.name in present]
            if connection.dialect.name == "postgresql":
                keys = {fk["name"] for fk in insp.get_foreign_keys(name)}
                self.foreign_keys += [fk for fk in table.foreign_key_constraints if fk.name in keys]

    def drop(self) -> None:
        from sqlalchemy.schema import DropConstraint, DropIndex

        for fk in self.foreign_keys:
            self.connection.execute(DropConstraint(fk))
        for index in self.indexes:
            self.connection.execute(DropIndex(index))

    def restore(self) -> None:
        from sqlalchemy.schema import AddConstraint, CreateIndex

        if self.connection.dialect.name == "postgresql":  # sort each index in memory, not in temp files
            self.connection.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for index in self.indexes:
            self.connection.execute(CreateIndex(index))
        for fk in self.foreign_keys:
            self.connection.execute(AddConstraint(fk))


class _Sink:
    """Rows of one table in batches: COPY text lines on PostgreSQL, executemany of a statement with the
    constant columns inlined on SQLite."""

    def __init__(self, session: Any, table: str, columns: str, sqlite_values: str) -> None:
        self.raw = session.connection().connection.driver_connection
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        self.insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({sqlite_values})"
        self.rows: list[Any] = []
        self.count = 0

    def flush(self) -> None:
        if not self.rows:
            return
        if self.pg:
            with self.raw.cursor() as cur, cur.copy(self.copy_sql) as copy:
                copy.write("".join(self.rows))
        else:
            self.raw.executemany(self.insert_sql, self.rows)
        self.count += len(self.rows)
        self.rows = []


class _Clock:
    """Epoch seconds as the database's text for a UTC timestamp (and Shanghai dates), from two lookup
    tables instead of a datetime object per value."""

    def __init__(self, now_s: int, pg: bool, days_back: int = 800) -> None:
        self.base = now_s - now_s % 86400 - days_back * 86400
        start = dt.datetime.fromtimestamp(self.base, dt.UTC).date()
        dates = [(start + dt.timedelta(days=d)).isoformat() for d in range(days_back + 2)]
        suffix = "+00" if pg else ".000000"
        self.days = [d + " " for d in dates]
        self.hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in range(86400)]
        self.dates = dates

    def ts(self, epoch: int) -> str:
        d, s = divmod(epoch - self.base, 86400)
        return self.days[d] + self.hms[s]

    def shanghai_date(self, epoch: int) -> str:
        return self.dates[(epoch + 8 * 3600 - self.base) // 86400]


def _json_value(value: int | str | None) -> str:
    return "null" if value is None else (str(value) if isinstance(value, int) else f'"{value}"')


def generate(session: Any, *, customers: int, orders: int, now: dt.datetime, bulk: bool = False) -> dict[str, Any]:
    """The bench merchant and its rows; returns ids, counts and rows per second. `bulk` (a database that
    holds bench data only) drops the filled tables' secondary indexes and foreign keys for the fill."""
    from siyu.core.auth import Role, system_principal
    from siyu.merchants import service as merchants

    started = time.perf_counter()
    merchant = merchants.create_merchant(session, slug=f"{MARKER}{uuid.uuid4().hex[:8]}", name="分析基准品牌")
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
    connection = session.connection()
    pg = connection.dialect.name == "postgresql"
    load = _BulkLoad(connection) if bulk else None
    if load:
        load.drop()
    now_s = int(now.timestamp())
    clock = _Clock(now_s, pg)
    null = "\\N" if pg else None
    timings: dict[str, float] = {}

    # customers (their purchase stats are set from the orders below)
    t0 = time.perf_counter()
    rnd = random.Random(SEED + 1).random
    cw = _Sink(session, "customers", "merchant_id, nickname, name, gender, region, notes, avatar_url, phone, "
               "owner_id, store_id, created_at, updated_at, last_order_cents, max_order_cents, paid_orders, "
               "total_spent_cents, refunded_cents",
               f"{mid}, ?1, '', '', '', '', '', '', ?2, ?3, ?4, ?4, 0, 0, 0, 0, 0")
    owners: list[int | None] = []
    stores: list[int | None] = []
    guides = len(guide_ids)
    for i in range(customers):
        g = int(rnd() * guides) if rnd() < 0.9 else None
        owner = guide_ids[g] if g is not None else None
        store = store_ids[g // GUIDES_PER_STORE] if g is not None else None
        owners.append(owner)
        stores.append(store)
        created = clock.ts(now_s - int(rnd() * 400 * 86400))
        if pg:
            cw.rows.append(f"{mid}\t顾客{i}\t\t\t\t\t\t\t{null if owner is None else owner}\t"
                           f"{null if store is None else store}\t{created}\t{created}\t0\t0\t0\t0\t0\n")
        else:
            cw.rows.append((f"顾客{i}", owner, store, created))
        if len(cw.rows) >= BATCH:
            cw.flush()
    cw.flush()
    ids = [r[0] for r in session.execute(text("SELECT id FROM customers WHERE merchant_id = :m ORDER BY id"), {"m": mid})]
    timings["customers"] = time.perf_counter() - t0

    # the orders, and the funnel rows of the last FUNNEL_DAYS days, in one pass
    t0 = time.perf_counter()
    owner_txt = [null if o is None else o for o in owners]
    store_txt = [null if s is None else s for s in stores]
    # the attribution snapshot as json.dumps writes it, from a (channel, campaign) head and a customer tail
    attr_head = {(c, k): f'{{"channel": {_json_value(c)}, "campaign": {_json_value(k)}, '
                 for c in CHANNELS for k in (*CAMPAIGNS, None)}
    attr_tail = [f'"guide_id": {_json_value(o)}, "store_id": {_json_value(s)}, "share_code": null, "touch_id": null, '
                 f'"sharer_staff_id": null, "sharer_customer_id": null, "referrer_customer_id": null, "live_id": null}}'
                 for o, s in zip(owners, stores, strict=True)]
    del owners, stores
    channel_txt = {c: null if c is None else c for c in CHANNELS}
    ow = _Sink(session, "orders", "merchant_id, order_no, customer_id, owner_id, store_id, status, kind, "
               "fulfilment_type, fulfilment, carrier, tracking_no, subtotal_cents, adjustments_cents, shipping_cents, "
               "total_cents, payable_cents, paid_cents, refunded_cents, adjustments, payment_parts, attribution, note, "
               "cancel_reason, created_at, updated_at, paid_at",
               f"{mid}, ?1, ?2, ?3, ?4, ?5, 'goods', ?6, '{{}}', '', '', ?7, 0, 0, ?7, ?7, ?7, ?8, '[]', '[]', ?9, "
               f"'', '', ?10, ?11, ?11")
    fw = _Sink(session, "attribution_funnel_events", "merchant_id, kind, at, day, customer_id, visitor_id, channel, "
               "amount_cents", f"{mid}, ?, ?, ?, ?, ?, ?, 0")
    funnel_since = now_s - FUNNEL_DAYS * 86400
    frnd = random.Random(SEED + 2).random
    visitors = 10 * customers
    ts = clock.ts
    for n, (idx, paid, total, refunded, ch, fulfilment, campaign) in enumerate(_Orders(customers, orders, now_s)):
        cid = ids[idx]
        status = "refunded" if refunded == total else "completed"
        attribution = attr_head[ch, campaign] + attr_tail[idx]
        paid_ts, created_ts = ts(paid), ts(paid - 120)
        if pg:
            ow.rows.append(f"{mid}\tBA{mid}-{n:010d}\t{cid}\t{owner_txt[idx]}\t{store_txt[idx]}\t{status}\tgoods\t"
                           f"{fulfilment}\t{{}}\t\t\t{total}\t0\t0\t{total}\t{total}\t{total}\t{refunded}\t[]\t[]\t"
                           f"{attribution}\t\t\t{created_ts}\t{paid_ts}\t{paid_ts}\n")
        else:
            ow.rows.append((f"BA{mid}-{n:010d}", cid, owner_txt[idx], store_txt[idx], status, fulfilment, total,
                            refunded, attribution, created_ts, paid_ts))
        if len(ow.rows) >= BATCH:
            ow.flush()
        if paid >= funnel_since:
            day = clock.shanghai_date(paid)
            c = channel_txt[ch]
            events = [(2, ts(paid - 600), cid, null)]
            if frnd() < 0.6:
                events.append((3, ts(paid - 300), cid, null))
            for _k in range(3):  # visitors who only looked
                vid = f"bench-visitor-{int(frnd() * visitors):09d}"
                events.append((1, paid_ts, null, vid))
                if frnd() < 0.5:
                    events.append((2, paid_ts, null, vid))
            if pg:
                fw.rows += [f"{mid}\t{k}\t{at}\t{day}\t{who}\t{vid}\t{c}\t0\n" for k, at, who, vid in events]
            else:
                fw.rows += [(k, at, day, who, vid, c) for k, at, who, vid in events]
            if len(fw.rows) >= BATCH:
                fw.flush()
    ow.flush()
    fw.flush()
    del attr_tail, owner_txt, store_txt
    timings["orders_and_funnel"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if ids:  # before the indexes are back: one hash or sort aggregate, no index upkeep per updated row
        _set_purchase_stats(session, mid, ids[0])
    timings["customer_stats"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if load:
        load.restore()
    timings["indexes"] = time.perf_counter() - t0

    # fission: 2% of the customers were brought by an earlier customer, through that customer's share
    t0 = time.perf_counter()
    shares, edges = _fission(session, mid, ids, now)
    timings["fission"] = time.perf_counter() - t0
    session.flush()
    seconds = time.perf_counter() - started
    rows = customers + ow.count + fw.count + shares + 2 * edges
    return {"merchant_id": mid, "admin_id": admin.id, "customers": customers, "orders": ow.count,
            "funnel_events": fw.count, "shares": shares, "fission_edges": edges,
            "generate_seconds": round(seconds, 2), "generate_rows_per_second": round(rows / seconds),
            "generate_steps_seconds": {k: round(v, 2) for k, v in timings.items()}}


def _set_purchase_stats(session: Any, mid: int, first_id: int) -> None:
    """Each buyer's purchase stats (as the orders domain keeps them) from its orders, in one UPDATE; a
    buyer joined up to 29 days (by its index among the customers) before its first purchase."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "UPDATE customers AS c SET paid_orders = s.n, total_spent_cents = s.kept, refunded_cents = s.ref, "
            "first_purchase_at = s.first_at, last_purchase_at = s.last_at, max_order_cents = s.mx, "
            "last_order_cents = s.lc, created_at = s.first_at - ((c.id - :first) % 30) * interval '1 day', "
            "updated_at = s.first_at - ((c.id - :first) % 30) * interval '1 day' "
            "FROM (SELECT customer_id, COUNT(*) AS n, SUM(total_cents - refunded_cents) AS kept, "
            "SUM(refunded_cents) AS ref, MIN(paid_at) AS first_at, MAX(paid_at) AS last_at, MAX(total_cents) AS mx, "
            "(MAX(ARRAY[EXTRACT(EPOCH FROM paid_at)::bigint, total_cents]))[2] AS lc FROM orders WHERE merchant_id = :m "
            "GROUP BY customer_id) AS s WHERE c.id = s.customer_id"), {"m": mid, "first": first_id})
        return
    # SQLite: the latest order's total rides along the MAX of "paid_at + zero-padded total" (paid_at is
    # fixed-width text), so one scan of the orders gives every figure
    session.execute(text(
        "UPDATE customers SET paid_orders = s.n, total_spent_cents = s.kept, refunded_cents = s.ref, "
        "first_purchase_at = s.first_at, last_purchase_at = substr(s.last_key, 1, length(s.first_at)), "
        "max_order_cents = s.mx, last_order_cents = CAST(substr(s.last_key, length(s.first_at) + 1) AS INTEGER), "
        "created_at = datetime(s.first_at, '-' || ((customers.id - :first) % 30) || ' days') || '.000000', "
        "updated_at = datetime(s.first_at, '-' || ((customers.id - :first) % 30) || ' days') || '.000000' "
        "FROM (SELECT customer_id, COUNT(*) AS n, SUM(total_cents - refunded_cents) AS kept, "
        "SUM(refunded_cents) AS ref, MIN(paid_at) AS first_at, MAX(total_cents) AS mx, "
        "MAX(paid_at || printf('%012d', total_cents)) AS last_key FROM orders WHERE merchant_id = :m "
        "GROUP BY customer_id) AS s WHERE customers.id = s.customer_id"), {"m": mid, "first": first_id})


def _fission(session: Any, mid: int, ids: list[int], now: dt.datetime) -> tuple[int, int]:
    """Shares, fission edges and the touches through them: 2% of the customers were brought by an
    earlier customer. Returns (shares, edges)."""
    from siyu.db import Base

    shares_t, edges_t, touches_t = (Base.metadata.tables[t] for t in (
        "attribution_shares", "attribution_fission_edges", "attribution_touches"))
    srng = random.Random(SEED + 3)
    sharers: dict[int, str] = {}
    share_rows, edges = [], []
    for i in range(1, len(ids)):
        if srng.random() < 0.02:
            parent = srng.randrange(max(1, i))
            campaign = CAMPAIGNS[parent % len(CAMPAIGNS)]
            if parent not in sharers:
                sharers[parent] = campaign
                share_rows.append({"merchant_id": mid, "code": f"b{mid:x}z{parent:x}", "target_type": "page",
                                   "target_id": 0, "sharer_staff_id": None, "sharer_customer_id": ids[parent],
                                   "channel": "moments", "campaign": campaign,
                                   "created_at": now - dt.timedelta(days=srng.randrange(365))})
            edges.append((ids[i], ids[parent], campaign, now - dt.timedelta(seconds=srng.randrange(365 * 86400))))
    for start in range(0, len(share_rows), BATCH):
        session.execute(shares_t.insert(), share_rows[start:start + BATCH])
    share_ids = {row[1]: row[0] for row in session.execute(
        text("SELECT id, sharer_customer_id FROM attribution_shares WHERE merchant_id = :m"), {"m": mid})}
    edge_rows = [{"merchant_id": mid, "customer_id": child, "by_customer_id": parent, "by_staff_id": None,
                  "touch_id": 0, "share_id": share_ids.get(parent), "campaign": campaign, "at": at}
                 for child, parent, campaign, at in edges]
    touch_rows = [{"merchant_id": mid, "channel": "moments", "share_id": share_ids.get(parent),
                   "sharer_customer_id": parent, "target_type": "page", "target_id": 0, "campaign": campaign,
                   "visitor_id": None, "customer_id": child, "at": at} for child, parent, campaign, at in edges]
    for start in range(0, len(edges), BATCH):
        session.execute(edges_t.insert(), edge_rows[start:start + BATCH])
        session.execute(touches_t.insert(), touch_rows[start:start + BATCH])
    return len(share_rows), len(edges)


def find_generated(session: Any, merchant_id: int | None = None) -> dict[str, Any]:
    """A bench merchant generated before (the latest one, unless `merchant_id`), its admin and row counts."""
    from siyu.merchants.models import Merchant, Staff

    if merchant_id is None:
        merchant_id = session.scalar(text("SELECT id FROM merchants WHERE slug LIKE :p ORDER BY id DESC LIMIT 1"),
                                     {"p": f"{MARKER}%"})
        if merchant_id is None:
            raise RuntimeError("--reuse: no generated bench merchant in this database")
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.slug.startswith(MARKER):
        raise RuntimeError(f"--reuse: merchant {merchant_id} is not a generated bench merchant")
    admin = session.scalar(text("SELECT id FROM staff WHERE merchant_id = :m AND username = :u"),
                           {"m": merchant_id, "u": f"{merchant.slug}-admin"})
    if admin is None or session.get(Staff, admin) is None:
        raise RuntimeError(f"--reuse: merchant {merchant_id} has no bench admin")

    def count(table: str) -> int:
        return int(session.scalar(text(f"SELECT COUNT(*) FROM {table} WHERE merchant_id = :m"), {"m": merchant_id}))

    return {"merchant_id": merchant_id, "admin_id": admin, "customers": count("customers"),
            "orders": count("orders"), "funnel_events": count("attribution_funnel_events"),
            "shares": count("attribution_shares"), "fission_edges": count("attribution_fission_edges")}


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



def _analyze(session: Any, tables: list[str] | None = None) -> None:
    """Planner statistics for these tables (default: every table the bench fills or rebuilds)."""
    from siyu.db import Base

    if tables is None:
        tables = [*BULK_TABLES, *(t for t in Base.metadata.tables if t.startswith("analytics_"))]
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))


def run(*, customers: int = 1_000_000, orders: int = 10_000_000, database_url: str | None = None,
        days: int = 30, repeat: int = 1, keep: Path | None = None, reuse: bool = False,
        merchant_id: int | None = None, generate_only: bool = False, skip_naive: bool = False,
        views: tuple[str, ...] = VIEWS, rebuild: bool = True, variants: tuple[str, ...] = VARIANTS
        ) -> dict[str, Any]:
    """Generate (or with `reuse`, find) the bench merchant, rebuild its aggregates and time the views.
    `keep` is the SQLite file to generate into or reuse; on PostgreSQL the merchant always stays.
    `rebuild` off (with `reuse`) keeps the aggregates an earlier run rebuilt and times the views only."""
    from siyu.analytics import service as analytics
    from siyu.analytics.service import aggregates, people
    from siyu.analytics.service.rfm import snapshot_days, write_snapshot
    from siyu.core import clock
    from siyu.db import Base
    from siyu.merchants import service as merchants
    from siyu.merchants.models import Staff

    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise RuntimeError(f"unknown views: {', '.join(unknown)} (known: {', '.join(VIEWS)})")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise RuntimeError(f"unknown variants: {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    load: dict[str, list[float]] = {"start": _load()}
    now = clock.now()
    with _database(database_url, keep=keep, reuse=reuse) as database:
        dialect = database.dialect
        if reuse:
            _progress("bringing the kept database to the current models")
            with database.engine.begin() as connection:
                schema = refresh_schema(connection, recreate_derived=rebuild)
            _progress(f"schema: {schema}")
            with database.scope() as session:
                data = find_generated(session, merchant_id)
            data["schema"] = schema
        else:
            _progress(f"generating {customers} customers, {orders} orders")
            with database.scope() as session:
                data = generate(session, customers=customers, orders=orders, now=now, bulk=True)
            load["generated"] = _load()
            _progress(f"generated in {data['generate_seconds']} s")
        if keep is not None:
            data["file"] = str(Path(keep).absolute())
        if not reuse:
            with database.scope() as session:
                _analyze(session, list(BULK_TABLES))
        if generate_only:
            return {"benchmark": "analytics", "database": dialect, "data": data, "load_average": load}
        if rebuild or not reuse:
            _progress(f"rebuilding the aggregates of merchant {data['merchant_id']}")
            started = time.perf_counter()
            with database.scope() as session:
                # the aggregates from the bulk-filled source tables, as `siyu analytics rebuild` does
                data["rebuild"] = aggregates.rebuild(session, merchant_id=data["merchant_id"])
            data["rebuild_seconds"] = round(time.perf_counter() - started, 2)  # with its commit
            load["rebuilt"] = _load()
            _progress(f"rebuilt in {data['rebuild_seconds']} s")
        else:
            data["rebuild"] = data["rebuild_seconds"] = None  # the aggregates of an earlier run
        # the job's provisional rows of today so far (it runs every tick in production; after an earlier
        # run's rebuild it brings them up to date, or writes the whole day when the day changed)
        started = time.perf_counter()
        with database.scope() as session:
            aggregates.advance_people(session, today=clock.today_local())  # days since an earlier rebuild
            data["today_rows"] = people.fold_today(session, merchant_id=data["merchant_id"], now=clock.now())
        data["today_fold_seconds"] = round(time.perf_counter() - started, 2)
        _progress(f"today's people so far: {data['today_rows']} rows in {data['today_fold_seconds']} s")
        if "rfm" in views:
            # the nightly job's RFM snapshots (`advance_snapshots` keeps the last 62 days) of the days the
            # timed RFM views read: the day before the period (the trend), and for the period 60 days back
            # its end day and the day before it; each written when missing
            period = analytics.make_filters(default_days=days)
            wanted = {period.start - dt.timedelta(days=1)}
            if "past" in variants:
                wanted |= {period.start - PAST_BACK - dt.timedelta(days=1), period.end - PAST_BACK}
            data["rfm_snapshot_seconds"] = {}
            with database.scope() as session:
                have = snapshot_days(session, merchant_id=data["merchant_id"], since=min(wanted))
            for day in sorted(wanted - have):
                started = time.perf_counter()
                with database.scope() as session:
                    write_snapshot(session, merchant_id=data["merchant_id"], day=day)
                data["rfm_snapshot_seconds"][str(day)] = round(time.perf_counter() - started, 2)
                _progress(f"RFM snapshot of {day} written in {data['rfm_snapshot_seconds'][str(day)]} s")
        # statistics for what changed since the source tables were analyzed after generation
        changed = list(data["schema"]["changed_tables"]) if reuse else []
        if rebuild or not reuse:
            changed += [t for t in Base.metadata.tables if t.startswith("analytics_")]
        started = time.perf_counter()
        if dialect == "postgresql" and changed:
            # VACUUM as autovacuum would before long: freshly written rows are not yet all-visible, and an
            # index-only scan then visits the heap for every entry (RFM's cut points: 3.9 s before, 1.1 s after)
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                for table in changed:
                    connection.execute(text(f"VACUUM ANALYZE {table}"))
        else:
            with database.scope() as session:
                _analyze(session, changed)
        data["analyze_seconds"] = round(time.perf_counter() - started, 2)
        with database.scope() as session:
            admin = merchants.principal_for(session, session.get(Staff, data["admin_id"]))
            f = analytics.make_filters(default_days=days)
            year = analytics.make_filters(default_days=365)
            calls: dict[str, Callable[[], Any]] = {
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
            results: dict[str, Any] = {}
            for name in views:
                service_s = _timed(calls[name], repeat)

                def naive(name: str = name) -> None:
                    for sql in queries[name]:
                        session.execute(text(sql), params).fetchall()

                results[name] = {"service_seconds": service_s,
                                 "naive_sql_seconds": None if skip_naive else _timed(naive, repeat),
                                 "under_2s": service_s < 2.0}
                load[f"after_{name}"] = _load()
                _progress(f"{name}: {results[name]}")
            narrowed = _variants(session, data, admin, f, year, variants)
            for name in views:
                timed: dict[str, float] = {}
                for variant, (actor, vf, vyear) in narrowed.items():
                    timed[variant] = _timed(functools.partial(view_call, analytics, session, name, actor, vf, vyear),
                                            repeat)
                    _progress(f"{name} {variant}: {timed[variant]} s")
                results[name]["narrowed_seconds"] = timed
                results[name]["narrowed_under_2s"] = all(t < 2.0 for t in timed.values())
                load[f"after_{name}_narrowed"] = _load()
    return {"benchmark": "analytics", "database": dialect, "period_days": days, "reused": reuse, "data": data,
            "views": results, "load_average": load,
            "variants": {k: v for k, v in VARIANT_HELP.items() if k in variants},
            "note": "service_seconds: the analytics service as the console calls it (admin, whole merchant); "
                    "narrowed_seconds: the same view narrowed (see variants); "
                    "naive_sql_seconds: the same figures as plain SQL over the raw rows. Best of --repeat runs. "
                    "load_average: os.getloadavg() (1, 5, 15 min) at each step, on a machine with "
                    f"{os.cpu_count()} CPUs."}




def view_call(analytics: Any, session: Any, name: str, actor: Any, f: Any, year: Any) -> Any:
    """One view as the console computes it (cohorts over the year)."""
    calls = {"gmv": analytics.decompose, "channel_mix": analytics.channel_mix, "rfm": analytics.rfm,
             "funnel": analytics.funnel, "fission": analytics.fission, "cohorts": analytics.cohorts,
             "leaderboard": analytics.leaderboard}
    return calls[name](session, actor=actor, filters=year if name == "cohorts" else f)


def _variants(session: Any, data: dict[str, Any], admin: Any, f: Any, year: Any, names: tuple[str, ...]
              ) -> dict[str, tuple[Any, Any, Any]]:
    """(actor, filters, cohorts' filters) of each narrowed variant."""
    from siyu.merchants import service as merchants
    from siyu.merchants.models import Staff

    m = data["merchant_id"]
    store = session.scalar(text("SELECT MIN(id) FROM stores WHERE merchant_id = :m"), {"m": m})
    guide_id = session.scalar(text("SELECT MIN(id) FROM staff WHERE merchant_id = :m AND role = 'guide'"), {"m": m})
    guide = merchants.principal_for(session, session.get(Staff, guide_id))
    back = PAST_BACK
    out = {
        "store": (admin, dataclasses.replace(f, store_id=store), dataclasses.replace(year, store_id=store)),
        "guide": (admin, dataclasses.replace(f, guide_id=guide_id), dataclasses.replace(year, guide_id=guide_id)),
        "as_guide": (guide, f, year),
        "group": (admin, dataclasses.replace(f, channel="social"), dataclasses.replace(year, channel="social")),
        "channel": (admin, dataclasses.replace(f, channel="moments"), dataclasses.replace(year, channel="moments")),
        "campaign": (admin, dataclasses.replace(f, campaign=CAMPAIGNS[0]),
                     dataclasses.replace(year, campaign=CAMPAIGNS[0])),
        "past": (admin, dataclasses.replace(f, start=f.start - back, end=f.end - back),
                 dataclasses.replace(year, start=year.start - back, end=year.end - back)),
    }
    return {k: v for k, v in out.items() if k in names}


def dumps(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    json.dump(report, buf, ensure_ascii=False, indent=2, default=str)
    return buf.getvalue()
