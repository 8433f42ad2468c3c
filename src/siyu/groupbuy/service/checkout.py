"""Group buying in checkout: the pricing contributor for `leader` fulfilment.

`contribute` (also run by previews, writes nothing): the point must be active and served by an open
wave holding every SKU of the basket; the lines get the wave's group prices; allocation and
per-customer limits are checked as they stand. `commit` (in the order's transaction) makes it real
and is where cut-off races are decided: one conditional UPDATE of the wave row (still open, before
its cut-off) takes the row's lock, so the cut-off job's UPDATE of the same row waits for this order's
transaction or this order waits for the cut-off and is refused. Then the items' sold counts rise by
conditional UPDATEs that cannot pass the allocation, the per-customer limits are checked again
under the wave's lock, and the wave order with its pickup code is written. Any refusal raises and
the whole order rolls back: an order either makes the wave or leaves no trace.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.core import clock, ids
from siyu.core.auth import system_principal
from siyu.core.errors import Conflict, NotFound, field_error
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.groupbuy.models import Leader, Wave, WaveItem, WaveOrder, WaveOrderLine
from siyu.groupbuy.service.common import get_row
from siyu.groupbuy.service.waves import COUNTED, serves
from siyu.groupbuy.states import OPEN_ORDER_STATUSES, LeaderStatus, WaveOrderStatus, WaveStatus
from siyu.orders import pricing
from siyu.orders import service as orders

EXTRA_KEY = "groupbuy"




class WaveClosed(Conflict):
    code = "wave_closed"
    message = "This group-buy wave has closed; the order was not placed."


class WaveSoldOut(Conflict):
    code = "wave_sold_out"
    message = "Not enough left in this group-buy wave."


class WaveLimitExceeded(Conflict):
    code = "wave_limit_exceeded"
    message = "At most {limit} of this item per customer in this wave."


def _leader(session: Session, merchant_id: int, leader_id: int | None) -> Leader:
    try:
        leader = get_row(session, Leader, leader_id or 0, merchant_id=merchant_id)
    except NotFound as exc:
        raise field_error("fulfilment.leader_id", "Choose a pickup point from the list.") from exc
    if leader.status != LeaderStatus.ACTIVE:
        raise Conflict("This pickup point does not take orders now.", code="point_unavailable",
                       details={"leader_id": leader.id})
    return leader


def _find_wave(session: Session, merchant_id: int, sku_ids: list[int], now: Any) -> tuple[Wave, dict[int, WaveItem]]:
    """The open wave (earliest cut-off first) that holds every SKU of the basket."""
    rows = session.execute(select(Wave, WaveItem).join(WaveItem, WaveItem.wave_id == Wave.id).where(
        Wave.merchant_id == merchant_id, Wave.status == WaveStatus.OPEN.value, Wave.starts_at <= now,
        Wave.cutoff_at > now, WaveItem.sku_id.in_(sku_ids)).order_by(Wave.cutoff_at, Wave.id)).all()
    by_wave: dict[int, tuple[Wave, dict[int, WaveItem]]] = {}
    for wave, item in rows:
        by_wave.setdefault(wave.id, (wave, {}))[1][item.sku_id] = item
    for wave, items in by_wave.values():
        if set(items) == set(sku_ids):
            return wave, items
    raise Conflict("These items are not in an open group-buy wave together.", code="not_in_wave",
                   details={"sku_ids": sku_ids})


def bought_by_customer(session: Session, *, wave_id: int, customer_id: int) -> dict[int, int]:
    """wave item id -> units the customer has in the wave's live orders."""
    return {item_id: int(q or 0) for item_id, q in session.execute(
        select(WaveOrderLine.wave_item_id, func.sum(WaveOrderLine.quantity))
        .join(WaveOrder, WaveOrder.id == WaveOrderLine.wave_order_id)
        .where(WaveOrder.wave_id == wave_id, WaveOrder.customer_id == customer_id, WaveOrder.status.in_(COUNTED))
        .group_by(WaveOrderLine.wave_item_id))}


def _check_limits(items: dict[int, WaveItem], lines: list[pricing.PricingLine], bought: dict[int, int]) -> None:
    for line in lines:
        item = items[line.sku_id]
        if item.per_customer_limit is not None and bought.get(item.id, 0) + line.quantity > item.per_customer_limit:
            raise WaveLimitExceeded(details={"sku_id": line.sku_id, "limit": item.per_customer_limit,
                                             "already": bought.get(item.id, 0)}, limit=item.per_customer_limit)


def _pickup_code(session: Session, leader_id: int) -> str:
    """6 digits, unique among the point's open orders."""
    for digits in (6, 6, 6, 6, 7, 7, 8, 8):
        code = f"{ids.randbelow(10 ** digits):0{digits}d}"
        taken = session.scalar(select(WaveOrder.id).where(WaveOrder.leader_id == leader_id,
                                                          WaveOrder.status.in_(OPEN_ORDER_STATUSES),
                                                          WaveOrder.pickup_code == code))
        if taken is None:
            return code
    raise Conflict("Could not issue a pickup code; try again.", code="pickup_code_unavailable")


class WaveContributor:
    """Group prices, allocation and limits of the wave for orders collected at a leader's point."""

    name = "groupbuy.wave"
    priority = 5

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.fulfilment.type != "leader":
            return
        now = ctx.now or clock.now()
        leader = _leader(session, ctx.merchant_id, ctx.fulfilment.leader_id)
        sku_ids = [line.sku_id for line in ctx.lines]
        wave, items = _find_wave(session, ctx.merchant_id, sku_ids, now)
        if not serves(wave, leader):
            raise Conflict("This wave does not deliver to this pickup point.", code="point_not_served",
                           details={"wave_id": wave.id, "leader_id": leader.id})
        for line in ctx.lines:
            item = items[line.sku_id]
            if item.allocation - item.sold < line.quantity:
                raise WaveSoldOut(details={"sku_id": line.sku_id, "left": max(0, item.allocation - item.sold),
                                           "requested": line.quantity})
        if ctx.customer_id is not None:
            _check_limits(items, ctx.lines, bought_by_customer(session, wave_id=wave.id, customer_id=ctx.customer_id))
        for line in ctx.lines:
            item = items[line.sku_id]
            diff = (item.price_cents - line.unit_price_cents) * line.quantity
            if diff:
                ctx.add_adjustment(kind="wave_price", label=_("Group price"), amount_cents=diff, source=self.name,
                                   sku_ids=[line.sku_id], details={"wave_id": wave.id, "wave_item_id": item.id})
        ctx.extra[EXTRA_KEY] = {"wave_id": wave.id, "leader_id": leader.id,
                                "items": {line.sku_id: items[line.sku_id].id for line in ctx.lines}}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        found = ctx.extra.get(EXTRA_KEY)
        if not found:
            return
        now = clock.now()
        wave_id, leader_id = found["wave_id"], found["leader_id"]
        session.flush()
        conn = session.connection()
        waves, items_t = Wave.__table__, WaveItem.__table__
        made_it = conn.execute(
            update(waves).where(waves.c.id == wave_id, waves.c.status == WaveStatus.OPEN.value,
                                waves.c.starts_at <= now, waves.c.cutoff_at > now)
            .values(orders_count=waves.c.orders_count + 1).returning(waves.c.id)).first()
        if made_it is None:
            raise WaveClosed(details={"wave_id": wave_id})
        quantities = {line.sku_id: line.quantity for line in ctx.lines}
        for sku_id, item_id in sorted(found["items"].items(), key=lambda kv: kv[1]):
            quantity = quantities[sku_id]
            taken = conn.execute(
                update(items_t).where(items_t.c.id == item_id, items_t.c.sold + quantity <= items_t.c.allocation)
                .values(sold=items_t.c.sold + quantity).returning(items_t.c.sold)).first()
            if taken is None:
                raise WaveSoldOut(details={"sku_id": sku_id, "requested": quantity})
        items = {i.sku_id: i for i in session.scalars(
            select(WaveItem).where(WaveItem.id.in_(list(found["items"].values())))
            .execution_options(populate_existing=True))}
        if ctx.customer_id is not None:
            _check_limits(items, ctx.lines, bought_by_customer(session, wave_id=wave_id, customer_id=ctx.customer_id))
        leader_status = session.scalar(select(Leader.status).where(Leader.id == leader_id))
        if leader_status != LeaderStatus.ACTIVE:
            raise Conflict("This pickup point does not take orders now.", code="point_unavailable")
        customer = customers.get_customer(session, ctx.customer_id or 0, actor=system_principal(ctx.merchant_id))
        wave_order = WaveOrder(merchant_id=ctx.merchant_id, wave_id=wave_id, leader_id=leader_id, order_id=order_id,
                               order_no=order_no, customer_id=customer.id, customer_name=(customer.nickname or "")[:64],
                               status=WaveOrderStatus.PENDING_PAYMENT.value,
                               pickup_code=_pickup_code(session, leader_id), total_cents=ctx.total_cents,
                               created_at=now)
        session.add(wave_order)
        session.flush()
        order_lines = {line.sku_id: line for line in orders.order_lines(session, order_id)}
        session.add_all([WaveOrderLine(merchant_id=ctx.merchant_id, wave_order_id=wave_order.id, order_id=order_id,
                                       order_line_id=order_lines[line.sku_id].id, wave_item_id=items[line.sku_id].id,
                                       sku_id=line.sku_id, title=order_lines[line.sku_id].title,
                                       quantity=line.quantity, paid_cents=line.amount_cents)
                         for line in ctx.lines])
        session.flush()


pricing.register_contributor(WaveContributor())
