"""attribution: funnel events (exposure, view, add to cart, order, pay), one narrow row each with the last
touch of its customer or visitor, for analytics to scan by (merchant_id, day).

Exposure and view come from the shop pages' beacon; add to cart from the orders cart service; order and pay
from the handlers of `order.created` and `order.paid`. A client may only send exposure and view."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FunnelEvent, Touch
from siyu.attribution.service import ownership
from siyu.attribution.service.shares import last_touch, valid_visitor_id
from siyu.core import clock
from siyu.core.errors import field_error
from siyu.db import execute_core

FUNNEL_KINDS = {"exposure": 1, "view": 2, "add_to_cart": 3, "order": 4, "pay": 5}
KIND_NAMES = {v: k for k, v in FUNNEL_KINDS.items()}
CLIENT_KINDS = ("exposure", "view")
MAX_BEACON_ITEMS = 50


def _context(session: Session, *, merchant_id: int, customer_id: int | None, visitor_id: str | None,
             touch_id: int | None, at: dt.datetime, touch_known: bool = False) -> tuple[int | None, str | None, int | None]:
    touch = None
    if touch_id is not None:
        touch = session.get(Touch, touch_id)
        if touch is not None and touch.merchant_id != merchant_id:
            touch = None
    if touch is None and not touch_known:
        touch = last_touch(session, merchant_id=merchant_id, customer_id=customer_id, visitor_id=visitor_id, before=at)
        if touch is None and customer_id is not None and visitor_id:
            touch = last_touch(session, merchant_id=merchant_id, visitor_id=visitor_id, before=at)
    if touch is None:
        return None, None, None
    return touch.id, touch.channel, touch.share_id


def record_events(session: Session, *, merchant_id: int, kind: str, customer_id: int | None = None,
                  visitor_id: str | None = None, product_ids: Iterable[int | None] = (None,), order_id: int | None = None,
                  amount_cents: int = 0, touch_id: int | None = None, at: dt.datetime | None = None,
                  touch_known: bool = False) -> int:
    """Write one funnel row per product (one row when there is none), each carrying the last touch of the
    customer (else the visitor) at that time, or the given touch (`touch_known`: `touch_id` is that last
    touch, None when there is none, so it is not looked up). Returns the rows written."""
    if kind not in FUNNEL_KINDS:
        raise field_error("kind", "Unknown funnel event.")
    visitor_id = valid_visitor_id(visitor_id)
    if customer_id is None and visitor_id is None:
        return 0
    at = at or clock.now()
    day = at.astimezone(clock.SHANGHAI).date()
    touch, channel, share_id = _context(session, merchant_id=merchant_id, customer_id=customer_id,
                                        visitor_id=visitor_id, touch_id=touch_id, at=at, touch_known=touch_known)
    rows = [{"merchant_id": merchant_id, "kind": FUNNEL_KINDS[kind], "at": at, "day": day, "customer_id": customer_id,
             "visitor_id": visitor_id, "touch_id": touch, "channel": channel, "share_id": share_id,
             "product_id": product_id, "order_id": order_id, "amount_cents": amount_cents}
            for product_id in dict.fromkeys(product_ids)]
    execute_core(session, insert(FunnelEvent.__table__), rows)
    return len(rows)


# The `order.created` handlers whose work `record_order_created` does (keys as `core.events.handles`
# registers them): an order placed with it writes the event processed.
ORDER_CREATED_HANDLERS = ("siyu.attribution.handlers.ownership.keep_order_snapshot",
                          "siyu.attribution.handlers.shares.on_order_created")


def record_order_created(session: Session, *, merchant_id: int, order_id: int, order_no: str, customer_id: int,
                         snapshot: dict[str, Any], total_cents: int, created_at: dt.datetime) -> None:
    """What attribution keeps of a goods order, written in the order's own transaction (what the
    `ORDER_CREATED_HANDLERS` do after the commit otherwise): its copy of the order's attribution snapshot
    and its funnel "order" row. `snapshot` is `ownership.order_attribution`'s, taken at `created_at`: its
    touch is the customer's last one then, unless a share code narrowed the search and found none."""
    ownership.record_order(session, merchant_id=merchant_id, order_id=order_id, order_no=order_no,
                           customer_id=customer_id, snapshot=snapshot, total_cents=total_cents, created_at=created_at)
    touch_id = snapshot.get("touch_id")
    record_events(session, merchant_id=merchant_id, kind="order", customer_id=customer_id, order_id=order_id,
                  amount_cents=total_cents, touch_id=touch_id if isinstance(touch_id, int) else None, at=created_at,
                  touch_known=isinstance(touch_id, int) or not snapshot.get("share_code"))


def record_event(session: Session, *, merchant_id: int, kind: str, customer_id: int | None = None,
                 visitor_id: str | None = None, product_id: int | None = None, order_id: int | None = None,
                 amount_cents: int = 0, touch_id: int | None = None, at: dt.datetime | None = None) -> int:
    """One funnel row (see `record_events`)."""
    return record_events(session, merchant_id=merchant_id, kind=kind, customer_id=customer_id, visitor_id=visitor_id,
                         product_ids=(product_id,), order_id=order_id, amount_cents=amount_cents, touch_id=touch_id,
                         at=at)


def record_beacon(session: Session, *, merchant_id: int, kind: str, product_ids: list[int], customer_id: int | None,
                  visitor_id: str | None) -> int:
    """What a shop page reports: products shown (exposure) or opened (view)."""
    if kind not in CLIENT_KINDS:
        raise field_error("kind", "Unknown funnel event.")
    if len(product_ids) > MAX_BEACON_ITEMS:
        raise field_error("product_ids", "At most {n} items.", n=MAX_BEACON_ITEMS)
    ids = [i for i in product_ids if isinstance(i, int) and 0 < i < 2**53]
    return record_events(session, merchant_id=merchant_id, kind=kind, customer_id=customer_id, visitor_id=visitor_id,
                         product_ids=ids or (None,))


def counts_by_kind(session: Session, *, merchant_id: int, start: dt.date, end: dt.date) -> dict[str, int]:
    """Funnel rows per kind for Shanghai days start..end (inclusive)."""
    rows = session.execute(select(FunnelEvent.kind, func.count()).where(
        FunnelEvent.merchant_id == merchant_id, FunnelEvent.day >= start, FunnelEvent.day <= end)
        .group_by(FunnelEvent.kind))
    found = {KIND_NAMES.get(k, str(k)): n for k, n in rows}
    return {name: found.get(name, 0) for name in FUNNEL_KINDS}


def visit_stats(session: Session, *, merchant_id: int, customer_id: int) -> dict[str, object] | None:
    """A customer's visits: the Shanghai days with any funnel event of theirs (a day counts once),
    and the time of the latest event or touch. None when attribution has recorded nothing of them."""
    visits, last_event = session.execute(
        select(func.count(func.distinct(FunnelEvent.day)), func.max(FunnelEvent.at))
        .where(FunnelEvent.merchant_id == merchant_id, FunnelEvent.customer_id == customer_id)).one()
    last_touch_at = session.scalar(select(func.max(Touch.at)).where(
        Touch.merchant_id == merchant_id, Touch.customer_id == customer_id))
    if not visits and last_touch_at is None:
        return None
    latest = [t for t in (last_event, last_touch_at) if t is not None]
    return {"visits": int(visits or 0), "last_visit_at": max(latest) if latest else None}


@dataclasses.dataclass(frozen=True)
class OrderStep:
    order_id: int
    customer_id: int
    total_cents: int
    created_at: dt.datetime
    paid_cents: int = 0
    paid_at: dt.datetime | None = None
    # What the customer did in the shop before ordering (e.g. ("exposure", "view", "add_to_cart")), written
    # BROWSE_MINUTES apart before `created_at`.
    browsed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Visit:
    """A visit that looked without ordering (bulk, e.g. the demo's shoppers who left): its steps from `at`
    on, one BROWSE_MINUTES apart; a customer's or an anonymous visitor's."""

    at: dt.datetime
    steps: tuple[str, ...]
    customer_id: int | None = None
    visitor_id: str | None = None


BROWSE_MINUTES = 3


def record_order_steps(session: Session, *, merchant_id: int, orders: list[OrderStep],
                       visits: Iterable[Visit] = ()) -> int:
    """Funnel rows for many orders at once (orders written in bulk, e.g. the demo's year of orders, which
    emit no events): what each customer browsed before, the order and the payment, and `visits` that
    looked without ordering; each row with its customer's last touch at that time. Returns the rows written."""
    visits = list(visits)
    if not orders and not visits:
        return 0
    customer_ids = sorted({o.customer_id for o in orders} | {v.customer_id for v in visits if v.customer_id})
    touches: dict[int, list[tuple[dt.datetime, int, str, int | None]]] = {}
    for start in range(0, len(customer_ids), 1000):
        for row in session.execute(
                select(Touch.customer_id, Touch.at, Touch.id, Touch.channel, Touch.share_id)
                .where(Touch.merchant_id == merchant_id, Touch.customer_id.in_(customer_ids[start:start + 1000]))
                .order_by(Touch.at, Touch.id)):
            touches.setdefault(row.customer_id, []).append((row.at, row.id, row.channel, row.share_id))

    def context(customer_id: int, at: dt.datetime) -> dict[str, object]:
        found = touches.get(customer_id) or []
        i = bisect.bisect_right(found, (at, 2**63))
        if i == 0:
            return {"touch_id": None, "channel": None, "share_id": None}
        _at, touch_id, channel, share_id = found[i - 1]
        return {"touch_id": touch_id, "channel": channel, "share_id": share_id}

    rows = []

    def add(kind: str, at: dt.datetime, customer_id: int | None, visitor_id: str | None, order_id: int | None,
            cents: int) -> None:
        if kind not in FUNNEL_KINDS:
            raise field_error("kind", "Unknown funnel event.")
        where = context(customer_id, at) if customer_id is not None else {"touch_id": None, "channel": None,
                                                                         "share_id": None}
        rows.append({"merchant_id": merchant_id, "kind": FUNNEL_KINDS[kind], "at": at,
                     "day": at.astimezone(clock.SHANGHAI).date(), "customer_id": customer_id,
                     "visitor_id": valid_visitor_id(visitor_id), **where, "product_id": None, "order_id": order_id,
                     "amount_cents": cents})

    step = dt.timedelta(minutes=BROWSE_MINUTES)
    for o in orders:
        for i, kind in enumerate(o.browsed):
            add(kind, o.created_at - step * (len(o.browsed) - i), o.customer_id, None, None, 0)
        add("order", o.created_at, o.customer_id, None, o.order_id, o.total_cents)
        if o.paid_at is not None:
            add("pay", o.paid_at, o.customer_id, None, o.order_id, o.paid_cents)
    for v in visits:
        if v.customer_id is None and valid_visitor_id(v.visitor_id) is None:
            continue
        for i, kind in enumerate(v.steps):
            add(kind, v.at + step * i, v.customer_id, v.visitor_id, None, 0)
    session.flush()
    for start in range(0, len(rows), 2000):
        session.connection().execute(insert(FunnelEvent.__table__), rows[start:start + 2000])
    return len(rows)
