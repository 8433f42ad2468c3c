"""Bulk reads for analytics: paid goods orders as plain tuples (no ORM objects), so a scan over
millions of orders costs one query and no identity-map work."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from siyu.core.auth import Principal, scoped
from siyu.db import execute_core
from siyu.orders.models import Order

FACTS_BATCH = 50_000


class PaidOrderFact(NamedTuple):
    order_id: int
    customer_id: int
    owner_id: int | None
    store_id: int | None
    paid_at: dt.datetime
    total_cents: int
    refunded_cents: int
    fulfilment_type: str
    # From the order's attribution snapshot (None when unknown).
    channel: str | None
    campaign: str | None
    guide_id: int | None
    sharer_staff_id: int | None
    sharer_customer_id: int | None
    referrer_customer_id: int | None
    live_id: int | None


_DIGITS = re.compile(r"[+-]?[0-9]+")


def _int_or_none(value: Any) -> int | None:
    """An id of the attribution snapshot: a JSON number (truncated) or boolean, or a string of ASCII digits;
    anything else is unknown. `paid_goods_select` reads the snapshot by the same rule in SQL."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def paid_order_facts(session: Session, *, merchant_id: int, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, actor: Principal | None = None,
                     store_id: int | None = None, owner_id: int | None = None) -> Iterator[PaidOrderFact]:
    """Every goods order of the merchant paid in [since, until) (None: unbounded), in paid time order,
    in the actor's scope when given (a guide: orders of their own customers). Service orders
    (recharge, paid membership) are not sales and are left out. Refunded value is as of now."""
    # The snapshot is read whole and picked apart here: cheaper than one JSON extraction per key in SQL.
    stmt = select(Order.id, Order.customer_id, Order.owner_id, Order.store_id, Order.paid_at, Order.total_cents,
                  Order.refunded_cents, Order.fulfilment_type, Order.attribution).where(
        Order.merchant_id == merchant_id, Order.paid_at.is_not(None), Order.kind == "goods")
    if actor is not None:
        stmt = scoped(stmt, Order, actor)
    if since is not None:
        stmt = stmt.where(Order.paid_at >= since)
    if until is not None:
        stmt = stmt.where(Order.paid_at < until)
    if store_id is not None:
        stmt = stmt.where(Order.store_id == store_id)
    if owner_id is not None:
        stmt = stmt.where(Order.owner_id == owner_id)
    stmt = stmt.order_by(Order.paid_at, Order.id).execution_options(yield_per=FACTS_BATCH)
    for r in session.execute(stmt):
        yield _fact(r)


def paid_order_facts_of(session: Session, *, merchant_id: int, customer_ids: list[int], since: dt.datetime,
                        until: dt.datetime) -> list[PaidOrderFact]:
    """`paid_order_facts` of some customers only (paid in [since, until)), in paid time order."""
    out: list[PaidOrderFact] = []
    for i in range(0, len(customer_ids), 1000):
        stmt = select(Order.id, Order.customer_id, Order.owner_id, Order.store_id, Order.paid_at, Order.total_cents,
                      Order.refunded_cents, Order.fulfilment_type, Order.attribution).where(
            Order.merchant_id == merchant_id, Order.customer_id.in_(customer_ids[i:i + 1000]),
            Order.paid_at >= since, Order.paid_at < until, Order.kind == "goods")
        out.extend(_fact(r) for r in session.execute(stmt))
    out.sort(key=lambda f: (f.paid_at, f.order_id))
    return out


def paid_customers_since(session: Session, *, merchant_id: int, since: dt.datetime, until: dt.datetime) -> set[int]:
    """The customers with a goods order paid in [since, until)."""
    return {int(c) for (c,) in session.execute(select(Order.customer_id).where(
        Order.merchant_id == merchant_id, Order.paid_at >= since, Order.paid_at < until,
        Order.kind == "goods").distinct())}


def _fact(r: Any) -> PaidOrderFact:
    a = r[8] if isinstance(r[8], dict) else {}
    return PaidOrderFact(int(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5]), int(r[6] or 0), r[7],
                         a.get("channel") or None, a.get("campaign") or None, _int_or_none(a.get("guide_id")),
                         _int_or_none(a.get("sharer_staff_id")), _int_or_none(a.get("sharer_customer_id")),
                         _int_or_none(a.get("referrer_customer_id")), _int_or_none(a.get("live_id")))


def customer_order_totals(session: Session, *, merchant_id: int, until: dt.datetime | None = None,
                          kept_only: bool = True) -> Iterator[tuple[int, dt.datetime, dt.datetime, int, int]]:
    """(customer_id, first paid_at, last paid_at, orders, kept cents) per customer over the merchant's paid
    goods orders before `until`, aggregated in the database (one row per customer, not per order).
    `kept_only`: leave out orders refunded whole (then kept cents are order value minus refunds)."""
    stmt = select(Order.customer_id, func.min(Order.paid_at), func.max(Order.paid_at), func.count(),
                  func.sum(Order.total_cents - Order.refunded_cents)).where(
        Order.merchant_id == merchant_id, Order.paid_at.is_not(None), Order.kind == "goods")
    if until is not None:
        stmt = stmt.where(Order.paid_at < until)
    if kept_only:
        stmt = stmt.where(Order.total_cents > Order.refunded_cents)
    stmt = stmt.group_by(Order.customer_id).execution_options(yield_per=FACTS_BATCH)
    for cid, first, last, n, kept in session.execute(stmt):
        yield int(cid), first, last, int(n), int(kept or 0)


def _shanghai_month(session: Session) -> Any:
    # Shanghai has had no daylight saving since 1991: UTC+8 is exact.
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", Order.paid_at), "YYYY-MM")
    return func.strftime("%Y-%m", Order.paid_at, "+8 hours")


def customer_purchase_months(session: Session, *, merchant_id: int, until: dt.datetime | None = None
                             ) -> Iterator[tuple[int, str]]:
    """(customer_id, "YYYY-MM") for each Shanghai month in which a customer paid a goods order (not refunded
    whole) before `until`; one row per customer and month, grouped in the database."""
    month = _shanghai_month(session).label("month")
    stmt = select(Order.customer_id, month).where(
        Order.merchant_id == merchant_id, Order.paid_at.is_not(None), Order.kind == "goods",
        Order.total_cents > Order.refunded_cents)
    if until is not None:
        stmt = stmt.where(Order.paid_at < until)
    stmt = stmt.group_by(Order.customer_id, month).execution_options(yield_per=FACTS_BATCH)
    for cid, m in session.execute(stmt):
        yield int(cid), str(m)


def first_purchase_facts(session: Session, *, merchant_id: int, until: dt.datetime | None = None
                         ) -> Iterator[PaidOrderFact]:
    """Each customer's first paid goods order (not refunded whole) before `until`, as a PaidOrderFact: the
    acquisition order of the cohorts. One row per customer (a window function picks it in the database)."""
    conditions = [Order.merchant_id == merchant_id, Order.paid_at.is_not(None), Order.kind == "goods",
                  Order.total_cents > Order.refunded_cents]
    if until is not None:
        conditions.append(Order.paid_at < until)
    rank = func.row_number().over(partition_by=Order.customer_id, order_by=(Order.paid_at, Order.id)).label("rank")
    inner = select(Order.id, rank).where(*conditions).subquery()
    stmt = select(Order.id, Order.customer_id, Order.owner_id, Order.store_id, Order.paid_at, Order.total_cents,
                  Order.refunded_cents, Order.fulfilment_type, Order.attribution).join(
        inner, inner.c.id == Order.id).where(inner.c.rank == 1).execution_options(yield_per=FACTS_BATCH)
    for r in session.execute(stmt):
        yield _fact(r)


# ---------------------------------------------------------------- set-based reads (INSERT … SELECT in analytics)

SNAPSHOT_IDS = ("guide_id", "sharer_staff_id", "sharer_customer_id", "referrer_customer_id", "live_id")


# The snapshot reads below are built once per dialect and key (constructing a CASE over JSON operators is
# not free, and analytics builds these SELECTs for every report it computes).
@functools.cache
def _snapshot_text(dialect: str, key: str) -> Any:
    """The snapshot's `key` as text, NULL when missing or empty (as `a.get(key) or None`)."""
    if dialect == "postgresql":
        value = Order.attribution.op("->>", return_type=String)(literal(key, String))
    else:
        value = func.json_extract(Order.attribution, literal(f'$."{key}"', String))
    return func.nullif(value, "")


@functools.cache
def _snapshot_id(dialect: str, key: str) -> Any:
    """The snapshot's `key` as an id by the rule of `_int_or_none` (numbers truncated, booleans 0/1,
    strings of ASCII digits), NULL otherwise."""
    path = literal(key, String)
    if dialect == "postgresql":
        raw = Order.attribution.op("->", return_type=JSON)(path)
        text_value = Order.attribution.op("->>", return_type=String)(path)
        return case(
            (func.json_typeof(raw) == "number", cast(func.trunc(cast(text_value, Numeric)), BigInteger)),
            (func.json_typeof(raw) == "boolean", case((text_value == "true", 1), else_=0)),
            (and_(func.json_typeof(raw) == "string", text_value.op("~")(literal_column("'^[+-]?[0-9]+$'"))),
             cast(text_value, BigInteger)))
    value = func.json_extract(Order.attribution, literal(f'$."{key}"', String))
    digits = or_(and_(value.op("GLOB")(literal_column("'[0-9]*'")), value.op("NOT GLOB")(literal_column("'*[^0-9]*'"))),
                 and_(value.op("GLOB")(literal_column("'[+-][0-9]*'")),
                      func.substr(value, 2).op("NOT GLOB")(literal_column("'*[^0-9]*'"))))
    # a simple CASE: the type is taken once (each json_extract parses the snapshot again)
    return case({"integer": value, "real": cast(value, Integer),
                 "text": case((digits, cast(value, Integer)))}, value=func.typeof(value))


def shanghai_day(dialect: str, column: Any) -> tuple[Any, Any, Any]:
    """(Shanghai day, its month's first day, the month as year * 12 + month - 1) of a UTC timestamp column.
    Shanghai has had no daylight saving since 1991: on SQLite (naive UTC text) it is UTC+8 exactly."""
    if dialect == "postgresql":
        local = func.timezone(literal_column("'Asia/Shanghai'"), column)
        month_no = cast(func.extract("year", local) * 12 + func.extract("month", local) - 1, Integer)
        return cast(local, Date), cast(func.date_trunc(literal_column("'month'"), local), Date), month_no
    plus8 = literal_column("'+8 hours'")
    year = cast(func.strftime(literal_column("'%Y'"), column, plus8), Integer)
    month = cast(func.strftime(literal_column("'%m'"), column, plus8), Integer)
    return (func.date(column, plus8), func.strftime(literal_column("'%Y-%m-01'"), column, plus8),
            year * 12 + month - 1)


def paid_goods_select(dialect: str, *, merchant_id: int, customer_id: int | None = None) -> Select[Any]:
    """The merchant's paid goods orders (one customer's when given) as a Select for set-based work in the
    database (an analytics rebuild: INSERT … SELECT … GROUP BY), the columns of a PaidOrderFact plus the
    Shanghai `day`, `month` and `month_no` of the payment and `kept` (1 unless refunded whole). The
    snapshot's keys are read in SQL by the rules `paid_order_facts` applies in Python."""
    day, month, month_no = shanghai_day(dialect, Order.paid_at)
    merchant = Order.merchant_id
    if customer_id is not None:
        conditions = [merchant == merchant_id, Order.customer_id == customer_id]
    elif dialect == "sqlite":
        # The whole merchant: SQLite would walk (merchant_id, paid_at) and fetch every row out of order
        # (5x slower at 1M orders than reading the table through); "+ 0" keeps it off that index.
        conditions = [merchant + 0 == merchant_id]
    else:
        conditions = [merchant == merchant_id]
    conditions += [Order.paid_at.is_not(None), Order.kind == "goods"]
    return select(
        Order.id.label("order_id"), Order.customer_id.label("customer_id"), Order.owner_id.label("owner_id"),
        Order.store_id.label("store_id"), Order.paid_at.label("paid_at"), day.label("day"), month.label("month"),
        month_no.label("month_no"), Order.total_cents.label("total_cents"),
        func.coalesce(Order.refunded_cents, 0).label("refunded_cents"),
        case((Order.total_cents > func.coalesce(Order.refunded_cents, 0), 1), else_=0).label("kept"),
        Order.fulfilment_type.label("fulfilment_type"),
        _snapshot_text(dialect, "channel").label("channel"), _snapshot_text(dialect, "campaign").label("campaign"),
        *(_snapshot_id(dialect, key).label(key) for key in SNAPSHOT_IDS)).where(*conditions)


def kept_buyers_select(*, merchant_id: int, since: dt.datetime, until: dt.datetime) -> Select[Any]:
    """A SELECT of the customer ids with a paid goods order not refunded whole paid in [since, until)
    (repeated per order), for analytics to narrow its per-customer rows to in the database."""
    return select(Order.customer_id).where(
        Order.merchant_id == merchant_id, Order.paid_at >= since, Order.paid_at < until, Order.kind == "goods",
        Order.total_cents > func.coalesce(Order.refunded_cents, 0))


def paid_order_fact(session: Session, *, merchant_id: int, order_id: int) -> PaidOrderFact | None:
    """One paid goods order's fact (None when it is not one): one read by primary key."""
    stmt = select(Order.id, Order.customer_id, Order.owner_id, Order.store_id, Order.paid_at, Order.total_cents,
                  Order.refunded_cents, Order.fulfilment_type, Order.attribution).where(
        Order.id == order_id, Order.merchant_id == merchant_id, Order.paid_at.is_not(None), Order.kind == "goods")
    row = session.execute(stmt).first()
    return _fact(row) if row is not None else None


def order_now(session: Session, *, merchant_id: int, order_id: int) -> tuple[int, int] | None:
    """(customer id, order value refunded so far) of an order as it is now (None when there is no such
    order): one read by primary key, for a handler holding an older event's payload (the order may have
    moved to another customer in a merge, or been refunded since)."""
    row = execute_core(session, _ORDER_NOW, {"order_id": order_id, "merchant_id": merchant_id}).first()
    return None if row is None else (int(row[0]), int(row[1]))


_ORDERS = Order.__table__
_ORDER_NOW = select(_ORDERS.c.customer_id, func.coalesce(_ORDERS.c.refunded_cents, 0)).where(
    _ORDERS.c.id == bindparam("order_id", type_=BigInteger()),
    _ORDERS.c.merchant_id == bindparam("merchant_id", type_=BigInteger()))


def fact_of_paid_event(payload: dict[str, Any]) -> PaidOrderFact:
    """The fact of the order an `order.paid` payload reports (as it was paid: nothing refunded yet),
    without reading the order."""
    a = payload.get("attribution")
    a = a if isinstance(a, dict) else {}
    paid_at = payload["paid_at"]
    if isinstance(paid_at, str):
        paid_at = dt.datetime.fromisoformat(paid_at)
    return PaidOrderFact(int(payload["order_id"]), int(payload["customer_id"]), payload.get("owner_id"),
                         payload.get("store_id"), paid_at.astimezone(dt.UTC), int(payload["total_cents"]), 0,
                         payload["fulfilment_type"], a.get("channel") or None, a.get("campaign") or None,
                         _int_or_none(a.get("guide_id")), _int_or_none(a.get("sharer_staff_id")),
                         _int_or_none(a.get("sharer_customer_id")), _int_or_none(a.get("referrer_customer_id")),
                         _int_or_none(a.get("live_id")))
