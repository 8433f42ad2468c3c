"""Bulk reads for analytics: paid goods orders as plain tuples (no ORM objects), so a scan over
millions of orders costs one query and no identity-map work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.auth import Principal, scoped
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


def _int_or_none(value: Any) -> int | None:
    if value in (None, "", "null"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
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
