"""The analytics aggregates: small tables the views read instead of scanning every order.

- `analytics_daily_sales`: paid goods orders per Shanghai day × store × owner × attributed guide × touch
  channel × channel group × campaign (orders, GMV, refunded cents, refunds booked to the day of the sale);
- `analytics_customer_stats`: one row per customer with a paid goods order (orders, kept orders and
  cents, first and last kept purchase, the acquisition channel of the first, the months bought again);
- `analytics_customer_dim_stats`: one row per customer × channel group, touch channel and campaign of
  their kept orders (kept orders and cents, last purchase): RFM with a channel or campaign filter.

Kept up to date by the handlers on `order.paid` / `order.refunded` / `customer.merged`
(`siyu.analytics.handlers.aggregates`): a payment adds to its day's bucket and to its customer's row (a
few statements from the event's payload: the handler runs on every checkout; their dimension rows move
with it), a refund adds its amount to the bucket of the sale, and a refund or a merge recomputes the
customer's rows from their orders
(idempotent, whatever the order the events come in). `rebuild` recomputes the tables of a merchant in the
database (INSERT … SELECT … GROUP BY over `orders.paid_goods_select`: no order comes into Python) and
marks the merchant built (`analytics_aggregate_state`): the views read the aggregates only for built
merchants, and compute from the orders before that. A customer's row is recomputed by the rebuild's own
statement narrowed to them; tests/analytics/test_aggregates.py checks that the maintained rows equal a
rebuild and that the views give the same numbers from either source.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from siyu.analytics.models import AggregateState, CustomerDimStats, CustomerPurchaseStats, DailySales
from siyu.analytics.service import people
from siyu.analytics.service.common import (
    GROUPS,
    channel_group,
    channel_group_sql,
    local_day,
    month_of,
    months_between,
)
from siyu.core import clock
from siyu.db import cross_join, execute_core, last_in_transaction, upsert_insert
from siyu.orders import service as orders
from siyu.orders.service import PaidOrderFact

MAX_MONTH_BIT = 62
_BUCKET = ("day", "store_id", "owner_id", "guide_id", "channel", "grp", "campaign")


def bucket_of(f: PaidOrderFact) -> tuple[dt.date, int, int, int, str, str, str]:
    """The daily-sales bucket of a paid order."""
    return (local_day(f.paid_at), f.store_id or 0, f.owner_id or 0, f.guide_id or 0, f.channel or "",
            channel_group(f), f.campaign or "")


def is_built(session: Session, *, merchant_id: int) -> bool:
    """Whether the merchant's aggregates were built (then the handlers keep them current)."""
    return session.scalar(select(AggregateState.id).where(AggregateState.merchant_id == merchant_id)) is not None


# ---------------------------------------------------------------- in the database (rebuild, refresh)


def _facts(session: Session, merchant_id: int, customer_id: int | None = None) -> Any:
    """The paid goods orders (`orders.paid_goods_select`) as a subquery."""
    return orders.paid_goods_select(session.get_bind().dialect.name, merchant_id=merchant_id,
                                    customer_id=customer_id).subquery()


def _sales_select(session: Session, merchant_id: int) -> Any:
    """One row per daily-sales bucket (`bucket_of` in SQL): orders, GMV and refunds, grouped in the database."""
    f = _facts(session, merchant_id)
    b = select(f.c.day, func.coalesce(f.c.store_id, 0).label("store_id"), func.coalesce(f.c.owner_id, 0).label("owner_id"),
               func.coalesce(f.c.guide_id, 0).label("guide_id"), func.coalesce(f.c.channel, "").label("channel"),
               channel_group_sql(f.c).label("grp"), func.coalesce(f.c.campaign, "").label("campaign"),
               f.c.total_cents, f.c.refunded_cents).subquery()
    keys = [b.c[k] for k in _BUCKET]
    return select(literal(merchant_id, BigInteger), *keys, func.count(), func.sum(b.c.total_cents),
                  func.sum(b.c.refunded_cents)).group_by(*keys)


_STATS_COLUMNS = ("merchant_id", "customer_id", "paid_orders", "kept_orders", "kept_cents", "first_paid_at",
                  "second_paid_at", "last_paid_at", "first_month", "first_channel", "first_group", "first_campaign", "month_bits")


def _stats_select(session: Session, merchant_id: int, customer_id: int | None = None) -> Any:
    """One CustomerPurchaseStats row per customer with a paid goods order, computed in the database: the
    orders grouped per customer and Shanghai month, then per customer (`month_bits` as the SUM of 1 << k
    over the months k after the first kept one: a bitwise OR without bit_or); the first and second kept
    orders by ROW_NUMBER over (paid time, id)."""
    f = _facts(session, merchant_id, customer_id)
    kept_cents = case((f.c.kept == 1, f.c.total_cents - f.c.refunded_cents), else_=0)
    cm = select(f.c.customer_id, f.c.month_no, func.count().label("paid"), func.sum(f.c.kept).label("kept"),
                func.sum(kept_cents).label("cents"), func.max(case((f.c.kept == 1, f.c.paid_at))).label("last")).group_by(
        f.c.customer_id, f.c.month_no).subquery()
    first_no = func.min(case((cm.c.kept > 0, cm.c.month_no))).over(partition_by=cm.c.customer_id)
    cmw = select(cm, first_no.label("first_no")).subquery()
    k = cmw.c.month_no - cmw.c.first_no
    bit = case(((cmw.c.kept > 0) & (k >= 1) & (k <= MAX_MONTH_BIT), literal_column("CAST(1 AS BIGINT)").op("<<")(k)),
               else_=0)
    t = select(cmw.c.customer_id, func.sum(cmw.c.paid).label("paid_orders"), func.sum(cmw.c.kept).label("kept_orders"),
               func.sum(cmw.c.cents).label("kept_cents"), func.max(cmw.c.last).label("last_paid_at"),
               func.sum(bit).label("bits")).group_by(cmw.c.customer_id).subquery()
    f = _facts(session, merchant_id, customer_id)
    rn = func.row_number().over(partition_by=f.c.customer_id, order_by=(f.c.paid_at, f.c.order_id)).label("rn")
    ranked = select(f.c.order_id, f.c.customer_id, f.c.paid_at, rn).where(f.c.kept == 1).subquery()
    two = select(ranked.c.customer_id, func.max(case((ranked.c.rn == 1, ranked.c.order_id))).label("first_id"),
                 func.max(case((ranked.c.rn == 2, ranked.c.paid_at))).label("second_paid_at")).where(
        ranked.c.rn <= 2).group_by(ranked.c.customer_id).subquery()
    # the snapshot is read for the first orders only (joined back by id), not for every order
    f = _facts(session, merchant_id, customer_id)
    first = select(f.c.customer_id, f.c.paid_at, two.c.second_paid_at, f.c.month, f.c.channel, f.c.campaign,
                   channel_group_sql(f.c).label("grp")).join(two, two.c.first_id == f.c.order_id).subquery()
    return select(literal(merchant_id, BigInteger), t.c.customer_id, t.c.paid_orders, t.c.kept_orders, t.c.kept_cents,
                  first.c.paid_at, first.c.second_paid_at, t.c.last_paid_at, first.c.month,
                  func.coalesce(first.c.channel, ""), func.coalesce(first.c.grp, ""),
                  func.coalesce(first.c.campaign, ""), func.coalesce(t.c.bits, 0)).select_from(t).outerjoin(
        first, first.c.customer_id == t.c.customer_id)


def refresh_customer(session: Session, *, merchant_id: int, customer_id: int) -> None:
    """Recompute one customer's row (none when they have no paid goods order) and their dimension rows
    from their orders: the rebuild's statements narrowed to the customer (read through the orders'
    customer index)."""
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id,
                                                        CustomerPurchaseStats.customer_id == customer_id))
    session.execute(insert(CustomerPurchaseStats).from_select(
        list(_STATS_COLUMNS), _stats_select(session, merchant_id, customer_id)))
    refresh_customer_dims(session, merchant_id=merchant_id, customer_id=customer_id)
    session.flush()


# ---------------------------------------------------------------- per customer × dimension (RFM by channel or campaign)

_DIM_COLUMNS = ("merchant_id", "customer_id", "dim", "kept_orders", "kept_cents", "last_paid_at")


def dim_of(channel: str | None, campaign: str | None) -> str | None:
    """The `CustomerDimStats.dim` of a filter on one channel (a group name, else a touch channel) or one
    campaign; None with neither or both (no row holds a channel and a campaign together)."""
    if (channel is None) == (campaign is None):
        return None
    if channel is not None:
        return ("g:" if channel in GROUPS else "c:") + channel
    return f"k:{campaign}"


def _dims_of(f: PaidOrderFact) -> list[str]:
    """The dimensions a kept order counts in (`_dims_select` in Python)."""
    return [f"g:{channel_group(f)}"] + ([f"c:{f.channel}"] if f.channel else []) + (
        [f"k:{f.campaign}"] if f.campaign else [])


def _dims_select(session: Session, merchant_id: int, customer_id: int | None = None) -> Any:
    """One CustomerDimStats row per customer and dimension of their kept orders, computed in the database:
    the kept orders grouped per customer × group × channel × campaign first (few rows per customer), then
    each such row counted in its group, its channel and its campaign (a join with three constant rows)."""
    f = _facts(session, merchant_id, customer_id)
    grp = channel_group_sql(f.c).label("grp")
    per = select(f.c.customer_id, grp, f.c.channel, f.c.campaign, func.count().label("n"),
                 func.sum(f.c.total_cents - f.c.refunded_cents).label("cents"), func.max(f.c.paid_at).label("last")
                 ).where(f.c.kept == 1).group_by(f.c.customer_id, grp, f.c.channel, f.c.campaign).subquery()
    three = union_all(*(select(literal_column(str(i)).label("i")) for i in (1, 2, 3))).subquery()

    def prefixed(prefix: str, col: Any) -> Any:
        return literal_column(f"'{prefix}'").op("||")(col)

    dim = case((three.c.i == 1, prefixed("g:", per.c.grp)), (three.c.i == 2, prefixed("c:", per.c.channel)),
               else_=prefixed("k:", per.c.campaign)).label("dim")
    rows = select(per.c.customer_id, dim, per.c.n, per.c.cents, per.c.last).select_from(
        per.join(three, true())).subquery()
    return select(literal(merchant_id, BigInteger), rows.c.customer_id, rows.c.dim, func.sum(rows.c.n),
                  func.sum(rows.c.cents), func.max(rows.c.last)).where(rows.c.dim.is_not(None)).group_by(
        rows.c.customer_id, rows.c.dim)


def refresh_customer_dims(session: Session, *, merchant_id: int, customer_id: int) -> None:
    """Recompute one customer's dimension rows from their orders (the rebuild's statement narrowed to them)."""
    d = CustomerDimStats
    session.execute(delete(d).where(d.merchant_id == merchant_id, d.customer_id == customer_id))
    session.execute(insert(d).from_select(list(_DIM_COLUMNS), _dims_select(session, merchant_id, customer_id)))


_BUMP_DIMS: dict[str, Any] = {}


def _bump_dims(session: Session, *, merchant_id: int, f: PaidOrderFact) -> None:
    """A kept payment after the customer's last kept purchase (`_bump_customer` took it): added to the rows
    of its dimensions (created when missing), one fixed statement run for each (a multi-row VALUES is
    compiled anew on every call: it was the analytics handler's largest cost under a flash sale)."""
    dialect = session.get_bind().dialect.name
    stmt = _BUMP_DIMS.get(dialect)
    if stmt is None:
        table = CustomerDimStats.__table__
        make = upsert_insert(dialect)
        stmt = make(table).values({c: literal(1) if c == "kept_orders" else bindparam(c, type_=table.c[c].type)
                                   for c in _DIM_COLUMNS})
        stmt = _BUMP_DIMS[dialect] = stmt.on_conflict_do_update(
            index_elements=["merchant_id", "dim", "customer_id"],
            set_={"kept_orders": table.c.kept_orders + 1, "kept_cents": table.c.kept_cents + stmt.excluded.kept_cents,
                  "last_paid_at": stmt.excluded.last_paid_at})
    execute_core(session, stmt, [{"merchant_id": merchant_id, "customer_id": f.customer_id, "dim": dim,
                                         "kept_cents": f.total_cents, "last_paid_at": f.paid_at} for dim in _dims_of(f)])


def dim_totals_as_of(session: Session, *, merchant_id: int, dim: str | None, until: dt.datetime, scope: Any = None
                     ) -> dict[int, tuple[dt.datetime, int, int]]:
    """customer -> (last purchase, orders, kept cents) of their kept goods orders of the dimension (`dim`
    None: of every kept order) paid before `until` (refunds as of now), for the customers in `scope` (a
    SELECT of ids) when given, of a merchant whose per-customer rows are built. The rows whose last
    purchase is before `until` hold exactly that; the customers who bought since have their orders before
    `until` grouped in the database (read through the customer index)."""
    t = CustomerPurchaseStats if dim is None else CustomerDimStats
    conds = [t.merchant_id == merchant_id, t.kept_orders > 0]
    if dim is not None:
        conds.append(CustomerDimStats.dim == dim)
    if scope is not None:
        conds.append(t.customer_id.in_(scope))
    out = {int(c): (last, int(n), int(k)) for c, last, n, k in session.execute(
        select(t.customer_id, t.last_paid_at, t.kept_orders, t.kept_cents).where(*conds, t.last_paid_at < until))}
    late = select(t.customer_id).where(*conds, t.last_paid_at >= until)
    out.update(totals_before(session, merchant_id=merchant_id, customer_ids=late, until=until, dim=dim))
    return out


def dim_names(session: Session, *, merchant_id: int) -> list[str]:
    """The merchant's dimensions (the `dim` of its CustomerDimStats rows), ascending: one seek along the
    (merchant, dim, …) index per dimension for the next one, not a scan of every row."""
    d = CustomerDimStats
    out: list[str] = []
    while True:
        conds = [d.merchant_id == merchant_id] + ([d.dim > out[-1]] if out else [])
        nxt = session.scalar(select(func.min(d.dim)).where(*conds))
        if nxt is None:
            return out
        out.append(nxt)


# `dims_totals_as_of` groups the late customers' orders for at most this many (customer, dimension) rows, or
# this many dimensions, at once (the rest in further passes): what it holds in memory besides one dimension.
DIMS_LATE_ROWS_PER_PASS = 500_000
DIMS_PER_PASS = 500


def dims_totals_as_of(session: Session, *, merchant_id: int, dims: list[str], until: dt.datetime
                      ) -> Iterator[tuple[str, dict[int, tuple[dt.datetime, int, int]]]]:
    """(dimension, `dim_totals_as_of` of it for the whole merchant) for each of `dims` in turn: the same
    numbers, cheaper for many dimensions. The customers who bought in the dimensions since `until` have
    their kept orders before it grouped once per pass over several dimensions, per customer × group × touch
    channel × campaign and spread over the dimensions as `_dims_select` does (instead of their orders read
    again for every dimension they bought in); each dimension's rows are then read and given out one
    dimension at a time."""
    d = CustomerDimStats
    late_rows = {dim: int(n) for dim, n in session.execute(select(d.dim, func.count()).where(
        d.merchant_id == merchant_id, d.dim.in_(dims), d.last_paid_at >= until).group_by(d.dim))} if dims else {}
    passes: list[list[str]] = []
    held = 0
    for dim in dims:
        n = late_rows.get(dim, 0)
        if not passes or len(passes[-1]) >= DIMS_PER_PASS or (held and held + n > DIMS_LATE_ROWS_PER_PASS):
            passes.append([])
            held = 0
        passes[-1].append(dim)
        held += n
    for chunk in passes:
        late = _late_dim_totals(session, merchant_id=merchant_id, dims=[x for x in chunk if late_rows.get(x)],
                                until=until)
        for dim in chunk:
            conds = [d.merchant_id == merchant_id, d.dim == dim]
            out = {int(c): (last, int(n), int(k)) for c, last, n, k in session.execute(
                select(d.customer_id, d.last_paid_at, d.kept_orders, d.kept_cents).where(
                    *conds, d.last_paid_at < until))}
            mine = late.pop(dim, {})
            if mine:
                for cid in session.scalars(select(d.customer_id).where(*conds, d.last_paid_at >= until)):
                    if int(cid) in mine:
                        out[int(cid)] = mine[int(cid)]
            yield dim, out


def _late_dim_totals(session: Session, *, merchant_id: int, dims: list[str], until: dt.datetime
                     ) -> dict[str, dict[int, tuple[dt.datetime, int, int]]]:
    """dimension -> customer -> (last purchase, orders, kept cents) of the kept orders paid before `until`
    of the customers with a row of one of `dims` whose last purchase is `until` or later, in one statement
    (the orders grouped per customer × group × touch channel × campaign in the database)."""
    if not dims:
        return {}
    d = CustomerDimStats
    wanted = set(dims)
    late_ids = select(d.customer_id).where(d.merchant_id == merchant_id, d.dim.in_(dims),
                                           d.last_paid_at >= until).distinct()
    f = _facts(session, merchant_id)
    grp = channel_group_sql(f.c)
    stmt = select(f.c.customer_id, grp, f.c.channel, f.c.campaign, func.max(f.c.paid_at), func.count(),
                  func.sum(f.c.total_cents - f.c.refunded_cents)).where(
        f.c.customer_id.in_(late_ids), f.c.paid_at < until, f.c.kept == 1).group_by(
        f.c.customer_id, grp, f.c.channel, f.c.campaign)
    late: dict[str, dict[int, tuple[dt.datetime, int, int]]] = {}
    for cid, g, channel, campaign, last, n, cents in session.execute(stmt):
        for prefix, value in (("g:", g), ("c:", channel), ("k:", campaign)):
            dim = None if value is None else prefix + value
            if dim not in wanted:
                continue
            mine = late.setdefault(dim, {})
            prev = mine.get(int(cid))
            mine[int(cid)] = (last, int(n), int(cents)) if prev is None else (
                max(prev[0], last), prev[1] + int(n), prev[2] + int(cents))
    return late


def totals_before(session: Session, *, merchant_id: int, customer_ids: Any, until: dt.datetime,
                  dim: str | None = None) -> dict[int, tuple[dt.datetime, int, int]]:
    """customer -> (last purchase, orders, kept cents) of the kept goods orders (of the dimension `dim`)
    paid before `until` of the given customers (a list or a SELECT of ids), grouped in the database."""
    f = _facts(session, merchant_id)
    conds = [f.c.customer_id.in_(customer_ids), f.c.paid_at < until, f.c.kept == 1]
    if dim is not None:
        kind, value = dim[:2], dim[2:]
        conds.append(channel_group_sql(f.c) == value if kind == "g:" else f.c.channel == value if kind == "c:"
                     else f.c.campaign == value)
    stmt = select(f.c.customer_id, func.max(f.c.paid_at), func.count(),
                  func.sum(f.c.total_cents - f.c.refunded_cents)).where(*conds).group_by(f.c.customer_id)
    return {int(c): (last, int(n), int(k)) for c, last, n, k in session.execute(stmt)}


def buyers_before(session: Session, *, merchant_id: int, until: dt.datetime, after: int | None, limit: int,
                  scope: Any = None, dim: str | None = None) -> list[int]:
    """Up to `limit` ids (ascending, after `after`) of the customers with a kept goods order paid before
    `until` (their first kept purchase is before it), of `scope` (a SELECT of ids) when given.

    With `dim`: of the customers with a kept order of that dimension now (a row of it) whose first kept
    purchase is before `until`: a superset (their first one may be of another dimension, or their first
    of this one after `until`), so the caller drops those without such an order before `until`
    (`totals_before(..., dim=dim)` gives them none)."""
    s = CustomerPurchaseStats
    conds = [s.merchant_id == merchant_id, s.first_paid_at < until, s.customer_id > (after or 0)]
    if scope is not None:
        conds.append(s.customer_id.in_(scope))
    stmt = select(s.customer_id).where(*conds)
    if dim is not None:
        d = CustomerDimStats
        stmt = stmt.join(d, (d.merchant_id == s.merchant_id) & (d.customer_id == s.customer_id) & (d.dim == dim))
    return [int(c) for c in session.scalars(stmt.order_by(s.customer_id).limit(limit))]


def dims_usable(session: Session, *, merchant_id: int, until: dt.datetime | None = None) -> bool:
    """`usable`, for the dimension rows: also filled by the merchant's last rebuild."""
    if until is not None and until < clock.now():
        return False
    return session.scalar(select(AggregateState.dims_built_at).where(
        AggregateState.merchant_id == merchant_id)) is not None


# ---------------------------------------------------------------- daily sales


def add_sale(session: Session, *, merchant_id: int, bucket: tuple[Any, ...], orders_n: int, gmv_cents: int,
             refunded_cents: int) -> None:
    """Add to one daily-sales bucket (created when missing), in one statement safe under concurrency."""
    values = dict(zip(_BUCKET, bucket, strict=True))
    values.update(merchant_id=merchant_id, orders=orders_n, gmv_cents=gmv_cents, refunded_cents=refunded_cents)
    execute_core(session, _add_sale(session.get_bind().dialect.name), values)


@functools.cache
def _add_sale(dialect: str) -> Any:
    # Built once per dialect (every paid order runs it): the values as parameters.
    table = DailySales.__table__
    stmt = upsert_insert(dialect)(table).values(
        {c: bindparam(c, type_=table.c[c].type) for c in ("merchant_id", *_BUCKET, "orders", "gmv_cents",
                                                           "refunded_cents")})
    return stmt.on_conflict_do_update(
        index_elements=["merchant_id", *_BUCKET],
        set_={"orders": table.c.orders + stmt.excluded.orders,
              "gmv_cents": table.c.gmv_cents + stmt.excluded.gmv_cents,
              "refunded_cents": table.c.refunded_cents + stmt.excluded.refunded_cents})


def on_order_paid(session: Session, *, merchant_id: int, fact: PaidOrderFact, marks: Marks | None = None) -> None:
    """A goods order was paid (`fact`: from the event's payload, not read again): its sale joins its day's
    bucket and the customer's row takes it in one or two statements; only an unusual payment (see
    `_bump_customer`) recomputes the customer's row from their orders. `marks`: the merchant's
    `aggregate_marks` when the caller has just read them."""
    now = orders.order_now(session, merchant_id=merchant_id, order_id=fact.order_id)
    if now is None:
        return
    customer_id, refunded = now
    f = fact._replace(customer_id=customer_id)  # a merge since the payment moved the order
    # Refunds handled before this (events out of order) already added theirs: count only the sale. Every
    # order of the day's bucket updates its row: written last in the transaction, so that concurrent
    # checkouts queue on its lock for the commit only.
    bucket = bucket_of(f)
    last_in_transaction(session, lambda s: add_sale(s, merchant_id=merchant_id, bucket=bucket, orders_n=1,
                                                    gmv_cents=f.total_cents, refunded_cents=0))
    through = (marks or aggregate_marks(session, merchant_id=merchant_id)).people_through
    people.on_order_paid(session, merchant_id=merchant_id, customer_id=f.customer_id, day=local_day(f.paid_at),
                         through=through)
    if refunded or customer_id != fact.customer_id or not _bump_customer(session, merchant_id=merchant_id, f=f):
        refresh_customer(session, merchant_id=merchant_id, customer_id=f.customer_id)
    else:  # the dimension rows move with the customer's row: neither counted this order yet
        _bump_dims(session, merchant_id=merchant_id, f=f)


def _bump_customer(session: Session, *, merchant_id: int, f: PaidOrderFact) -> bool:
    """The usual payment added to the customer's row without reading their orders: a first purchase
    inserts the row; a later one (after the customer's last kept purchase) is one conditional UPDATE.
    False when that does not apply (then recompute): the row has no kept order, or the payment is not the
    customer's latest. (The caller recomputes an order refunded since: a refund handled first may already
    count it.) A row that already counts this order has a last purchase at or after it, so the UPDATE
    cannot count it twice."""
    if f.total_cents <= f.refunded_cents:
        return False
    month = month_of(local_day(f.paid_at))
    session.flush()
    connection = session.connection()
    first_month = connection.execute(_FIRST_MONTH, {"merchant_id": merchant_id, "customer_id": f.customer_id}).first()
    if first_month is None:  # the customer's first paid goods order
        done = connection.execute(_first_purchase(session.get_bind().dialect.name), {
            "merchant_id": merchant_id, "customer_id": f.customer_id, "kept_cents": f.total_cents,
            "paid_at": f.paid_at, "first_month": month, "first_channel": f.channel or "",
            "first_group": channel_group(f), "first_campaign": f.campaign or ""})
        return done.first() is not None
    if first_month[0] is None:
        return False
    k = months_between(first_month[0], month)
    bit = 1 << k if 0 < k <= MAX_MONTH_BIT else 0
    done = connection.execute(_NEXT_PURCHASE, {
        "of_merchant": merchant_id, "of_customer": f.customer_id, "of_first_month": first_month[0],
        "paid_at": f.paid_at, "add_cents": f.total_cents, "month_bit": bit})
    return done.rowcount == 1


# `_bump_customer`'s statements, built once (every paid order runs them): the values as parameters.
_STATS = CustomerPurchaseStats.__table__
_FIRST_MONTH = select(_STATS.c.first_month).where(
    _STATS.c.merchant_id == bindparam("merchant_id", type_=BigInteger()),
    _STATS.c.customer_id == bindparam("customer_id", type_=BigInteger()))
_NEXT_PURCHASE = _STATS.update().where(
    _STATS.c.merchant_id == bindparam("of_merchant", type_=BigInteger()),
    _STATS.c.customer_id == bindparam("of_customer", type_=BigInteger()),
    _STATS.c.first_month == bindparam("of_first_month", type_=_STATS.c.first_month.type),
    _STATS.c.last_paid_at < bindparam("paid_at", type_=_STATS.c.last_paid_at.type)).values(
    paid_orders=_STATS.c.paid_orders + 1, kept_orders=_STATS.c.kept_orders + 1,
    kept_cents=_STATS.c.kept_cents + bindparam("add_cents", type_=BigInteger()),
    second_paid_at=func.coalesce(_STATS.c.second_paid_at, bindparam("paid_at", type_=_STATS.c.last_paid_at.type)),
    last_paid_at=bindparam("paid_at", type_=_STATS.c.last_paid_at.type),
    month_bits=_STATS.c.month_bits.op("|")(bindparam("month_bit", type_=BigInteger())))


@functools.cache
def _first_purchase(dialect: str) -> Any:
    c = _STATS.c
    paid_at = bindparam("paid_at", type_=c.first_paid_at.type)
    return upsert_insert(dialect)(_STATS).values(
        merchant_id=bindparam("merchant_id", type_=BigInteger()),
        customer_id=bindparam("customer_id", type_=BigInteger()), paid_orders=1, kept_orders=1,
        kept_cents=bindparam("kept_cents", type_=BigInteger()), first_paid_at=paid_at, last_paid_at=paid_at,
        first_month=bindparam("first_month", type_=c.first_month.type),
        first_channel=bindparam("first_channel", type_=c.first_channel.type),
        first_group=bindparam("first_group", type_=c.first_group.type),
        first_campaign=bindparam("first_campaign", type_=c.first_campaign.type), month_bits=0,
    ).on_conflict_do_nothing().returning(c.id)


def on_order_refunded(session: Session, *, merchant_id: int, order_id: int, customer_id: int,
                      amount_cents: int) -> None:
    """A refund of `amount_cents` on a paid goods order: booked to the sale's bucket (the order read once by
    id); the customer's row recomputed (a refund may change their first or last kept purchase)."""
    f = orders.paid_order_fact(session, merchant_id=merchant_id, order_id=order_id)
    if f is not None and amount_cents:
        add_sale(session, merchant_id=merchant_id, bucket=bucket_of(f), orders_n=0, gmv_cents=0,
                 refunded_cents=amount_cents)
    refresh_customer(session, merchant_id=merchant_id, customer_id=customer_id)


def on_customer_merged(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    people.on_customer_merged(session, merchant_id=merchant_id, source_id=source_id, target_id=target_id)
    refresh_customer(session, merchant_id=merchant_id, customer_id=source_id)
    refresh_customer(session, merchant_id=merchant_id, customer_id=target_id)


# ---------------------------------------------------------------- rebuild


def counted(session: Session, *, merchant_id: int, event_id: int) -> bool:
    """Whether a rebuild already saw this event's effects (it was written before the rebuild read)."""
    return event_counted(aggregate_marks(session, merchant_id=merchant_id), event_id)


class Marks(NamedTuple):
    """How far a merchant's aggregates are built: events up to `events_through` are in them (None: not
    built), and people's days up to `people_through`."""

    events_through: int | None
    people_through: dt.date | None


def aggregate_marks(session: Session, *, merchant_id: int) -> Marks:
    """The merchant's `Marks`, in one read (a handler asks for both on every paid order)."""
    row = execute_core(session, _MARKS, {"merchant_id": merchant_id}).first()
    return Marks(None, None) if row is None else Marks(row[0], row[1])


def event_counted(marks: Marks, event_id: int) -> bool:
    return marks.events_through is not None and event_id <= marks.events_through


_STATE = AggregateState.__table__
_MARKS = select(_STATE.c.events_through, _STATE.c.people_through).where(
    _STATE.c.merchant_id == bindparam("merchant_id", type_=BigInteger()))


# PostgreSQL's memory for each sort or hash of a rebuild (its GROUP BYs over every order of the merchant);
# each parallel worker may take it per sort, and a hash twice that (hash_mem_multiplier): kept moderate
REBUILD_WORK_MEM = "64MB"


def rebuild(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """Recompute the merchant's aggregates from its orders and mark it built: the daily sales and the
    per-customer rows each in one INSERT … SELECT … GROUP BY in the database (no order comes into Python),
    then the people rows. Events written before it (still pending or not) are then skipped by the handlers."""
    from siyu.core.models import OutboxEvent

    started = time.perf_counter()
    if session.get_bind().dialect.name == "postgresql":
        # the GROUP BYs below sort and hash millions of rows: in memory for this transaction, not in
        # 4 MB runs spilled to disk
        session.execute(text(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'"))
    events_through = int(session.scalar(select(func.max(OutboxEvent.id))) or 0)
    session.execute(delete(DailySales).where(DailySales.merchant_id == merchant_id))
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id))
    session.execute(delete(CustomerDimStats).where(CustomerDimStats.merchant_id == merchant_id))
    session.execute(insert(DailySales).from_select(
        ["merchant_id", *_BUCKET, "orders", "gmv_cents", "refunded_cents"], _sales_select(session, merchant_id)))
    sales_seconds = time.perf_counter() - started
    session.execute(insert(CustomerPurchaseStats).from_select(
        list(_STATS_COLUMNS), _stats_select(session, merchant_id)))
    customers_seconds = time.perf_counter() - started - sales_seconds
    session.execute(insert(CustomerDimStats).from_select(list(_DIM_COLUMNS), _dims_select(session, merchant_id)))
    dims_seconds = time.perf_counter() - started - sales_seconds - customers_seconds
    n_sales, n_orders = session.execute(select(func.count(), func.coalesce(func.sum(DailySales.orders), 0)).where(
        DailySales.merchant_id == merchant_id)).one()
    n_customers = session.scalar(select(func.count()).where(CustomerPurchaseStats.merchant_id == merchant_id))
    through = clock.today_local() - dt.timedelta(days=1)
    n_people = rebuild_people(session, merchant_id=merchant_id, through=through)
    elapsed = time.perf_counter() - started
    people_seconds = elapsed - sales_seconds - customers_seconds - dims_seconds
    state_row = session.scalar(select(AggregateState).where(AggregateState.merchant_id == merchant_id))
    if state_row is None:
        session.add(AggregateState(merchant_id=merchant_id, built_at=clock.now(), dims_built_at=clock.now(),
                                   people_through=through, events_through=events_through))
    else:
        state_row.built_at = clock.now()
        state_row.dims_built_at = clock.now()
        state_row.people_through = through
        state_row.today_day = state_row.today_walked_at = None  # the rebuild wrote no provisional rows
        state_row.events_through = events_through
    session.flush()
    return {"merchant_id": merchant_id, "orders": int(n_orders), "daily_sales_rows": int(n_sales),
            "customer_rows": int(n_customers or 0), "buyer_day_rows": n_people, "seconds": round(elapsed, 2),
            "sales_seconds": round(sales_seconds, 2), "customers_seconds": round(customers_seconds, 2),
            "dims_seconds": round(dims_seconds, 2), "people_seconds": round(people_seconds, 2)}


def usable(session: Session, *, merchant_id: int, until: dt.datetime | None = None) -> bool:
    """Whether a view may read the aggregates: the merchant's were built and, for the per-customer rows
    (which hold each customer's whole history), the view's horizon `until` is not in the past."""
    if until is not None and until < clock.now():
        return False
    return is_built(session, merchant_id=merchant_id)


def sales_rows(session: Session, *, actor: Any, start: dt.date, end: dt.date, store_id: int | None = None,
               owner_id: int | None = None, channel: str | None = None, campaign: str | None = None,
               scope: bool = True, by: tuple[str, ...] | None = None) -> list[Any]:
    """Daily-sales buckets of the days start..end in the actor's scope (when `scope`) narrowed like
    `common.order_facts`: the order's store, its owner, its touch channel or channel group, its campaign.
    With `by` (bucket columns), summed per those columns in the database instead: rows of `by` then
    orders, GMV and refunded cents."""
    from siyu.analytics.service.common import GROUPS
    from siyu.core.auth import scoped

    if by is not None:
        keys = [DailySales.__table__.c[k] for k in by]
        stmt = select(*keys, func.sum(DailySales.orders), func.sum(DailySales.gmv_cents),
                      func.sum(DailySales.refunded_cents)).group_by(*keys)
    else:
        stmt = select(DailySales.day, DailySales.store_id, DailySales.owner_id, DailySales.guide_id,
                      DailySales.channel, DailySales.grp, DailySales.campaign, DailySales.orders,
                      DailySales.gmv_cents, DailySales.refunded_cents)
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


def sales_by_guide(session: Session, *, merchant_id: int, start: dt.date, end: dt.date, store_id: int | None,
                   channel: str | None, campaign: str | None, guide_ids: list[int]) -> dict[int, tuple[int, int]]:
    """{guide: (orders, net cents)} of the days start..end: the daily-sales buckets attributed to the guide
    (`guide_id`, else the customer's owner when the order was placed), narrowed like `sales_rows` and
    summed in the database."""
    from siyu.analytics.service.common import GROUPS

    d = DailySales
    guide = case((d.guide_id != 0, d.guide_id), else_=d.owner_id).label("guide")
    conditions = [d.merchant_id == merchant_id, d.day >= start, d.day <= end]
    if store_id is not None:
        conditions.append(d.store_id == store_id)
    if channel is not None:
        conditions.append(d.grp == channel if channel in GROUPS else d.channel == channel)
    if campaign is not None:
        conditions.append(d.campaign == campaign)
    inner = select(guide, d.orders, d.gmv_cents, d.refunded_cents).where(*conditions).subquery()
    stmt = select(inner.c.guide, func.sum(inner.c.orders), func.sum(inner.c.gmv_cents - inner.c.refunded_cents)).where(
        inner.c.guide.in_(guide_ids)).group_by(inner.c.guide)
    return {int(g): (int(n or 0), int(net or 0)) for g, n, net in session.execute(stmt)} if guide_ids else {}


def repurchase_by_owner(session: Session, *, merchant_id: int, owned: Any, until: dt.datetime,
                        most: bool = False) -> dict[int, tuple[int, int]]:
    """{owner: (their customers with a kept purchase before `until`, those with two or more)} from the
    per-customer rows (first and second kept purchase times: right for any past `until`), joined to
    `owned` (a SELECT of customer_id, owner_id) and counted in the database.

    `most`: the owners hold most of the merchant's customers (every guide). SQLite then reads the
    per-customer rows in order and looks each owner up by primary key (`cross_join`): its planner walked
    the owner index and looked each row up, about three times slower at a million customers. PostgreSQL
    hashes the join either way."""
    s = CustomerPurchaseStats
    o = owned.subquery()
    on = (s.customer_id == o.c.customer_id) & (s.merchant_id == merchant_id)
    joined = cross_join(s.__table__, o, on) if most else s.__table__.join(o, on)
    stmt = select(o.c.owner_id, func.sum(case((s.first_paid_at < until, 1), else_=0)),
                  func.sum(case((s.second_paid_at < until, 1), else_=0))).select_from(joined).where(
        s.merchant_id == merchant_id).group_by(o.c.owner_id)
    return {int(g): (int(b or 0), int(r or 0)) for g, b, r in session.execute(stmt)}


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
                 channel: str | None, campaign: str | None, scope: Any = None, until: dt.datetime | None = None
                 ) -> list[tuple[dt.date, str, int, list[int]]]:
    """(acquisition month, channel group, customers, [customers who bought again in month k, k = 1 ..
    horizon]) for the customers first buying in first..last (months), whose first purchase matches the
    channel (touch channel or group) and campaign; only customers in `scope` (a SELECT of customer ids)
    when given. Counted in the database: one row per month and group.

    `until` (a past moment inside the month `last`): as of then. The rows hold each customer's whole
    history, and every month before `last` ended before `until`, so only the last month differs: its
    members are those who first bought before `until`, and its column (who bought again in it) is counted
    from the orders paid from its first day to `until` (at most a month of orders)."""
    from siyu.analytics.service.common import GROUPS, add_months, months_between

    s = CustomerPurchaseStats
    horizon = min(horizon, MAX_MONTH_BIT)
    conditions = [s.merchant_id == merchant_id, s.first_month.is_not(None), s.first_month >= first,
                  s.first_month <= last]
    if channel is not None:
        conditions.append(s.first_group == channel if channel in GROUPS else s.first_channel == channel)
    if campaign is not None:
        conditions.append(s.first_campaign == campaign)
    if scope is not None:
        conditions.append(s.customer_id.in_(scope))
    month_start, month_end = clock.local_day_bounds(last)[0], clock.local_day_bounds(add_months(last, 1))[0]
    partial = until is not None and until < month_end
    # counted per month, group and bitmask of the months bought again (a few thousand rows, read from the
    # cohorts index alone), the bits tallied here; as of a moment inside the last month, that month's
    # members are those who first bought before it (the rows themselves read: a month of customers), the
    # earlier months' all of theirs (still from the index alone)
    per_bits = select(s.first_month, s.first_group, s.month_bits, func.count()).group_by(
        s.first_month, s.first_group, s.month_bits)
    parts = [per_bits.where(*conditions)] if not partial else [
        per_bits.where(*conditions, s.first_month < last),
        per_bits.where(*conditions, s.first_month == last, s.first_paid_at < until)]
    cells: dict[tuple[dt.date, str], list[int]] = {}
    for m, g, bits, n in (row for part in parts for row in session.execute(part)):
        cell = cells.setdefault((m, g), [0] * (horizon + 1))
        cell[0] += int(n)
        bits = int(bits or 0)
        for k in range(1, horizon + 1):
            if bits >> k & 1:
                cell[k] += int(n)
    out = [(m, g, cell[0], cell[1:]) for (m, g), cell in cells.items()]
    if partial and until is not None and horizon:
        bought = orders.kept_buyers_select(merchant_id=merchant_id, since=month_start, until=until)
        again = {(m, g): int(n) for m, g, n in session.execute(
            select(s.first_month, s.first_group, func.count()).where(
                *conditions, s.first_month < last, s.customer_id.in_(bought)).group_by(s.first_month, s.first_group))}
        for m, g, _n, retained in out:
            k = months_between(m, last)
            if 1 <= k <= len(retained):
                retained[k - 1] = again.get((m, g), 0)
    return out


# ---------------------------------------------------------------- people (funnel and GMV visitors): service.people


def rebuild_people(session: Session, *, merchant_id: int, through: dt.date) -> int:
    """The people rows of a rebuild: every day up to `through` counted afresh (`people.rebuild`)."""
    return people.rebuild(session, merchant_id=merchant_id, through=through)


def people_through(session: Session, *, merchant_id: int) -> dt.date | None:
    return people.people_through(session, merchant_id=merchant_id)


def advance_people(session: Session, *, today: dt.date) -> dict[int, int]:
    """The daily job: every built merchant's completed days counted (`people.advance`)."""
    return people.advance(session, today=today)
