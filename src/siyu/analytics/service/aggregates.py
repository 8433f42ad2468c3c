"""The analytics aggregates: small tables the views read instead of scanning every order.

- `analytics_daily_sales`: paid goods orders per Shanghai day × store × owner × attributed guide × touch
  channel × channel group × campaign (orders, GMV, refunded cents, refunds booked to the day of the sale);
- `analytics_customer_stats`: one row per customer with a paid goods order (orders, kept orders and
  cents, first and last kept purchase, the acquisition channel of the first, the months bought again).

Kept up to date by the handlers on `order.paid` / `order.refunded` / `customer.merged`
(`siyu.analytics.handlers.aggregates`): a payment adds to its day's bucket and to its customer's row (a
few statements from the event's payload: the handler runs on every checkout), a refund adds its amount to
the bucket of the sale, and a refund or a merge recomputes the customer's row from their orders
(idempotent, whatever the order the events come in). `rebuild` recomputes the tables of a merchant in the
database (INSERT … SELECT … GROUP BY over `orders.paid_goods_select`: no order comes into Python) and
marks the merchant built (`analytics_aggregate_state`): the views read the aggregates only for built
merchants, and compute from the orders before that. A customer's row is recomputed by the rebuild's own
statement narrowed to them; tests/analytics/test_aggregates.py checks that the maintained rows equal a
rebuild and that the views give the same numbers from either source.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

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
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.analytics.models import AggregateState, CustomerPurchaseStats, DailySales
from siyu.analytics.service import people
from siyu.analytics.service.common import (
    channel_group,
    channel_group_sql,
    local_day,
    month_of,
    months_between,
)
from siyu.core import clock
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
    """Recompute one customer's row from their orders (none when they have no paid goods order): the
    rebuild's statement narrowed to the customer (read through the orders' customer index)."""
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id,
                                                        CustomerPurchaseStats.customer_id == customer_id))
    session.execute(insert(CustomerPurchaseStats).from_select(
        list(_STATS_COLUMNS), _stats_select(session, merchant_id, customer_id)))
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


def on_order_paid(session: Session, *, merchant_id: int, fact: PaidOrderFact) -> None:
    """A goods order was paid (`fact`: from the event's payload, not read again): its sale joins its day's
    bucket and the customer's row takes it in one or two statements; only an unusual payment (see
    `_bump_customer`) recomputes the customer's row from their orders."""
    now = orders.order_now(session, merchant_id=merchant_id, order_id=fact.order_id)
    if now is None:
        return
    customer_id, refunded = now
    f = fact._replace(customer_id=customer_id)  # a merge since the payment moved the order
    # Refunds handled before this (events out of order) already added theirs: count only the sale.
    add_sale(session, merchant_id=merchant_id, bucket=bucket_of(f), orders_n=1, gmv_cents=f.total_cents,
             refunded_cents=0)
    people.on_order_paid(session, merchant_id=merchant_id, customer_id=f.customer_id, day=local_day(f.paid_at))
    if refunded or customer_id != fact.customer_id or not _bump_customer(session, merchant_id=merchant_id, f=f):
        refresh_customer(session, merchant_id=merchant_id, customer_id=f.customer_id)


def _bump_customer(session: Session, *, merchant_id: int, f: PaidOrderFact) -> bool:
    """The usual payment added to the customer's row without reading their orders: a first purchase
    inserts the row; a later one (after the customer's last kept purchase) is one conditional UPDATE.
    False when that does not apply (then recompute): the row has no kept order, or the payment is not the
    customer's latest. (The caller recomputes an order refunded since: a refund handled first may already
    count it.) A row that already counts this order has a last purchase at or after it, so the UPDATE
    cannot count it twice."""
    s = CustomerPurchaseStats
    if f.total_cents <= f.refunded_cents:
        return False
    month = month_of(local_day(f.paid_at))
    first_month = session.execute(select(s.first_month).where(s.merchant_id == merchant_id,
                                                              s.customer_id == f.customer_id)).first()
    if first_month is None:  # the customer's first paid goods order
        make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        done = session.execute(make(s.__table__).values(
            merchant_id=merchant_id, customer_id=f.customer_id, paid_orders=1, kept_orders=1, kept_cents=f.total_cents,
            first_paid_at=f.paid_at, last_paid_at=f.paid_at, first_month=month, first_channel=f.channel or "",
            first_group=channel_group(f), first_campaign=f.campaign or "", month_bits=0).on_conflict_do_nothing()
            .returning(s.id))
        return done.first() is not None
    if first_month[0] is None:
        return False
    k = months_between(first_month[0], month)
    bit = 1 << k if 0 < k <= MAX_MONTH_BIT else 0
    done = session.execute(s.__table__.update().where(
        s.merchant_id == merchant_id, s.customer_id == f.customer_id, s.first_month == first_month[0],
        s.last_paid_at < f.paid_at).values(
        paid_orders=s.paid_orders + 1, kept_orders=s.kept_orders + 1, kept_cents=s.kept_cents + f.total_cents,
        second_paid_at=func.coalesce(s.second_paid_at, bindparam(None, f.paid_at, type_=s.second_paid_at.type)),
        last_paid_at=f.paid_at, month_bits=s.month_bits.op("|")(literal_column(str(int(bit))))))
    return done.rowcount == 1


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
    through = session.scalar(select(AggregateState.events_through).where(AggregateState.merchant_id == merchant_id))
    return through is not None and event_id <= through


def rebuild(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """Recompute the merchant's aggregates from its orders and mark it built: the daily sales and the
    per-customer rows each in one INSERT … SELECT … GROUP BY in the database (no order comes into Python),
    then the people rows. Events written before it (still pending or not) are then skipped by the handlers."""
    from siyu.core.models import OutboxEvent

    started = time.perf_counter()
    events_through = int(session.scalar(select(func.max(OutboxEvent.id))) or 0)
    session.execute(delete(DailySales).where(DailySales.merchant_id == merchant_id))
    session.execute(delete(CustomerPurchaseStats).where(CustomerPurchaseStats.merchant_id == merchant_id))
    session.execute(insert(DailySales).from_select(
        ["merchant_id", *_BUCKET, "orders", "gmv_cents", "refunded_cents"], _sales_select(session, merchant_id)))
    sales_seconds = time.perf_counter() - started
    session.execute(insert(CustomerPurchaseStats).from_select(
        list(_STATS_COLUMNS), _stats_select(session, merchant_id)))
    customers_seconds = time.perf_counter() - started - sales_seconds
    n_sales, n_orders = session.execute(select(func.count(), func.coalesce(func.sum(DailySales.orders), 0)).where(
        DailySales.merchant_id == merchant_id)).one()
    n_customers = session.scalar(select(func.count()).where(CustomerPurchaseStats.merchant_id == merchant_id))
    through = clock.today_local() - dt.timedelta(days=1)
    n_people = rebuild_people(session, merchant_id=merchant_id, through=through)
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
    return {"merchant_id": merchant_id, "orders": int(n_orders), "daily_sales_rows": int(n_sales),
            "customer_rows": int(n_customers or 0), "buyer_day_rows": n_people, "seconds": round(elapsed, 2),
            "sales_seconds": round(sales_seconds, 2), "customers_seconds": round(customers_seconds, 2),
            "people_seconds": round(elapsed - sales_seconds - customers_seconds, 2)}


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


def repurchase_by_owner(session: Session, *, merchant_id: int, owned: Any, until: dt.datetime
                        ) -> dict[int, tuple[int, int]]:
    """{owner: (their customers with a kept purchase before `until`, those with two or more)} from the
    per-customer rows (first and second kept purchase times: right for any past `until`), joined to
    `owned` (a SELECT of customer_id, owner_id) and counted in the database."""
    s = CustomerPurchaseStats
    o = owned.subquery()
    stmt = select(o.c.owner_id, func.sum(case((s.first_paid_at < until, 1), else_=0)),
                  func.sum(case((s.second_paid_at < until, 1), else_=0))).join(
        s, (s.customer_id == o.c.customer_id) & (s.merchant_id == merchant_id)).group_by(o.c.owner_id)
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
                 channel: str | None, campaign: str | None, scope: Any = None
                 ) -> list[tuple[dt.date, str, int, list[int]]]:
    """(acquisition month, channel group, customers, [customers who bought again in month k, k = 1 ..
    horizon]) for the customers first buying in first..last (months), whose first purchase matches the
    channel (touch channel or group) and campaign; only customers in `scope` (a SELECT of customer ids)
    when given. Counted in the database: one row per month and group."""
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
        conditions.append(s.customer_id.in_(scope))
    # bigint >> integer (PostgreSQL has no bigint >> bigint); k is a small int, written as a literal
    cols = [func.sum(s.month_bits.op(">>")(literal_column(str(int(k)))).op("&")(literal_column("1")))
            for k in range(1, horizon + 1)]
    stmt = select(s.first_month, s.first_group, func.count(), *cols).where(*conditions).group_by(
        s.first_month, s.first_group)
    return [(m, g, int(n), [int(x or 0) for x in rest]) for m, g, n, *rest in session.execute(stmt)]


# ---------------------------------------------------------------- people (funnel and GMV visitors): service.people


def rebuild_people(session: Session, *, merchant_id: int, through: dt.date) -> int:
    """The people rows of a rebuild: every day up to `through` counted afresh (`people.rebuild`)."""
    return people.rebuild(session, merchant_id=merchant_id, through=through)


def people_through(session: Session, *, merchant_id: int) -> dt.date | None:
    return people.people_through(session, merchant_id=merchant_id)


def advance_people(session: Session, *, today: dt.date) -> dict[int, int]:
    """The daily job: every built merchant's completed days counted (`people.advance`)."""
    return people.advance(session, today=today)
