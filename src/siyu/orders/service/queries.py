"""Reading orders: lists with filters for staff and customers, the detail bundle, the CSV export
and today's figures for the dashboard."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from siyu.core import audit, clock
from siyu.core.auth import Principal, scoped
from siyu.core.errors import BadRequest, PermissionDenied
from siyu.core.pagination import Page, paginate
from siyu.core.privacy import mask_phone
from siyu.orders.models import Order, OrderHistory, OrderLine, RefundLine, RefundRequest
from siyu.orders.service.common import after_sales_closes_at, get_order, order_lines, order_settings
from siyu.orders.service.refunds import refund_lines_of, refunds_of_order
from siyu.orders.states import OrderStatus, RefundStatus
from siyu.payments import service as payments

FULFILMENT_TYPES = ("delivery", "pickup", "leader")
MAX_EXPORT_ROWS = 50_000


@dataclasses.dataclass
class OrderFilter:
    status: str | None = None
    store_id: int | None = None
    fulfilment_type: str | None = None
    customer_id: int | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    q: str | None = None


def _filtered(stmt: Select[Any], f: OrderFilter) -> Select[Any]:
    if f.status:
        if f.status not in {s.value for s in OrderStatus}:
            raise BadRequest("Unknown order status.", code="invalid_filter", details={"status": f.status})
        stmt = stmt.where(Order.status == f.status)
    if f.store_id:
        stmt = stmt.where(Order.store_id == f.store_id)
    if f.fulfilment_type:
        if f.fulfilment_type not in FULFILMENT_TYPES:
            raise BadRequest("Unknown fulfilment type.", code="invalid_filter",
                             details={"fulfilment_type": f.fulfilment_type})
        stmt = stmt.where(Order.fulfilment_type == f.fulfilment_type)
    if f.customer_id:
        stmt = stmt.where(Order.customer_id == f.customer_id)
    if f.created_from:
        stmt = stmt.where(Order.created_at >= clock.local_day_bounds(f.created_from)[0])
    if f.created_to:
        stmt = stmt.where(Order.created_at < clock.local_day_bounds(f.created_to)[1])
    if f.q:
        q = f.q.strip()[:40]
        stmt = stmt.where(or_(Order.order_no == q, Order.order_no.startswith(q, autoescape=True)))
    return stmt


def list_orders(session: Session, *, actor: Principal, filters: OrderFilter | None = None,
                cursor: str | None = None, limit: int | None = None) -> Page[Order]:
    """Orders in the actor's scope (brand: all; agent and store manager: their stores; guide: their
    own customers'; a customer: their own), filtered, newest first."""
    f = filters or OrderFilter()
    if actor.kind == "customer":
        stmt = select(Order).where(Order.merchant_id == actor.merchant_id, Order.customer_id == actor.customer_id)
        f = dataclasses.replace(f, customer_id=None, store_id=None)
    else:
        stmt = scoped(select(Order), Order, actor)
    return paginate(session, _filtered(stmt, f), Order.id, cursor=cursor, limit=limit)


def lines_of(session: Session, order_ids: list[int]) -> dict[int, list[OrderLine]]:
    out: dict[int, list[OrderLine]] = {i: [] for i in order_ids}
    if order_ids:
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)):
            out[line.order_id].append(line)
    return out


def history_of(session: Session, order_id: int) -> list[OrderHistory]:
    return list(session.scalars(select(OrderHistory).where(OrderHistory.order_id == order_id)
                                .order_by(OrderHistory.id)))


@dataclasses.dataclass
class OrderDetail:
    order: Order
    lines: list[OrderLine]
    history: list[OrderHistory]
    refunds: list[RefundRequest]
    refund_lines: dict[int, list[RefundLine]]
    payments: list[Any]
    after_sales_closes_at: dt.datetime | None


def order_detail(session: Session, order_id: int, *, actor: Principal) -> OrderDetail:
    """Everything about one order in the actor's scope: lines, history, refunds and payments."""
    order = get_order(session, order_id, actor=actor)
    refunds = refunds_of_order(session, order.id)
    days = order_settings(session, order.merchant_id).after_sales_days
    return OrderDetail(
        order=order, lines=order_lines(session, order.id), history=history_of(session, order.id), refunds=refunds,
        refund_lines=refund_lines_of(session, [r.id for r in refunds]),
        payments=payments.payments_for_order(session, merchant_id=order.merchant_id, order_id=order.id),
        after_sales_closes_at=after_sales_closes_at(order, days=days),
    )


EXPORT_COLUMNS = ["order_no", "created_at", "status", "fulfilment_type", "customer_id", "owner_id", "store_id",
                  "items", "subtotal_cents", "adjustments_cents", "shipping_cents", "total_cents", "paid_cents",
                  "refunded_cents", "receiver", "phone", "address", "carrier", "tracking_no", "paid_at",
                  "shipped_at", "completed_at"]


def export_rows(session: Session, *, actor: Principal, filters: OrderFilter | None = None) -> list[list[str]]:
    """The filtered orders as CSV rows (header first), for staff allowed to export; phones masked
    unless the role may see them. The export is written to the audit log."""
    if actor.kind != "staff" and actor.kind != "system":
        raise PermissionDenied()
    actor.require("orders.export")
    unmask = actor.can("customers.view_phone")
    f = filters or OrderFilter()
    stmt = _filtered(scoped(select(Order), Order, actor), f).order_by(Order.id.desc()).limit(MAX_EXPORT_ROWS)
    orders = list(session.scalars(stmt))
    lines = lines_of(session, [o.id for o in orders])
    rows = [list(EXPORT_COLUMNS)]
    for o in orders:
        address = (o.fulfilment or {}).get("address") or {}
        store = (o.fulfilment or {}).get("store") or {}
        phone = address.get("phone", "")
        items = "; ".join(f"{ln.title} x{ln.quantity}" for ln in lines[o.id])
        place = " ".join(address.get(k, "") for k in ("province", "city", "district", "detail")).strip() \
            if address else store.get("name", "")
        rows.append([o.order_no, clock.format_local(o.created_at, "%Y-%m-%d %H:%M:%S"), o.status, o.fulfilment_type,
                     str(o.customer_id), str(o.owner_id or ""), str(o.store_id or ""), items, str(o.subtotal_cents),
                     str(o.adjustments_cents), str(o.shipping_cents), str(o.total_cents), str(o.paid_cents),
                     str(o.refunded_cents), address.get("name", ""), phone if unmask else mask_phone(phone), place,
                     o.carrier, o.tracking_no,
                     *(clock.format_local(t, "%Y-%m-%d %H:%M:%S") if t else "" for t in (o.paid_at, o.shipped_at,
                                                                                          o.completed_at))])
    audit.record(session, actor=actor, action="orders.export", target_type="order",
                 details={"rows": len(orders), "unmasked": unmask,
                          "filters": {k: (str(v) if v is not None else None) for k, v in dataclasses.asdict(f).items()}})
    return rows


def iter_csv(rows: list[list[str]]) -> Iterator[str]:
    """CSV text with a BOM so that spreadsheet programs read the Chinese right; cells that would be
    read as formulas are prefixed with a quote."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    for row in rows:
        writer.writerow([("'" + c) if c[:1] in ("=", "+", "-", "@") and not c.lstrip("-").isdigit() else c
                         for c in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def today_figures(session: Session, *, merchant_id: int, principal: Principal | None = None) -> dict[str, int]:
    """The dashboard's order figures for today (Shanghai): orders placed, GMV paid today, delivery
    orders waiting to ship, pickup orders waiting, refund requests waiting; in the principal's scope."""
    start, end = clock.local_day_bounds(clock.today_local())

    def q(stmt: Select[Any], model: Any = Order) -> Select[Any]:
        if principal is not None:
            return scoped(stmt, model, principal)
        return stmt.where(model.merchant_id == merchant_id)

    orders_today = session.scalar(q(select(func.count()).select_from(Order)).where(
        Order.created_at >= start, Order.created_at < end)) or 0
    gmv = session.scalar(q(select(func.coalesce(func.sum(Order.total_cents), 0))).where(
        Order.paid_at >= start, Order.paid_at < end)) or 0
    paid_today = session.scalar(q(select(func.count()).select_from(Order)).where(
        Order.paid_at >= start, Order.paid_at < end)) or 0
    to_ship = session.scalar(q(select(func.count()).select_from(Order)).where(
        Order.status == OrderStatus.PAID.value, Order.fulfilment_type == "delivery")) or 0
    to_pick = session.scalar(q(select(func.count()).select_from(Order)).where(
        Order.status == OrderStatus.READY_FOR_PICKUP.value)) or 0
    refunds = session.scalar(q(select(func.count()).select_from(RefundRequest), RefundRequest).where(
        RefundRequest.status == RefundStatus.PENDING.value)) or 0
    return {"orders_today": int(orders_today), "paid_orders_today": int(paid_today), "gmv_today_cents": int(gmv),
            "pending_shipments": int(to_ship), "pending_pickups": int(to_pick), "refunds_waiting": int(refunds)}

