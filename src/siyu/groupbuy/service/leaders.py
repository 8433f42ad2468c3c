"""Leaders and their pickup points: a shop customer applies (name, phone, address, compound,
location, opening hours, a photo of the point); staff approve or reject, freeze and unfreeze, and
close a point, moving its open orders to a nearby point and telling the customers."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.core.states import InvalidTransition
from siyu.customers import service as customers
from siyu.groupbuy.models import Commission, Compound, Leader, WaveOrder
from siyu.groupbuy.service import commissions, notifications
from siyu.groupbuy.service.common import get_row, require_customer, require_manager, valid_id
from siyu.groupbuy.states import LEADER_MACHINE, OPEN_ORDER_STATUSES, CommissionStatus, LeaderStatus

S = LeaderStatus
FIELDS = ("name", "phone", "point_name", "address", "compound_id", "latitude", "longitude", "opening_hours")


@dataclasses.dataclass
class LeaderApplication:
    name: str
    phone: str
    point_name: str
    address: str
    latitude: float | None
    longitude: float | None
    opening_hours: str = ""
    compound_id: int | None = None
    region: str = ""
    photo: bytes | None = None
    photo_name: str = ""


def _validate(session: Session, merchant_id: int, app: LeaderApplication) -> dict[str, Any]:
    """The cleaned values, or ValidationFailed with a message per wrong field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    name = (app.name or "").strip()
    if not 0 < len(name) <= 40:
        errors["name"] = _("Enter your name (at most 40 characters).")
    clean["name"] = name
    try:
        clean["phone"] = customers.normalise_phone(app.phone or "")
    except ValidationFailed:
        errors["phone"] = _("Enter a valid phone number.")
    point_name = (app.point_name or "").strip()
    if not 0 < len(point_name) <= 80:
        errors["point_name"] = _("Name the pickup point (at most 80 characters).")
    clean["point_name"] = point_name
    address = (app.address or "").strip()
    if not 0 < len(address) <= 200:
        errors["address"] = _("Enter the point's address (at most 200 characters).")
    clean["address"] = address
    lat, lng = app.latitude, app.longitude
    if lat is None or not -90 <= lat <= 90 or lat != lat:
        errors["latitude"] = _("Enter a latitude between -90 and 90.")
    if lng is None or not -180 <= lng <= 180 or lng != lng:
        errors["longitude"] = _("Enter a longitude between -180 and 180.")
    clean["latitude"], clean["longitude"] = lat, lng
    hours = (app.opening_hours or "").strip()
    if len(hours) > 60:
        errors["opening_hours"] = _("At most 60 characters.")
    clean["opening_hours"] = hours
    clean["region"] = (app.region or "").strip()[:40]
    clean["compound_id"], clean["compound_name"] = None, ""
    if app.compound_id is not None:
        compound = session.scalars(select(Compound).where(Compound.id == app.compound_id,
                                                          Compound.merchant_id == merchant_id)).first() \
            if valid_id(app.compound_id) else None
        if compound is None:
            errors["compound_id"] = _("Choose a compound from the list.")
        else:
            clean["compound_id"], clean["compound_name"] = compound.id, compound.name
            clean["region"] = clean["region"] or compound.region
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return clean


def apply(session: Session, *, actor: Principal, application: LeaderApplication) -> Leader:
    """A customer applies to become a leader with a pickup point; staff review it. A customer has at
    most one leader record: applying again is allowed only after a rejection."""
    customer_id = require_customer(actor)
    clean = _validate(session, actor.merchant_id, application)
    existing = session.scalars(select(Leader).where(Leader.merchant_id == actor.merchant_id,
                                                    Leader.customer_id == customer_id).with_for_update()).first()
    if existing is not None and existing.status != S.REJECTED:
        raise Conflict("You have already applied.", code="already_applied", details={"status": existing.status})
    photo_url = ""
    if application.photo:
        # The catalogue's image upload checks the bytes with Pillow; the shop customer uploads
        # through the system (customers cannot manage the catalogue).
        photo_url = catalog.save_upload(session, actor=system_principal(actor.merchant_id), data=application.photo,
                                        filename=application.photo_name).url
    now = clock.now()
    if existing is not None:
        LEADER_MACHINE.check(existing.status, S.APPLIED)
        for key, value in clean.items():
            setattr(existing, key, value)
        existing.status = S.APPLIED.value
        existing.photo_url = photo_url or existing.photo_url
        existing.applied_at = now
        existing.reject_reason = ""
        session.flush()
        return existing
    leader = Leader(merchant_id=actor.merchant_id, customer_id=customer_id, status=S.APPLIED.value,
                    photo_url=photo_url, applied_at=now, **clean)
    session.add(leader)
    session.flush()
    return leader


def create_leader(session: Session, *, actor: Principal, customer_id: int, application: LeaderApplication,
                  route: str = "", commission_bps: int | None = None) -> Leader:
    """Staff (or the demo) sign up a customer as an active leader directly."""
    require_manager(actor)
    customers.get_customer(session, customer_id, actor=system_principal(actor.merchant_id))
    clean = _validate(session, actor.merchant_id, application)
    if session.scalar(select(Leader.id).where(Leader.merchant_id == actor.merchant_id,
                                              Leader.customer_id == customer_id)) is not None:
        raise Conflict("This customer is already a leader or has applied.", code="already_applied")
    now = clock.now()
    leader = Leader(merchant_id=actor.merchant_id, customer_id=customer_id, status=S.ACTIVE.value, applied_at=now,
                    approved_at=now, approved_by=actor.staff_id, route=route[:40], commission_bps=commission_bps,
                    **clean)
    session.add(leader)
    session.flush()
    return leader


def get_leader(session: Session, leader_id: int, *, merchant_id: int, lock: bool = False) -> Leader:
    return get_row(session, Leader, leader_id, merchant_id=merchant_id, lock=lock)


def leader_of_customer(session: Session, *, merchant_id: int, customer_id: int) -> Leader | None:
    return session.scalars(select(Leader).where(Leader.merchant_id == merchant_id,
                                                Leader.customer_id == customer_id)).first()


def my_leader(session: Session, *, actor: Principal, statuses: tuple[str, ...] = (S.ACTIVE, S.FROZEN)) -> Leader:
    """The signed-in customer's own leader record in one of `statuses`, else 404."""
    customer_id = require_customer(actor)
    leader = leader_of_customer(session, merchant_id=actor.merchant_id, customer_id=customer_id)
    if leader is None or leader.status not in statuses:
        raise NotFound("You are not a leader.", code="not_a_leader")
    return leader


def list_leaders(session: Session, *, actor: Principal, status: str | None = None, q: str = "",
                 cursor: str | None = None, limit: int | None = None) -> Page[Leader]:
    require_manager(actor)
    stmt = select(Leader).where(Leader.merchant_id == actor.merchant_id)
    if status:
        stmt = stmt.where(Leader.status == status)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')[:40]}%"
        stmt = stmt.where(Leader.name.like(like) | Leader.point_name.like(like) | Leader.address.like(like))
    return paginate(session, stmt, Leader.id, cursor=cursor, limit=limit)


def all_points(session: Session, *, merchant_id: int, statuses: tuple[str, ...] = (S.ACTIVE, S.FROZEN)) -> list[Leader]:
    return list(session.scalars(select(Leader).where(Leader.merchant_id == merchant_id, Leader.status.in_(statuses))
                                .order_by(Leader.id)))


def counts_by_status(session: Session, *, merchant_id: int) -> dict[str, int]:
    rows = session.execute(select(Leader.status, func.count()).where(Leader.merchant_id == merchant_id)
                           .group_by(Leader.status))
    return {status: int(n) for status, n in rows}


def _move(session: Session, leader: Leader, new: S, actor: Principal, *, only_from: S | None = None) -> None:
    """Move through the table; `only_from` narrows a move the table allows from several statuses
    (approving is from `applied`, unfreezing from `frozen`, though both lead to `active`)."""
    if only_from is not None and leader.status != only_from:
        raise InvalidTransition(LEADER_MACHINE.message, details={"from": leader.status, "to": new.value},
                                old=leader.status, new=new.value)
    LEADER_MACHINE.check(leader.status, new)
    leader.status = new.value


def approve(session: Session, leader_id: int, *, actor: Principal, route: str | None = None,
            commission_bps: int | None = None) -> Leader:
    """An application becomes an active pickup point."""
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    _move(session, leader, S.ACTIVE, actor, only_from=S.APPLIED)
    leader.approved_at = clock.now()
    leader.approved_by = actor.staff_id
    if route is not None:
        leader.route = route.strip()[:40]
    if commission_bps is not None:
        leader.commission_bps = commission_bps
    session.flush()
    return leader


def reject(session: Session, leader_id: int, *, actor: Principal, reason: str) -> Leader:
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    _move(session, leader, S.REJECTED, actor)
    leader.reject_reason = reason.strip()[:200]
    session.flush()
    return leader


def update_leader(session: Session, leader_id: int, *, actor: Principal, route: str | None = None,
                  commission_bps: int | None = None, clear_commission: bool = False) -> Leader:
    """Staff set the point's delivery route and the leader's own commission rate."""
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    if route is not None:
        leader.route = route.strip()[:40]
    if commission_bps is not None or clear_commission:
        leader.commission_bps = None if clear_commission else commission_bps
    session.flush()
    return leader


def freeze(session: Session, leader_id: int, *, actor: Principal) -> Leader:
    """A frozen point takes no new orders and is not found by the search; its orders still arrive
    and are handed out."""
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    _move(session, leader, S.FROZEN, actor)
    leader.frozen_at = clock.now()
    session.flush()
    return leader


def unfreeze(session: Session, leader_id: int, *, actor: Principal) -> Leader:
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    _move(session, leader, S.ACTIVE, actor, only_from=S.FROZEN)
    leader.frozen_at = None
    session.flush()
    return leader


def _free_code(taken: set[str]) -> str:
    while True:
        code = f"{secrets.randbelow(10**6):06d}"
        if code not in taken:
            return code


def open_orders_count(session: Session, *, merchant_id: int, leader_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(WaveOrder).where(
        WaveOrder.merchant_id == merchant_id, WaveOrder.leader_id == leader_id,
        WaveOrder.status.in_(OPEN_ORDER_STATUSES))) or 0)


def close(session: Session, leader_id: int, *, actor: Principal, move_to_leader_id: int | None) -> tuple[Leader, int]:
    """Close a point for good. Its open orders (not yet picked up) move to `move_to_leader_id`, an
    active point, with their pending commissions; each customer is notified. A point with open
    orders cannot close without a point to move them to. Returns the leader and how many orders moved."""
    require_manager(actor)
    leader = get_leader(session, leader_id, merchant_id=actor.merchant_id, lock=True)
    LEADER_MACHINE.check(leader.status, S.CLOSED)
    orders = list(session.scalars(select(WaveOrder).where(
        WaveOrder.merchant_id == actor.merchant_id, WaveOrder.leader_id == leader.id,
        WaveOrder.status.in_(OPEN_ORDER_STATUSES)).order_by(WaveOrder.id).with_for_update()))
    target: Leader | None = None
    if orders:
        if move_to_leader_id is None:
            raise ValidationFailed(details={"fields": {"move_to_leader_id": _(
                "This point has {n} open orders: choose the point they move to.", n=len(orders))}})
        if move_to_leader_id == leader.id:
            raise ValidationFailed(details={"fields": {"move_to_leader_id": _("Choose another point.")}})
        try:
            target = get_leader(session, move_to_leader_id, merchant_id=actor.merchant_id)
        except NotFound as exc:
            raise ValidationFailed(details={"fields": {"move_to_leader_id": _("Choose an active point.")}}) from exc
        if target.status != S.ACTIVE:
            raise ValidationFailed(details={"fields": {"move_to_leader_id": _("Choose an active point.")}})
    now = clock.now()
    leader.status = S.CLOSED.value
    leader.closed_at = now
    if target is not None:
        # A pickup code names one open order at a point: a moved order whose code the new point
        # already uses gets a new one (its customer is told the code with the new point).
        taken = set(session.scalars(select(WaveOrder.pickup_code).where(
            WaveOrder.leader_id == target.id, WaveOrder.status.in_(OPEN_ORDER_STATUSES))))
        for order in orders:
            order.original_leader_id = order.original_leader_id or leader.id
            if order.pickup_code in taken:
                order.pickup_code = _free_code(taken)
            taken.add(order.pickup_code)
            order.leader_id = target.id
        pending = list(session.scalars(select(Commission).where(
            Commission.merchant_id == actor.merchant_id, Commission.leader_id == leader.id,
            Commission.order_id.in_([o.order_id for o in orders]),
            Commission.status == CommissionStatus.PENDING.value).order_by(Commission.id).with_for_update()))
        for row in pending:
            commissions.transfer(session, row, to_leader_id=target.id, actor=actor)
        for order in orders:
            notifications.notify(session, merchant_id=actor.merchant_id, kind="point_moved",
                                 customer_ids_orders=[(order.customer_id, order.order_id)],
                                 text=_("Pickup point {old} has closed. Your order {no} will be at {new} ({address}). "
                                        "Pickup code: {code}.", old=leader.point_name, no=order.order_no,
                                        new=target.point_name, address=target.address, code=order.pickup_code))
    session.flush()
    return leader, len(orders)
