"""The wave order follows its order: paid (commissions accrue), cancelled (the allocation goes
back while the wave is open), refunded (lines and commissions shrink). Called by the handlers of
the orders events, and by the cut-off for orders paid just before it; each step is idempotent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.groupbuy.models import Leader, Wave, WaveItem, WaveOrder, WaveOrderLine
from siyu.groupbuy.service import commissions
from siyu.groupbuy.service.common import groupbuy_settings
from siyu.groupbuy.states import WAVE_ORDER_MACHINE, WaveOrderStatus, WaveStatus

WO = WaveOrderStatus


def lock_wave_order(session: Session, *, merchant_id: int, order_id: int) -> WaveOrder | None:
    return session.scalars(select(WaveOrder).where(WaveOrder.merchant_id == merchant_id, WaveOrder.order_id == order_id)
                           .with_for_update().execution_options(populate_existing=True)).first()


def lines_of(session: Session, wave_order_ids: list[int]) -> dict[int, list[WaveOrderLine]]:
    out: dict[int, list[WaveOrderLine]] = {i: [] for i in wave_order_ids}
    if wave_order_ids:
        for line in session.scalars(select(WaveOrderLine).where(WaveOrderLine.wave_order_id.in_(wave_order_ids))
                                    .order_by(WaveOrderLine.id)):
            out[line.wave_order_id].append(line)
    return out


def mark_paid(session: Session, *, merchant_id: int, order_id: int, paid_at: dt.datetime | None = None) -> bool:
    """The order was paid: the wave order is paid and the leader's commissions accrue."""
    wave_order = lock_wave_order(session, merchant_id=merchant_id, order_id=order_id)
    if wave_order is None or wave_order.status != WO.PENDING_PAYMENT:
        return False
    WAVE_ORDER_MACHINE.check(wave_order.status, WO.PAID)
    wave_order.status = WO.PAID.value
    wave_order.paid_at = paid_at or clock.now()
    wave = session.get(Wave, wave_order.wave_id)
    leader = session.get(Leader, wave_order.leader_id)
    assert wave is not None and leader is not None
    lines = lines_of(session, [wave_order.id])[wave_order.id]
    items = {i.id: i for i in session.scalars(select(WaveItem).where(WaveItem.id.in_([ln.wave_item_id for ln in lines])))}
    default_bps = groupbuy_settings(session, merchant_id).default_commission_bps
    commissions.accrue(session, merchant_id=merchant_id, leader_id=leader.id, wave_id=wave.id, order_id=order_id,
                       lines=[(ln.order_line_id, ln.paid_cents,
                               commissions.rate_for(item=items[ln.wave_item_id], wave=wave, leader=leader,
                                                    default_bps=default_bps)) for ln in lines])
    session.flush()
    return True


def _release(session: Session, wave_order: WaveOrder, quantities: dict[int, int]) -> None:
    """Give units back to the wave's allocation while it still takes orders."""
    status = session.scalar(select(Wave.status).where(Wave.id == wave_order.wave_id))
    if status != WaveStatus.OPEN:
        return
    items = WaveItem.__table__
    for item_id, quantity in sorted(quantities.items()):
        if quantity > 0:
            session.execute(update(items).where(items.c.id == item_id, items.c.sold >= quantity)
                            .values(sold=items.c.sold - quantity))


def mark_cancelled(session: Session, *, merchant_id: int, order_id: int) -> bool:
    """The unpaid order was cancelled (by the customer, expiry or the cut-off)."""
    wave_order = lock_wave_order(session, merchant_id=merchant_id, order_id=order_id)
    if wave_order is None or wave_order.status != WO.PENDING_PAYMENT:
        return False
    wave_order.status = WO.CANCELLED.value
    wave_order.cancelled_at = clock.now()
    lines = lines_of(session, [wave_order.id])[wave_order.id]
    _release(session, wave_order, {ln.wave_item_id: ln.quantity for ln in lines})
    session.flush()
    return True


def record_refund(session: Session, *, merchant_id: int, order_id: int, refund_id: int,
                  lines: list[tuple[int, int, int]], fully_refunded: bool) -> bool:
    """A refund of the order finished: `lines` are (order_line_id, quantity, amount_cents). The
    lines and the commissions shrink; a wholly refunded order leaves the point's work."""
    wave_order = lock_wave_order(session, merchant_id=merchant_id, order_id=order_id)
    if wave_order is None:
        return False
    by_line = {ln.order_line_id: ln for ln in lines_of(session, [wave_order.id])[wave_order.id]}
    released: dict[int, int] = {}
    for order_line_id, quantity, amount_cents in lines:
        line = by_line.get(order_line_id)
        if line is None:
            continue
        line.refunded_quantity += quantity
        line.refunded_cents += amount_cents
        released[line.wave_item_id] = released.get(line.wave_item_id, 0) + quantity
        commissions.reverse_for_refund(session, merchant_id=merchant_id, order_line_id=order_line_id,
                                       refunded_cents_total=line.refunded_cents, refund_id=refund_id)
    if wave_order.status == WO.PAID:
        _release(session, wave_order, released)
    if fully_refunded and WAVE_ORDER_MACHINE.allowed(wave_order.status, WO.REFUNDED):
        wave_order.status = WO.REFUNDED.value
    session.flush()
    return True
