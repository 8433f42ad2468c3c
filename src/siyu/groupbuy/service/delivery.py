"""Delivery to the points and hand-out: staff mark a point's goods of a closed wave delivered (all,
or with shortages, which are recorded on the lines and refunded through the orders refund service);
customers are notified; the leader verifies each pickup code (核销) and the order completes, which
starts its after-sales window and so the countdown to its commission's settlement. Orders not
picked up after `pickup_overdue_days` are flagged for follow-up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed, field_error
from siyu.core.i18n import gettext as _
from siyu.groupbuy.models import Leader, Wave, WaveOrder, WaveOrderLine
from siyu.groupbuy.service import commissions, notifications, sync
from siyu.groupbuy.service.common import get_row, groupbuy_settings, require_manager
from siyu.groupbuy.service.leaders import my_leader
from siyu.groupbuy.states import WAVE_ORDER_MACHINE, WaveOrderStatus, WaveStatus
from siyu.orders import service as orders

WO = WaveOrderStatus


@dataclasses.dataclass
class DeliveryResult:
    delivered_orders: int
    refunded_orders: int
    short_units: int
    refund_ids: list[int]


def mark_delivered(session: Session, *, actor: Principal, wave_id: int, leader_id: int,
                   shortages: list[tuple[int, int]] | None = None) -> DeliveryResult:
    """The goods of a closed wave arrived at a point. `shortages` are (order_line_id, units missing):
    those units are recorded and refunded to their customers at once (staff refund through orders);
    everything else is ready for pickup and its customers are told."""
    require_manager(actor)
    wave = get_row(session, Wave, wave_id, merchant_id=actor.merchant_id)
    leader = get_row(session, Leader, leader_id, merchant_id=actor.merchant_id)
    if wave.status != WaveStatus.CLOSED:
        raise Conflict("Goods are delivered after the wave's cut-off.", code="wave_not_closed")
    waiting = list(session.scalars(select(WaveOrder).where(
        WaveOrder.wave_id == wave.id, WaveOrder.leader_id == leader.id, WaveOrder.status == WO.PAID.value)
        .order_by(WaveOrder.id).with_for_update().execution_options(populate_existing=True)))
    if not waiting:
        raise Conflict("Nothing of this wave is waiting for delivery at this point.", code="nothing_to_deliver")
    lines = sync.lines_of(session, [o.id for o in waiting])
    by_line = {ln.order_line_id: (ln, o) for o in waiting for ln in lines[o.id]}
    short: dict[int, int] = {}
    for order_line_id, units in shortages or []:
        if order_line_id not in by_line:
            raise ValidationFailed(details={"fields": {"shortages": _("Line {id} is not waiting at this point.",
                                                                      id=order_line_id)}})
        short[order_line_id] = short.get(order_line_id, 0) + units
    for order_line_id, units in short.items():
        line = by_line[order_line_id][0]
        if not 0 < units <= line.quantity - line.refunded_quantity - line.short_quantity:
            raise ValidationFailed(details={"fields": {"shortages": _(
                "Line {id}: at most {n} units can be short.", id=order_line_id,
                n=line.quantity - line.refunded_quantity - line.short_quantity)}})
    now = clock.now()
    refund_ids: list[int] = []
    refunded_orders = delivered = 0
    for order in waiting:
        order_short = [(ln.order_line_id, short[ln.order_line_id]) for ln in lines[order.id] if ln.order_line_id in short]
        for line in lines[order.id]:
            line.short_quantity += short.get(line.order_line_id, 0)
        if order_short:
            refund = orders.request_refund(session, order.order_id, actor=actor, reason=_("Out of stock at delivery"),
                                           lines=order_short, source="staff")
            orders.approve_refund(session, refund.id, actor=actor)
            refund_ids.append(refund.id)
        left = sum(ln.quantity - ln.refunded_quantity - ln.short_quantity for ln in lines[order.id])
        if left <= 0:
            WAVE_ORDER_MACHINE.check(order.status, WO.REFUNDED)
            order.status = WO.REFUNDED.value
            refunded_orders += 1
            notifications.notify(session, merchant_id=order.merchant_id, kind="shortage_refund",
                                 customer_ids_orders=[(order.customer_id, order.order_id)],
                                 text=_("Sorry, your order {no} could not be delivered; it has been refunded in full.",
                                        no=order.order_no))
            continue
        WAVE_ORDER_MACHINE.check(order.status, WO.DELIVERED)
        order.status = WO.DELIVERED.value
        order.delivered_at = now
        delivered += 1
        text = _("Your order {no} has arrived at {point} ({address}). Pickup code: {code}.", no=order.order_no,
                 point=leader.point_name, address=leader.address, code=order.pickup_code)
        if order_short:
            text += " " + _("Some items were out of stock and have been refunded.")
        notifications.notify(session, merchant_id=order.merchant_id, kind="delivered",
                             customer_ids_orders=[(order.customer_id, order.order_id)], text=text)
    session.flush()
    return DeliveryResult(delivered_orders=delivered, refunded_orders=refunded_orders,
                          short_units=sum(short.values()), refund_ids=refund_ids)


def find_for_pickup(session: Session, *, actor: Principal, code: str) -> WaveOrder:
    """The leader looks up a code: the order at their point waiting for pickup with it."""
    leader = my_leader(session, actor=actor)
    code = (code or "").strip()
    if not code.isdigit() or not 6 <= len(code) <= 8:
        raise field_error("code", "Enter the 6–8 digit pickup code.")
    order = session.scalars(select(WaveOrder).where(
        WaveOrder.leader_id == leader.id, WaveOrder.pickup_code == code,
        WaveOrder.status.in_((WO.PAID.value, WO.DELIVERED.value)))).first()
    if order is None:
        raise NotFound("No order is waiting for pickup with this code at your point.", code="pickup_code_not_found")
    if order.status == WO.PAID:
        raise Conflict("This order has not been delivered to your point yet.", code="not_delivered")
    return order


def verify_pickup(session: Session, *, actor: Principal, code: str, wave_order_id: int | None = None) -> WaveOrder:
    """The leader hands an order out against its code (核销): the order completes; its commissions
    settle when its after-sales window closes."""
    found = find_for_pickup(session, actor=actor, code=code)
    if wave_order_id is not None and found.id != wave_order_id:
        raise NotFound("No order is waiting for pickup with this code at your point.", code="pickup_code_not_found")
    order = session.scalars(select(WaveOrder).where(WaveOrder.id == found.id).with_for_update()
                            .execution_options(populate_existing=True)).one()
    if order.status != WO.DELIVERED or not hmac.compare_digest(order.pickup_code.encode(), code.strip().encode()):
        raise Conflict("This order has already been picked up.", code="already_picked_up")
    leader = session.get(Leader, order.leader_id)
    assert leader is not None
    completed = orders.complete_order(session, order.order_id, actor=system_principal(order.merchant_id),
                                      note=f"Picked up at {leader.point_name} (verified by the leader).")
    order.status = WO.PICKED_UP.value
    order.picked_up_at = clock.now()
    closes = orders.after_sales_closes_at(completed, session=session)
    commissions.schedule_settlement(session, merchant_id=order.merchant_id, order_id=order.order_id,
                                    settle_after=closes or clock.now())
    session.flush()
    return order


def flag_overdue(session: Session, now: dt.datetime, *, limit: int = 500) -> int:
    """Flag delivered orders not picked up after the merchant's `pickup_overdue_days` and remind
    their customers once. Idempotent (flagged orders are skipped)."""
    merchant_ids = list(session.scalars(select(WaveOrder.merchant_id).where(
        WaveOrder.status == WO.DELIVERED.value, WaveOrder.overdue_at.is_(None)).group_by(WaveOrder.merchant_id)))
    done = 0
    for merchant_id in merchant_ids:
        days = groupbuy_settings(session, merchant_id).pickup_overdue_days
        due = list(session.scalars(select(WaveOrder).where(
            WaveOrder.merchant_id == merchant_id, WaveOrder.status == WO.DELIVERED.value,
            WaveOrder.overdue_at.is_(None), WaveOrder.delivered_at <= now - dt.timedelta(days=days))
            .order_by(WaveOrder.id).limit(limit).with_for_update()))
        for order in due:
            order.overdue_at = now
            notifications.notify(session, merchant_id=merchant_id, kind="pickup_reminder",
                                 customer_ids_orders=[(order.customer_id, order.order_id)],
                                 text=_("Reminder: your order {no} is waiting at the pickup point. Code: {code}.",
                                        no=order.order_no, code=order.pickup_code))
            done += 1
    session.flush()
    return done


def overdue_orders(session: Session, *, merchant_id: int, limit: int = 200) -> list[WaveOrder]:
    return list(session.scalars(select(WaveOrder).where(
        WaveOrder.merchant_id == merchant_id, WaveOrder.status == WO.DELIVERED.value,
        WaveOrder.overdue_at.is_not(None)).order_by(WaveOrder.delivered_at, WaveOrder.id).limit(limit)))


# ---------------------------------------------------------------- the leader centre


def point_orders(session: Session, *, merchant_id: int, leader_id: int, statuses: tuple[str, ...],
                 limit: int = 200) -> list[WaveOrder]:
    return list(session.scalars(select(WaveOrder).where(
        WaveOrder.merchant_id == merchant_id, WaveOrder.leader_id == leader_id, WaveOrder.status.in_(statuses))
        .order_by(WaveOrder.id.desc()).limit(limit)))


def point_customers(session: Session, *, merchant_id: int, leader_id: int, limit: int = 200) -> list[dict]:
    """The customers who buy at the point: orders and amount (paid, not refunded away)."""
    rows = session.execute(
        select(WaveOrder.customer_id, func.max(WaveOrder.customer_name), func.count(),
               func.sum(WaveOrder.total_cents), func.max(WaveOrder.created_at))
        .where(WaveOrder.merchant_id == merchant_id, WaveOrder.leader_id == leader_id,
               WaveOrder.status.in_((WO.PAID.value, WO.DELIVERED.value, WO.PICKED_UP.value)))
        .group_by(WaveOrder.customer_id).order_by(func.count().desc(), WaveOrder.customer_id).limit(limit))
    return [{"customer_id": c, "name": n, "orders": int(k), "total_cents": int(t or 0), "last_order_at": last}
            for c, n, k, t, last in rows]


def order_lines(session: Session, wave_order_ids: list[int]) -> dict[int, list[WaveOrderLine]]:
    return sync.lines_of(session, wave_order_ids)


def customer_orders(session: Session, *, merchant_id: int, customer_id: int, limit: int = 50) -> list[WaveOrder]:
    return list(session.scalars(select(WaveOrder).where(
        WaveOrder.merchant_id == merchant_id, WaveOrder.customer_id == customer_id,
        WaveOrder.status != WO.CANCELLED.value).order_by(WaveOrder.id.desc()).limit(limit)))
