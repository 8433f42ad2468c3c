"""The analytics aggregates: small tables the views read instead of scanning every order.

- `analytics_daily_sales`: paid goods orders per Shanghai day × store × owner × attributed guide × touch
  channel × channel group × campaign (orders, GMV, refunded cents, refunds booked to the day of the sale);
- `analytics_customer_stats`: one row per customer with a paid goods order (orders, kept orders and
  cents, first and last kept purchase, the acquisition channel of the first, the months bought again).

Kept up to date by the handlers on `order.paid` / `order.refunded` / `customer.merged`
(`siyu.analytics.handlers.aggregates`): a payment adds to its day's bucket, a refund adds its amount to the
bucket of the sale, and the customer's row is recomputed from their orders (idempotent, whatever the
order the events come in). `rebuild` recomputes both tables of a merchant from the orders in one pass and
marks the merchant built (`analytics_aggregate_state`): the views read the aggregates only for built
merchants, and compute from the orders before that. Both paths share `_add_fact`/`_finish`, so a rebuild
and the maintained rows agree by construction (tests/analytics/test_aggregates.py checks it).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.analytics.models import AggregateState, CustomerPurchaseStats, DailyPeople, DailySales
from siyu.analytics.service.common import channel_group, local_day, month_of, months_between
from siyu.attribution.service import analytics_reads as attribution
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.orders import service as orders
from siyu.orders.service import PaidOrderFact

MAX_MONTH_BIT = 62
INSERT_BATCH = 5_000
PEOPLE_FLUSH = 500_000
_BUCKET = ("day", "store_id", "owner_id", "guide_id", "channel", "grp", "campaign")


def bucket_of(f: PaidOrderFact) -> tuple[dt.date, int, int, int, str, str, str]:
    """The daily-sales bucket of a paid order."""
    return (local_day(f.paid_at), f.store_id or 0, f.owner_id or 0, f.guide_id or 0, f.channel or "",
            channel_group(f), f.campaign or "")


def is_built(session: Session, *, merchant_id: int) -> bool:
    """Whether the merchant's aggregates were built (then the handlers keep them current)."""
    return session.scalar(select(AggregateState.id).where(AggregateState.merchant_id == merchant_id)) is not None


# ---------------------------------------------------------------- per customer


def _new_state() -> list[Any]:
    # paid orders, kept orders, kept cents, first kept fact, last kept paid_at, months with a kept order
    return [0, 0, 0, None, None, set()]


def _add_fact(state: list[Any], f: PaidOrderFact) -> None:
    """Add one paid goods order (facts come in paid time, then id, order)."""
    state[0] += 1
    if f.total_cents > f.refunded_cents:
        state[1] += 1
        state[2] += f.total_cents - f.refunded_cents
        if state[3] is None:
            state[3] = f
        state[4] = f.paid_at if state[4] is None or f.paid_at > state[4] else state[4]
        state[5].add(month_of(local_day(f.paid_at)))


def _finish(merchant_id: int, customer_id: int, state: list[Any]) -> dict[str, Any]:
    first: PaidOrderFact | None = state[3]
    first_month = month_of(local_day(first.paid_at)) if first is not None else None
    bits = 0
    if first_month is not None:
        for m in state[5]:
            k = months_between(first_month, m)
            if 0 < k <= MAX_MONTH_BIT:
                bits |= 1 << k
    return {"merchant_id": merchant_id, "customer_id": customer_id, "paid_orders": state[0], "kept_orders": state[1],
            "kept_cents": state[2], "first_paid_at": first.paid_at if first else None, "last_paid_at": state[4],
            "first_month": first_month, "first_channel": (first.channel or "") if first else "",
            "first_group": channel_group(first) if first else "", "first_campaign": (first.campaign or "") if first else "",
            "month_bits": bits}


def _fact_of(o: Any) -> PaidOrderFact:
    a = o.attribution if isinstance(o.attribution, dict) else {}

    def num(v: Any) -> int | None:
        try:
            return None if v in (None, "", "null") else int(v)
        except (TypeError, ValueError):
            return None

    return PaidOrderFact(int(o.id), int(o.customer_id), o.owner_id, o.store_id, o.paid_at, int(o.total_cents),
                         int(o.refunded_cents or 0), o.fulfilment_type, a.get("channel") or None,
                         a.get("campaign") or None, num(a.get("guide_id")), num(a.get("sharer_staff_id")),
                         num(a.get("sharer_customer_id")), num(a.get("referrer_customer_id")), num(a.get("live_id")))


def customer_facts(session: Session, *, merchant_id: int, customer_id: int) -> list[PaidOrderFact]:
    """The customer's paid goods orders, in paid time then id order (through the orders service)."""
    actor = system_principal(merchant_id)
    out: list[PaidOrderFact] = []
    cursor = None
    while True:
        page = orders.list_orders(session, actor=actor, filters=orders.OrderFilter(customer_id=customer_id),
                                  cursor=cursor, limit=100)
        out.extend(_fact_of(o) for o in page.items if o.paid_at is not None and o.kind == "goods")
        cursor = page.next_cursor
        if cursor is None:
            break
    out.sort(key=lambda f: (f.paid_at, f.order_id))
    return out


def refresh_customer(session: Session, *, merchant_id: int, customer_id: int) -> None:
    """Recompute one customer's row from their orders (deleted when they have no paid goods order)."""
    state = _new_state()
    for f in customer_facts(session, merchant_id=merchant_id, customer_id=customer_id):
        _add_fact(state, f)
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id,
                                                        CustomerPurchaseStats.customer_id == customer_id))
    if state[0]:
        session.execute(insert(CustomerPurchaseStats), [_finish(merchant_id, customer_id, state)])
    session.flush()


# ---------------------------------------------------------------- daily sales


def add_sale(session: Session, *, merchant_id: int, bucket: tuple[Any, ...], orders_n: int, gmv_cents: int,
             refunded_cents: int) -> None:
    """Add to one daily-sales bucket (created when missing), in one statement safe under concurrency."""
    values = dict(zip(_BUCKET, bucket, strict=True))
    values.update(merchant_id=merchant_id, orders=orders_n, gmv_cents=gmv_cents, refunded_cents=refunded_cents)
    table = DailySales.__table__
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = make(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["merchant_id", *_BUCKET],
        set_={"orders": table.c.orders + stmt.excluded.orders,
              "gmv_cents": table.c.gmv_cents + stmt.excluded.gmv_cents,
              "refunded_cents": table.c.refunded_cents + stmt.excluded.refunded_cents})
    session.execute(stmt)


def on_order_paid(session: Session, *, merchant_id: int, order_id: int, customer_id: int) -> None:
    """A goods order was paid: its sale joins its day's bucket, the customer's row is recomputed."""
    order = orders.get_order(session, order_id, actor=system_principal(merchant_id))
    if order.paid_at is not None and order.kind == "goods":
        f = _fact_of(order)
        # Refunds handled before this (events out of order) already added theirs: count only the sale.
        add_sale(session, merchant_id=merchant_id, bucket=bucket_of(f), orders_n=1, gmv_cents=f.total_cents,
                 refunded_cents=0)
        add_people(session, merchant_id=merchant_id, day=local_day(f.paid_at), people=[f"c{f.customer_id}"], buyer=True)
        if _bump_customer(session, merchant_id=merchant_id, f=f):
            return
    refresh_customer(session, merchant_id=merchant_id, customer_id=customer_id)


def _bump_customer(session: Session, *, merchant_id: int, f: PaidOrderFact) -> bool:
    """The usual payment (kept, and after the customer's last purchase) added to their row in one
    conditional UPDATE, without reading their orders; False when it does not apply (then recompute). A row
    that already counts this order has a last purchase at or after it, so the UPDATE cannot count it twice."""
    s = CustomerPurchaseStats
    if f.total_cents <= f.refunded_cents:
        return False
    first_month = session.scalar(select(s.first_month).where(s.merchant_id == merchant_id,
                                                             s.customer_id == f.customer_id))
    if first_month is None:
        return False
    k = months_between(first_month, month_of(local_day(f.paid_at)))
    bit = 1 << k if 0 < k <= MAX_MONTH_BIT else 0
    done = session.execute(s.__table__.update().where(
        s.merchant_id == merchant_id, s.customer_id == f.customer_id, s.first_month == first_month,
        s.last_paid_at < f.paid_at).values(
        paid_orders=s.paid_orders + 1, kept_orders=s.kept_orders + 1,
        kept_cents=s.kept_cents + (f.total_cents - f.refunded_cents), last_paid_at=f.paid_at,
        month_bits=s.month_bits.op("|")(literal_column(str(int(bit))))))
    return done.rowcount == 1


def on_order_refunded(session: Session, *, merchant_id: int, order_id: int, customer_id: int,
                      amount_cents: int) -> None:
    """A refund of `amount_cents` on a paid goods order: booked to the sale's bucket; customer recomputed."""
    order = orders.get_order(session, order_id, actor=system_principal(merchant_id))
    if order.paid_at is not None and order.kind == "goods" and amount_cents:
        add_sale(session, merchant_id=merchant_id, bucket=bucket_of(_fact_of(order)), orders_n=0, gmv_cents=0,
                 refunded_cents=amount_cents)
    refresh_customer(session, merchant_id=merchant_id, customer_id=customer_id)


def on_customer_merged(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    source, target = f"c{source_id}", f"c{target_id}"
    rows = list(session.execute(select(DailyPeople.day, DailyPeople.buyer).where(
        DailyPeople.merchant_id == merchant_id, DailyPeople.person == source)))
    for day, buyer in rows:
        add_people(session, merchant_id=merchant_id, day=day, people=[target], buyer=bool(buyer))
    session.execute(delete(DailyPeople).where(DailyPeople.merchant_id == merchant_id, DailyPeople.person == source))
    refresh_customer(session, merchant_id=merchant_id, customer_id=source_id)
    refresh_customer(session, merchant_id=merchant_id, customer_id=target_id)


# ---------------------------------------------------------------- rebuild


def _insert_many(session: Session, model: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Core executemany in batches (not the ORM's bulk path: several times slower)."""
    table = model.__table__
    conn = session.connection()
    batch: list[dict[str, Any]] = []
    n = 0
    for row in rows:
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            conn.execute(table.insert(), batch)
            n += len(batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
        n += len(batch)
    return n


def _raw_insert(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
                *, ignore_existing: bool = False) -> None:
    """The driver's executemany for (merchant_id, day, ...) rows of ints and strings (the bulk paths of a
    rebuild). The day goes to SQLite as ISO text, as SQLAlchemy's Date stores it there."""
    if not rows:
        return
    sqlite = session.get_bind().dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
           + (" ON CONFLICT DO NOTHING" if ignore_existing else ""))
    if sqlite:  # the day is the second column of both tables written this way
        rows = [(r[0], r[1].isoformat(), *r[2:]) for r in rows]
    raw = session.connection().connection.driver_connection
    for i in range(0, len(rows), INSERT_BATCH * 4):
        if sqlite:
            raw.executemany(sql, rows[i:i + INSERT_BATCH * 4])
        else:
            with raw.cursor() as cur:
                cur.executemany(sql, rows[i:i + INSERT_BATCH * 4])


def counted(session: Session, *, merchant_id: int, event_id: int) -> bool:
    """Whether a rebuild already saw this event's effects (it was written before the rebuild read)."""
    through = session.scalar(select(AggregateState.events_through).where(AggregateState.merchant_id == merchant_id))
    return through is not None and event_id <= through


def rebuild(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """Recompute the merchant's aggregates from its orders (one pass in paid order) and mark it built.
    Events written before it (still pending or not) are then skipped by the handlers."""
    from sqlalchemy import func

    from siyu.core.models import OutboxEvent

    started = time.perf_counter()
    events_through = int(session.scalar(select(func.max(OutboxEvent.id))) or 0)
    session.execute(delete(DailySales).where(DailySales.merchant_id == merchant_id))
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id))
    session.execute(delete(DailyPeople).where(DailyPeople.merchant_id == merchant_id))
    buyers_day: dt.date | None = None
    buyers: set[str] = set()
    n_people = 0
    sales: dict[tuple[Any, ...], list[int]] = {}
    customers: dict[int, list[Any]] = {}
    n_orders = 0
    for f in orders.paid_order_facts(session, merchant_id=merchant_id):
        n_orders += 1
        key = bucket_of(f)
        s = sales.get(key)
        if s is None:
            sales[key] = [1, f.total_cents, f.refunded_cents]
        else:
            s[0] += 1
            s[1] += f.total_cents
            s[2] += f.refunded_cents
        state = customers.get(f.customer_id)
        if state is None:
            state = customers[f.customer_id] = _new_state()
        _add_fact(state, f)
        if key[0] != buyers_day:  # facts come in paid order: one day's buyers at a time
            if buyers:
                n_people += _insert_people(session, merchant_id, buyers_day, buyers, buyer=True)  # type: ignore[arg-type]
            buyers_day, buyers = key[0], set()
        buyers.add(f"c{f.customer_id}")
    if buyers:
        n_people += _insert_people(session, merchant_id, buyers_day, buyers, buyer=True)  # type: ignore[arg-type]
    through = clock.today_local() - dt.timedelta(days=1)
    load_people(session, merchant_id=merchant_id, start=dt.date(2000, 1, 1), end=through)
    _raw_insert(session, DailySales.__tablename__, ("merchant_id", *_BUCKET, "orders", "gmv_cents", "refunded_cents"),
                [(merchant_id, *k, *v) for k, v in sales.items()])
    n_sales = len(sales)
    n_customers = _insert_many(session, CustomerPurchaseStats, (
        _finish(merchant_id, cid, st) for cid, st in customers.items()))
    elapsed = time.perf_counter() - started
    state_row = session.scalar(select(AggregateState).where(AggregateState.merchant_id == merchant_id))
    if state_row is None:
        session.add(AggregateState(merchant_id=merchant_id, built_at=clock.now(),
                                   people_through=through, events_through=events_through))
    else:
        state_row.built_at = clock.now()
        state_row.people_through = through
        state_row.events_through = events_through
    session.flush()
    return {"merchant_id": merchant_id, "orders": n_orders, "daily_sales_rows": n_sales,
            "customer_rows": n_customers, "buyer_day_rows": n_people, "seconds": round(elapsed, 2)}


def usable(session: Session, *, merchant_id: int, until: dt.datetime | None = None) -> bool:
    """Whether a view may read the aggregates: the merchant's were built and, for the per-customer rows
    (which hold each customer's whole history), the view's horizon `until` is not in the past."""
    if until is not None and until < clock.now():
        return False
    return is_built(session, merchant_id=merchant_id)


def sales_rows(session: Session, *, actor: Any, start: dt.date, end: dt.date, store_id: int | None = None,
               owner_id: int | None = None, channel: str | None = None, campaign: str | None = None,
               scope: bool = True) -> list[Any]:
    """Daily-sales buckets of the days start..end in the actor's scope (when `scope`) narrowed like
    `common.order_facts`: the order's store, its owner, its touch channel or channel group, its campaign."""
    from siyu.analytics.service.common import GROUPS
    from siyu.core.auth import scoped

    stmt = select(DailySales.day, DailySales.store_id, DailySales.owner_id, DailySales.guide_id, DailySales.channel,
                  DailySales.grp, DailySales.campaign, DailySales.orders, DailySales.gmv_cents,
                  DailySales.refunded_cents)
    stmt = scoped(stmt, DailySales, actor) if scope else stmt.where(DailySales.merchant_id == actor.merchant_id)
    stmt = stmt.where(DailySales.day >= start, DailySales.day <= end)
    if store_id is not None:
        stmt = stmt.where(DailySales.store_id == store_id)
    if owner_id is not None:
        stmt = stmt.where(DailySales.owner_id == owner_id)
    if channel is not None:
        stmt = stmt.where(DailySales.grp == channel if channel in GROUPS else DailySales.channel == channel)
    if campaign is not None:
        stmt = stmt.where(DailySales.campaign == campaign)
    return list(session.execute(stmt))


def customer_totals(session: Session, *, merchant_id: int, kept: bool = True) -> list[tuple[int, int]]:
    """(customer_id, orders) of every customer with a kept order (`kept`), else with any paid goods order:
    `orders.customer_order_totals` as of now, from the per-customer rows."""
    col = CustomerPurchaseStats.kept_orders if kept else CustomerPurchaseStats.paid_orders
    stmt = select(CustomerPurchaseStats.customer_id, col).where(CustomerPurchaseStats.merchant_id == merchant_id,
                                                                col > 0)
    return [(int(c), int(n)) for c, n in session.execute(stmt)]


def kept_totals(session: Session, *, merchant_id: int) -> list[tuple[int, dt.datetime, int, int]]:
    """(customer_id, last kept purchase, kept orders, kept cents) of every customer with a kept order."""
    stmt = select(CustomerPurchaseStats.customer_id, CustomerPurchaseStats.last_paid_at,
                  CustomerPurchaseStats.kept_orders, CustomerPurchaseStats.kept_cents).where(
        CustomerPurchaseStats.merchant_id == merchant_id, CustomerPurchaseStats.kept_orders > 0)
    return [(int(c), last, int(n), int(k)) for c, last, n, k in session.execute(stmt)]


def cohort_cells(session: Session, *, merchant_id: int, first: dt.date, last: dt.date, horizon: int,
                 channel: str | None, campaign: str | None, scope: set[int] | None
                 ) -> list[tuple[dt.date, str, int, list[int]]]:
    """(acquisition month, channel group, customers, [customers who bought again in month k, k = 1 ..
    horizon]) for the customers first buying in first..last (months), whose first purchase matches the
    channel (touch channel or group) and campaign; only customers in `scope` when given."""
    from sqlalchemy import func

    from siyu.analytics.service.common import GROUPS

    s = CustomerPurchaseStats
    horizon = min(horizon, MAX_MONTH_BIT)
    conditions = [s.merchant_id == merchant_id, s.first_month.is_not(None), s.first_month >= first,
                  s.first_month <= last]
    if channel is not None:
        conditions.append(s.first_group == channel if channel in GROUPS else s.first_channel == channel)
    if campaign is not None:
        conditions.append(s.first_campaign == campaign)
    if scope is not None:
        acc: dict[tuple[dt.date, str], list[int]] = {}
        for cid, month, group, bits in session.execute(
                select(s.customer_id, s.first_month, s.first_group, s.month_bits).where(*conditions)):
            if cid not in scope:
                continue
            cell = acc.setdefault((month, group), [0] * (horizon + 1))
            cell[0] += 1
            for k in range(1, horizon + 1):
                if bits >> k & 1:
                    cell[k] += 1
        return [(m, g, v[0], v[1:]) for (m, g), v in acc.items()]
    # bigint >> integer (PostgreSQL has no bigint >> bigint); k is a small int, written as a literal
    cols = [func.sum(s.month_bits.op(">>")(literal_column(str(int(k)))).op("&")(literal_column("1")))
            for k in range(1, horizon + 1)]
    stmt = select(s.first_month, s.first_group, func.count(), *cols).where(*conditions).group_by(
        s.first_month, s.first_group)
    return [(m, g, int(n), [int(x or 0) for x in rest]) for m, g, n, *rest in session.execute(stmt)]


# ---------------------------------------------------------------- daily people (GMV visitors)


def _person(customer_id: int | None, visitor_id: str | None) -> str:
    return f"c{customer_id}" if customer_id is not None else f"v{visitor_id}"


def _people_insert(session: Session) -> Any:
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return make(DailyPeople.__table__)


def _insert_people(session: Session, merchant_id: int, day: dt.date, people: Iterable[str], *, buyer: bool) -> int:
    rows = [(merchant_id, day, p, 1 if buyer else 0) for p in people]
    _raw_insert(session, DailyPeople.__tablename__, ("merchant_id", "day", "person", "buyer"), rows,
                ignore_existing=True)
    return len(rows)


def add_people(session: Session, *, merchant_id: int, day: dt.date, people: Iterable[str], buyer: bool) -> None:
    """People of a day (buyers: their row marked, created when missing)."""
    stmt = _people_insert(session)
    rows = [{"merchant_id": merchant_id, "day": day, "person": p, "buyer": 1 if buyer else 0} for p in people]
    if not rows:
        return
    if buyer:
        stmt = stmt.on_conflict_do_update(index_elements=["merchant_id", "day", "person"], set_={"buyer": 1})
    else:
        stmt = stmt.on_conflict_do_nothing()
    session.execute(stmt, rows)


def load_people(session: Session, *, merchant_id: int, start: dt.date, end: dt.date) -> int:
    """The people with funnel events on the days start..end (buyers already there stay buyers)."""
    if end < start:
        return 0
    by_day: dict[dt.date, set[str]] = {}
    n = held = 0
    for day, _kind, customer_id, visitor_id, _ch, _share in attribution.funnel_event_rows(
            session, merchant_id=merchant_id, start=start, end=end):
        by_day.setdefault(day, set()).add(_person(customer_id, visitor_id))
        held += 1
        if held >= PEOPLE_FLUSH:  # keep memory flat: flush what was gathered (repeats later are ignored)
            for d, people in by_day.items():
                n += _insert_people(session, merchant_id, d, people, buyer=False)
            by_day, held = {}, 0
    for d, people in by_day.items():
        n += _insert_people(session, merchant_id, d, people, buyer=False)
    return n


def people_through(session: Session, *, merchant_id: int) -> dt.date | None:
    return session.scalar(select(AggregateState.people_through).where(AggregateState.merchant_id == merchant_id))


def advance_people(session: Session, *, today: dt.date) -> dict[int, int]:
    """For every built merchant, load the funnel people of the completed days not loaded yet (up to
    yesterday). Idempotent: rows already there are left alone."""
    yesterday = today - dt.timedelta(days=1)
    done: dict[int, int] = {}
    for merchant_id, through in list(session.execute(select(AggregateState.merchant_id,
                                                             AggregateState.people_through))):
        if through is not None and through >= yesterday:
            continue
        start = (through + dt.timedelta(days=1)) if through is not None else dt.date(2000, 1, 1)
        done[merchant_id] = load_people(session, merchant_id=merchant_id, start=start, end=yesterday)
        session.execute(AggregateState.__table__.update().where(
            AggregateState.merchant_id == merchant_id).values(people_through=yesterday))
    session.flush()
    return done


def people_figures(session: Session, *, merchant_id: int, start: dt.date, end: dt.date
                   ) -> tuple[dict[dt.date, tuple[int, int]], int, int]:
    """Brand-wide ({day: (visitors, buyers)}, visitors, buyers) of the days start..end, as
    `gmv._figures` counts them from the events and orders: distinct people with a funnel event or a
    paid goods order. Days up to `people_through` are counted in the database; later ones (today) from
    the funnel events themselves."""
    from sqlalchemy import case, func

    p = DailyPeople
    through = people_through(session, merchant_id=merchant_id)
    table_end = min(end, through) if through is not None else start - dt.timedelta(days=1)
    where = [p.merchant_id == merchant_id, p.day >= start, p.day <= end]
    days: dict[dt.date, tuple[int, int]] = {}
    if table_end >= start:
        for day, n, b in session.execute(select(p.day, func.count(), func.sum(p.buyer)).where(
                *where, p.day <= table_end).group_by(p.day)):
            days[day] = (int(n), int(b or 0))
    visitors, buyers = session.execute(select(func.count(func.distinct(p.person)),
                                              func.count(func.distinct(case((p.buyer == 1, p.person)))))
                                       .where(*where)).one()
    visitors, buyers = int(visitors), int(buyers)
    if table_end < end:
        recent_start = table_end + dt.timedelta(days=1)
        recent: dict[dt.date, set[str]] = {}
        day_buyers: dict[dt.date, int] = {}
        for day, person, buyer in session.execute(select(p.day, p.person, p.buyer).where(
                p.merchant_id == merchant_id, p.day >= recent_start, p.day <= end)):
            recent.setdefault(day, set()).add(person)
            day_buyers[day] = day_buyers.get(day, 0) + int(buyer)
        extra: set[str] = set()
        for day, _kind, customer_id, visitor_id, _ch, _share in attribution.funnel_event_rows(
                session, merchant_id=merchant_id, start=recent_start, end=end):
            person = _person(customer_id, visitor_id)
            recent.setdefault(day, set()).add(person)
            extra.add(person)
        for day, people in recent.items():
            days[day] = (len(people), day_buyers.get(day, 0))
        # people of the recent days not in the table for the period yet count once more
        candidates = list(extra)
        for i in range(0, len(candidates), 500):
            chunk = candidates[i:i + 500]
            known = {r[0] for r in session.execute(select(p.person).where(*where, p.person.in_(chunk)).distinct())}
            visitors += len(set(chunk) - known)
    return days, visitors, buyers
