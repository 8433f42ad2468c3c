"""Waves: SKUs at group prices with stock allocated to the wave, open from the start to the
cut-off, delivered to the points (all, or those listed and those of the regions listed) on the
delivery date, with per-customer limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.groupbuy.models import Leader, Wave, WaveItem, WaveOrder, WaveOrderLine
from siyu.groupbuy.service.common import get_row, require_manager, valid_id
from siyu.groupbuy.states import WAVE_MACHINE, WaveOrderStatus, WaveStatus

W = WaveStatus
MAX_ITEMS = 100
# Orders counted in live totals: those that made the wave and were not cancelled.
COUNTED = (WaveOrderStatus.PENDING_PAYMENT.value, WaveOrderStatus.PAID.value, WaveOrderStatus.DELIVERED.value,
           WaveOrderStatus.PICKED_UP.value)


@dataclasses.dataclass
class WaveItemIn:
    sku_id: int
    price_cents: int
    allocation: int
    per_customer_limit: int | None = None
    commission_bps: int | None = None


@dataclasses.dataclass
class WaveIn:
    title: str
    starts_at: dt.datetime
    cutoff_at: dt.datetime
    delivery_date: dt.date
    items: list[WaveItemIn]
    description: str = ""
    leader_ids: list[int] = dataclasses.field(default_factory=list)
    regions: list[str] = dataclasses.field(default_factory=list)
    commission_bps: int | None = None


def _validate(session: Session, merchant_id: int, data: WaveIn) -> dict[int, Any]:
    errors: dict[str, str] = {}
    title = (data.title or "").strip()
    if not 0 < len(title) <= 80:
        errors["title"] = _("Name the wave (at most 80 characters).")
    if data.cutoff_at <= data.starts_at:
        errors["cutoff_at"] = _("The cut-off must be after the start.")
    if data.delivery_date < clock.local(data.cutoff_at).date():  # type: ignore[union-attr]
        errors["delivery_date"] = _("Delivery cannot be before the cut-off.")
    if data.commission_bps is not None and not 0 <= data.commission_bps <= 5000:
        errors["commission_bps"] = _("A commission rate is 0 to 5000 bps (50%).")
    if not data.items:
        errors["items"] = _("Add at least one product.")
    elif len(data.items) > MAX_ITEMS:
        errors["items"] = _("At most {n} products per wave.", n=MAX_ITEMS)
    sku_ids = [i.sku_id for i in data.items]
    if len(set(sku_ids)) != len(sku_ids):
        errors["items"] = _("Each SKU can be in the wave once.")
    skus = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=sku_ids)
    for n, item in enumerate(data.items):
        if item.sku_id not in skus:
            errors[f"items.{n}.sku_id"] = _("This SKU does not exist.")
        if not 0 <= item.price_cents <= 10**9:
            errors[f"items.{n}.price_cents"] = _("Enter a group price.")
        if not 0 < item.allocation <= 10**6:
            errors[f"items.{n}.allocation"] = _("Allocate 1 to 1,000,000 units.")
        if item.per_customer_limit is not None and not 0 < item.per_customer_limit <= 999:
            errors[f"items.{n}.per_customer_limit"] = _("A limit is 1 to 999 per customer.")
        if item.commission_bps is not None and not 0 <= item.commission_bps <= 5000:
            errors[f"items.{n}.commission_bps"] = _("A commission rate is 0 to 5000 bps (50%).")
    bad_leaders = [i for i in data.leader_ids if not valid_id(i)]
    known = set(session.scalars(select(Leader.id).where(Leader.merchant_id == merchant_id,
                                                        Leader.id.in_([i for i in data.leader_ids if valid_id(i)]))))
    if bad_leaders or set(data.leader_ids) - known:
        errors["leader_ids"] = _("Choose points from the list.")
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return skus


def _write_items(session: Session, wave: Wave, data: WaveIn, skus: dict[int, Any]) -> None:
    for position, item in enumerate(data.items):
        info = skus[item.sku_id]
        session.add(WaveItem(merchant_id=wave.merchant_id, wave_id=wave.id, sku_id=item.sku_id,
                             product_id=info.product_id,
                             title=(info.title + (f" {info.spec_text}" if info.spec_text else ""))[:200],
                             spec=dict(info.spec), image_url=(info.image or "")[:500],
                             list_price_cents=info.price_cents, price_cents=item.price_cents,
                             allocation=item.allocation, sold=0, per_customer_limit=item.per_customer_limit,
                             commission_bps=item.commission_bps, position=position))


def create_wave(session: Session, *, actor: Principal, data: WaveIn) -> Wave:
    """A draft wave with its items (open it to take orders)."""
    require_manager(actor)
    skus = _validate(session, actor.merchant_id, data)
    wave = Wave(merchant_id=actor.merchant_id, title=data.title.strip(), description=(data.description or "")[:500],
                status=W.DRAFT.value, starts_at=data.starts_at, cutoff_at=data.cutoff_at,
                delivery_date=data.delivery_date, leader_ids=sorted(set(data.leader_ids)),
                regions=sorted({r.strip()[:40] for r in data.regions if r.strip()}),
                commission_bps=data.commission_bps, orders_count=0, created_by=actor.staff_id, created_at=clock.now())
    session.add(wave)
    session.flush()
    _write_items(session, wave, data, skus)
    session.flush()
    return wave


def update_wave(session: Session, wave_id: int, *, actor: Principal, data: WaveIn) -> Wave:
    """Change a draft wave (its items are replaced)."""
    require_manager(actor)
    wave = get_wave(session, wave_id, merchant_id=actor.merchant_id, lock=True)
    if wave.status != W.DRAFT:
        raise Conflict("Only a draft wave can be changed.", code="wave_not_draft", details={"status": wave.status})
    skus = _validate(session, actor.merchant_id, data)
    wave.title, wave.description = data.title.strip(), (data.description or "")[:500]
    wave.starts_at, wave.cutoff_at, wave.delivery_date = data.starts_at, data.cutoff_at, data.delivery_date
    wave.leader_ids = sorted(set(data.leader_ids))
    wave.regions = sorted({r.strip()[:40] for r in data.regions if r.strip()})
    wave.commission_bps = data.commission_bps
    session.execute(delete(WaveItem).where(WaveItem.wave_id == wave.id))
    _write_items(session, wave, data, skus)
    session.flush()
    return wave


def open_wave(session: Session, wave_id: int, *, actor: Principal) -> Wave:
    """Publish a draft: it takes orders from its start until its cut-off. A SKU is in at most one open
    wave at a time (so an order's wave follows from its SKUs)."""
    require_manager(actor)
    wave = get_wave(session, wave_id, merchant_id=actor.merchant_id, lock=True)
    WAVE_MACHINE.check(wave.status, W.OPEN)
    if wave.cutoff_at <= clock.now():
        raise Conflict("The cut-off has passed; change it first.", code="cutoff_passed")
    sku_ids = [i.sku_id for i in items_of(session, wave.id)]
    clash = session.execute(select(WaveItem.sku_id, Wave.title).join(Wave, Wave.id == WaveItem.wave_id).where(
        Wave.merchant_id == wave.merchant_id, Wave.status == W.OPEN.value, Wave.id != wave.id,
        WaveItem.sku_id.in_(sku_ids))).first()
    if clash is not None:
        raise Conflict("SKU {sku} is already in the open wave {title}.", code="sku_in_open_wave",
                       details={"sku_id": clash[0]}, sku=clash[0], title=clash[1])
    wave.status = W.OPEN.value
    wave.opened_at = clock.now()
    session.flush()
    return wave


def cancel_wave(session: Session, wave_id: int, *, actor: Principal) -> Wave:
    """Call off a draft, or an open wave no order has made yet."""
    require_manager(actor)
    wave = get_wave(session, wave_id, merchant_id=actor.merchant_id, lock=True)
    WAVE_MACHINE.check(wave.status, W.CANCELLED)
    live = session.scalar(select(func.count()).select_from(WaveOrder).where(
        WaveOrder.wave_id == wave.id, WaveOrder.status != WaveOrderStatus.CANCELLED.value))
    if live:
        raise Conflict("This wave has orders; it closes at its cut-off.", code="wave_has_orders")
    wave.status = W.CANCELLED.value
    session.flush()
    return wave


def get_wave(session: Session, wave_id: int, *, merchant_id: int, lock: bool = False) -> Wave:
    return get_row(session, Wave, wave_id, merchant_id=merchant_id, lock=lock)


def items_of(session: Session, wave_id: int) -> list[WaveItem]:
    return list(session.scalars(select(WaveItem).where(WaveItem.wave_id == wave_id)
                                .order_by(WaveItem.position, WaveItem.id)))


def list_waves(session: Session, *, actor: Principal, status: str | None = None, cursor: str | None = None,
               limit: int | None = None) -> Page[Wave]:
    require_manager(actor)
    stmt = select(Wave).where(Wave.merchant_id == actor.merchant_id)
    if status:
        stmt = stmt.where(Wave.status == status)
    return paginate(session, stmt, Wave.id, cursor=cursor, limit=limit)


def serves(wave: Wave, leader: Leader) -> bool:
    """Whether the wave delivers to this point."""
    if not wave.leader_ids and not wave.regions:
        return True
    return leader.id in (wave.leader_ids or []) or (bool(leader.region) and leader.region in (wave.regions or []))


def shop_waves(session: Session, *, merchant_id: int, now: dt.datetime | None = None) -> list[Wave]:
    """Waves customers can buy in now, the earliest cut-off first."""
    now = now or clock.now()
    return list(session.scalars(select(Wave).where(Wave.merchant_id == merchant_id, Wave.status == W.OPEN.value,
                                                   Wave.starts_at <= now, Wave.cutoff_at > now)
                                .order_by(Wave.cutoff_at, Wave.id)))


def is_buyable(wave: Wave, now: dt.datetime | None = None) -> bool:
    now = now or clock.now()
    return wave.status == W.OPEN and wave.starts_at <= now < wave.cutoff_at


def live_totals(session: Session, wave: Wave) -> dict[str, Any]:
    """While a wave runs: units and amounts per item, and per point, of the orders that made it."""
    per_item = {item_id: (int(q or 0), int(c or 0)) for item_id, q, c in session.execute(
        select(WaveOrderLine.wave_item_id, func.sum(WaveOrderLine.quantity), func.sum(WaveOrderLine.paid_cents))
        .join(WaveOrder, WaveOrder.id == WaveOrderLine.wave_order_id)
        .where(WaveOrder.wave_id == wave.id, WaveOrder.status.in_(COUNTED)).group_by(WaveOrderLine.wave_item_id))}
    per_leader = [
        {"leader_id": lid, "point_name": name, "orders": int(n), "total_cents": int(t or 0)}
        for lid, name, n, t in session.execute(
            select(WaveOrder.leader_id, Leader.point_name, func.count(), func.sum(WaveOrder.total_cents))
            .join(Leader, Leader.id == WaveOrder.leader_id)
            .where(WaveOrder.wave_id == wave.id, WaveOrder.status.in_(COUNTED))
            .group_by(WaveOrder.leader_id, Leader.point_name).order_by(func.count().desc(), WaveOrder.leader_id))
    ]
    paid_statuses = COUNTED[1:]
    paid_orders, paid_total = session.execute(
        select(func.count(), func.coalesce(func.sum(WaveOrder.total_cents), 0)).where(
            WaveOrder.wave_id == wave.id, WaveOrder.status.in_(paid_statuses))).one()
    return {
        "items": [{"wave_item_id": i.id, "sku_id": i.sku_id, "title": i.title, "price_cents": i.price_cents,
                   "allocation": i.allocation, "sold": i.sold, "left": i.allocation - i.sold,
                   "quantity": per_item.get(i.id, (0, 0))[0], "paid_cents": per_item.get(i.id, (0, 0))[1]}
                  for i in items_of(session, wave.id)],
        "leaders": per_leader,
        "orders": int(wave.orders_count),
        "paid_orders": int(paid_orders),
        "paid_total_cents": int(paid_total),
    }
