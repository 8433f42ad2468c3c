"""The cut-off: the wave closes, unpaid orders leave it, and the snapshot of what made it is taken;
the purchase list (per SKU), the sorting list (per point, SKU and customer) and the delivery
manifest (per route and point) are groupings of that snapshot, exported as CSV and printable pages.

Closing is one conditional UPDATE of the wave row (open → closed), the same row every order's
commit step updates: whichever comes second waits for the first one's transaction, so an order
is either in the snapshot or refused. The tick is idempotent: a wave closes once."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict
from siyu.groupbuy.models import Leader, ManifestLine, Wave, WaveOrder
from siyu.groupbuy.service import sync
from siyu.groupbuy.service.common import get_row, require_manager
from siyu.groupbuy.states import WaveOrderStatus, WaveStatus
from siyu.orders import service as orders
from siyu.orders.states import OrderStatus

WO = WaveOrderStatus


def due_waves(session: Session, now: dt.datetime, *, limit: int = 50) -> list[int]:
    return list(session.scalars(select(Wave.id).where(Wave.status == WaveStatus.OPEN.value, Wave.cutoff_at <= now)
                                .order_by(Wave.cutoff_at, Wave.id).limit(limit)))


def close_wave(session: Session, wave_id: int, *, now: dt.datetime | None = None, early: bool = False) -> bool:
    """Close one wave at (or after) its cut-off and take its snapshot; `early` closes it now (staff
    cut off before the planned time). False when it was not open or its cut-off has not come."""
    now = now or clock.now()
    session.flush()
    waves = Wave.__table__
    stmt = update(waves).where(waves.c.id == wave_id, waves.c.status == WaveStatus.OPEN.value)
    values: dict[str, Any] = {"status": WaveStatus.CLOSED.value, "closed_at": now}
    if early:
        values["cutoff_at"] = case((waves.c.cutoff_at > now, now), else_=waves.c.cutoff_at)
    else:
        stmt = stmt.where(waves.c.cutoff_at <= now)
    closed = session.connection().execute(stmt.values(**values).returning(waves.c.merchant_id)).first()
    if closed is None:
        return False
    merchant_id = int(closed[0])
    wave = session.get(Wave, wave_id)
    if wave is not None:
        session.refresh(wave)
    system = system_principal(merchant_id)
    pending = list(session.scalars(select(WaveOrder.order_id).where(
        WaveOrder.wave_id == wave_id, WaveOrder.status == WO.PENDING_PAYMENT.value).order_by(WaveOrder.order_id)))
    for order_id in pending:
        order = orders.get_order(session, order_id, actor=system, lock=True)
        if order.status == OrderStatus.PENDING_PAYMENT:
            # Not paid by the cut-off: it does not make the wave (a payment arriving later is
            # refunded by orders, as for any cancelled order).
            orders.cancel_order(session, order_id, actor=system, reason="wave_cut_off")
            sync.mark_cancelled(session, merchant_id=merchant_id, order_id=order_id)
        elif order.status == OrderStatus.PAID:
            sync.mark_paid(session, merchant_id=merchant_id, order_id=order_id, paid_at=order.paid_at)
    _snapshot(session, merchant_id, wave_id)
    return True


def _snapshot(session: Session, merchant_id: int, wave_id: int) -> int:
    paid = list(session.scalars(select(WaveOrder).where(WaveOrder.wave_id == wave_id,
                                                        WaveOrder.status == WO.PAID.value).order_by(WaveOrder.id)))
    leaders = {row.id: row for row in session.scalars(select(Leader).where(
        Leader.id.in_({o.leader_id for o in paid})))}
    lines = sync.lines_of(session, [o.id for o in paid])
    rows: list[dict[str, Any]] = []
    for order in paid:
        leader = leaders[order.leader_id]
        for line in lines[order.id]:
            quantity = line.quantity - line.refunded_quantity
            if quantity <= 0:
                continue
            rows.append({"merchant_id": merchant_id, "wave_id": wave_id, "route": leader.route,
                         "leader_id": leader.id, "leader_name": leader.name, "point_name": leader.point_name,
                         "point_address": leader.address, "customer_id": order.customer_id,
                         "customer_name": order.customer_name, "order_id": order.order_id, "order_no": order.order_no,
                         "pickup_code": order.pickup_code, "order_line_id": line.order_line_id, "sku_id": line.sku_id,
                         "title": line.title, "quantity": quantity,
                         "paid_cents": line.paid_cents - line.refunded_cents})
    if rows:
        session.execute(insert(ManifestLine), rows)
    return len(rows)


def close_now(session: Session, wave_id: int, *, actor: Principal) -> Wave:
    """Staff cut a wave off before its planned time (409 unless it is open)."""
    require_manager(actor)
    wave = get_row(session, Wave, wave_id, merchant_id=actor.merchant_id)
    if not close_wave(session, wave.id, early=True):
        raise Conflict("Only an open wave can be cut off.", code="wave_not_open", details={"status": wave.status})
    session.refresh(wave)
    return wave


def close_due(session: Session, now: dt.datetime) -> list[int]:
    """Close every wave whose cut-off has come (the jobs tick). Returns the ids closed."""
    return [wave_id for wave_id in due_waves(session, now) if close_wave(session, wave_id, now=now)]


# ---------------------------------------------------------------- outputs


def manifest_lines(session: Session, wave_id: int, *, leader_id: int | None = None) -> list[ManifestLine]:
    stmt = select(ManifestLine).where(ManifestLine.wave_id == wave_id)
    if leader_id is not None:
        stmt = stmt.where(ManifestLine.leader_id == leader_id)
    return list(session.scalars(stmt.order_by(ManifestLine.route, ManifestLine.leader_id, ManifestLine.sku_id,
                                              ManifestLine.customer_id, ManifestLine.order_line_id)))


def purchase_list(session: Session, wave_id: int) -> list[dict[str, Any]]:
    """What to buy: units per SKU."""
    rows = session.execute(
        select(ManifestLine.sku_id, ManifestLine.title, func.sum(ManifestLine.quantity), func.count(func.distinct(ManifestLine.order_id)),
               func.sum(ManifestLine.paid_cents))
        .where(ManifestLine.wave_id == wave_id).group_by(ManifestLine.sku_id, ManifestLine.title)
        .order_by(ManifestLine.sku_id))
    return [{"sku_id": s, "title": t, "quantity": int(q), "orders": int(n), "paid_cents": int(c or 0)}
            for s, t, q, n, c in rows]


def sorting_list(session: Session, wave_id: int, *, leader_id: int | None = None) -> list[dict[str, Any]]:
    """How to sort: per point, per SKU, per customer (with the pickup code of each order)."""
    out: dict[tuple[int, int, int, str], dict[str, Any]] = {}
    for m in manifest_lines(session, wave_id, leader_id=leader_id):
        key = (m.leader_id, m.sku_id, m.customer_id, m.pickup_code)
        row = out.get(key)
        if row is None:
            row = out[key] = {"route": m.route, "leader_id": m.leader_id, "point_name": m.point_name,
                              "leader_name": m.leader_name, "sku_id": m.sku_id, "title": m.title,
                              "customer_id": m.customer_id, "customer_name": m.customer_name,
                              "order_no": m.order_no, "pickup_code": m.pickup_code, "quantity": 0}
        row["quantity"] += m.quantity
    return sorted(out.values(), key=lambda r: (r["route"], r["leader_id"], r["sku_id"], r["customer_id"], r["order_no"]))


def delivery_manifest(session: Session, wave_id: int) -> list[dict[str, Any]]:
    """What each route drops at each point: per route, per point, units per SKU."""
    points: dict[int, dict[str, Any]] = {}
    for m in manifest_lines(session, wave_id):
        point = points.get(m.leader_id)
        if point is None:
            point = points[m.leader_id] = {"route": m.route, "leader_id": m.leader_id, "leader_name": m.leader_name,
                                           "point_name": m.point_name, "point_address": m.point_address,
                                           "orders": set(), "units": 0, "skus": {}}
        point["orders"].add(m.order_id)
        point["units"] += m.quantity
        sku = point["skus"].setdefault(m.sku_id, {"sku_id": m.sku_id, "title": m.title, "quantity": 0})
        sku["quantity"] += m.quantity
    result = []
    for point in sorted(points.values(), key=lambda p: (p["route"], p["leader_id"])):
        result.append({**point, "orders": len(point["orders"]),
                       "skus": sorted(point["skus"].values(), key=lambda s: s["sku_id"])})
    return result


def _csv(header: list[str], rows: list[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 16_384:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_export(session: Session, wave_id: int, kind: str) -> Iterator[str]:
    """One of the cut-off outputs as CSV (UTF-8 with BOM, so Excel reads the Chinese)."""
    if kind == "purchase":
        return _csv(["sku_id", "title", "quantity", "orders", "paid_cents"],
                    [[r["sku_id"], r["title"], r["quantity"], r["orders"], r["paid_cents"]]
                     for r in purchase_list(session, wave_id)])
    if kind == "sorting":
        return _csv(["route", "leader_id", "point", "sku_id", "title", "customer_id", "customer", "order_no",
                     "pickup_code", "quantity"],
                    [[r["route"], r["leader_id"], r["point_name"], r["sku_id"], r["title"], r["customer_id"],
                      r["customer_name"], r["order_no"], r["pickup_code"], r["quantity"]]
                     for r in sorting_list(session, wave_id)])
    if kind == "manifest":
        rows = []
        for p in delivery_manifest(session, wave_id):
            for s in p["skus"]:
                rows.append([p["route"], p["leader_id"], p["point_name"], p["point_address"], p["leader_name"],
                             p["orders"], s["sku_id"], s["title"], s["quantity"]])
        return _csv(["route", "leader_id", "point", "address", "leader", "orders", "sku_id", "title", "quantity"], rows)
    raise ValueError(kind)
