"""The community map (社群地图): compounds, their leaders, pickup points and community groups, and the
coverage view an agent plans from: compounds with no leader or no group, households reached and
orders per 100 households."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.groupbuy.models import CommunityGroup, Compound, Leader, WaveOrder
from siyu.groupbuy.service.common import get_row, require_manager, valid_id
from siyu.groupbuy.states import LeaderStatus, WaveOrderStatus

REACHING = (WaveOrderStatus.PAID.value, WaveOrderStatus.DELIVERED.value, WaveOrderStatus.PICKED_UP.value)


@dataclasses.dataclass
class CompoundIn:
    name: str
    address: str = ""
    region: str = ""
    latitude: float | None = None
    longitude: float | None = None
    households: int = 0
    delivery_date: dt.date | None = None
    note: str = ""


def _clean_compound(data: CompoundIn) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = (data.name or "").strip()
    if not 0 < len(name) <= 80:
        errors["name"] = _("Name the compound (at most 80 characters).")
    if len(data.address or "") > 200:
        errors["address"] = _("At most 200 characters.")
    if (data.latitude is None) != (data.longitude is None):
        errors["latitude"] = _("Enter both latitude and longitude, or neither.")
    if data.latitude is not None and not -90 <= data.latitude <= 90:
        errors["latitude"] = _("Enter a latitude between -90 and 90.")
    if data.longitude is not None and not -180 <= data.longitude <= 180:
        errors["longitude"] = _("Enter a longitude between -180 and 180.")
    if not 0 <= data.households <= 1_000_000:
        errors["households"] = _("Enter the number of households (0 to 1,000,000).")
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return {"name": name, "address": (data.address or "").strip(), "region": (data.region or "").strip()[:40],
            "latitude": data.latitude, "longitude": data.longitude, "households": data.households,
            "delivery_date": data.delivery_date, "note": (data.note or "").strip()[:200]}


def create_compound(session: Session, *, actor: Principal, data: CompoundIn) -> Compound:
    require_manager(actor)
    row = Compound(merchant_id=actor.merchant_id, created_at=clock.now(), **_clean_compound(data))
    session.add(row)
    session.flush()
    return row


def update_compound(session: Session, compound_id: int, *, actor: Principal, data: CompoundIn) -> Compound:
    require_manager(actor)
    row = get_row(session, Compound, compound_id, merchant_id=actor.merchant_id, lock=True)
    for key, value in _clean_compound(data).items():
        setattr(row, key, value)
    session.flush()
    return row


def get_compound(session: Session, compound_id: int, *, merchant_id: int) -> Compound:
    return get_row(session, Compound, compound_id, merchant_id=merchant_id)


def list_compounds(session: Session, *, merchant_id: int) -> list[Compound]:
    return list(session.scalars(select(Compound).where(Compound.merchant_id == merchant_id)
                                .order_by(Compound.region, Compound.name, Compound.id)))


def create_group(session: Session, *, actor: Principal, name: str, compound_id: int | None,
                 leader_id: int | None = None, owner_name: str = "", member_count: int = 0) -> CommunityGroup:
    require_manager(actor)
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not 0 < len(name) <= 80:
        errors["name"] = _("Name the group (at most 80 characters).")
    if compound_id is not None and (not valid_id(compound_id) or session.scalar(select(Compound.id).where(
            Compound.id == compound_id, Compound.merchant_id == actor.merchant_id)) is None):
        errors["compound_id"] = _("Choose a compound from the list.")
    if leader_id is not None and (not valid_id(leader_id) or session.scalar(select(Leader.id).where(
            Leader.id == leader_id, Leader.merchant_id == actor.merchant_id)) is None):
        errors["leader_id"] = _("Choose a leader from the list.")
    if not 0 <= member_count <= 100_000:
        errors["member_count"] = _("Enter the number of members.")
    if errors:
        raise ValidationFailed(details={"fields": errors})
    row = CommunityGroup(merchant_id=actor.merchant_id, name=name, compound_id=compound_id, leader_id=leader_id,
                         owner_name=(owner_name or "").strip()[:40], member_count=member_count, created_at=clock.now())
    session.add(row)
    session.flush()
    return row


def update_group_members(session: Session, group_id: int, *, actor: Principal, member_count: int) -> CommunityGroup:
    require_manager(actor)
    if not 0 <= member_count <= 100_000:
        raise ValidationFailed(details={"fields": {"member_count": _("Enter the number of members.")}})
    row = get_row(session, CommunityGroup, group_id, merchant_id=actor.merchant_id, lock=True)
    row.member_count = member_count
    session.flush()
    return row


def list_groups(session: Session, *, merchant_id: int, leader_id: int | None = None) -> list[CommunityGroup]:
    stmt = select(CommunityGroup).where(CommunityGroup.merchant_id == merchant_id)
    if leader_id is not None:
        stmt = stmt.where(CommunityGroup.leader_id == leader_id)
    return list(session.scalars(stmt.order_by(CommunityGroup.id)))


def per_100(part: int, whole: int) -> str:
    """part per 100 of whole with one decimal, in integers ("12.5"); "—" without a whole."""
    if whole <= 0:
        return "—"
    tenths = (part * 1000 + whole // 2) // whole
    return f"{tenths // 10}.{tenths % 10}"


def coverage(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """Per compound: its points (active leaders), groups and their members, the customers who buy at
    its points (households reached, at most the households), and orders per 100 households; plus
    the compounds still without a leader or without a group."""
    compounds = list_compounds(session, merchant_id=merchant_id)
    leaders: dict[int, list[Leader]] = {}
    for leader in session.scalars(select(Leader).where(Leader.merchant_id == merchant_id,
                                                       Leader.compound_id.is_not(None),
                                                       Leader.status.in_((LeaderStatus.ACTIVE.value,
                                                                          LeaderStatus.FROZEN.value)))):
        leaders.setdefault(leader.compound_id or 0, []).append(leader)
    groups: dict[int, tuple[int, int]] = {
        cid: (int(n), int(m or 0)) for cid, n, m in session.execute(
            select(CommunityGroup.compound_id, func.count(), func.sum(CommunityGroup.member_count))
            .where(CommunityGroup.merchant_id == merchant_id, CommunityGroup.compound_id.is_not(None))
            .group_by(CommunityGroup.compound_id))}
    reach: dict[int, tuple[int, int]] = {
        cid: (int(c), int(o)) for cid, c, o in session.execute(
            select(Leader.compound_id, func.count(func.distinct(WaveOrder.customer_id)), func.count(WaveOrder.id))
            .join(WaveOrder, WaveOrder.leader_id == Leader.id)
            .where(Leader.merchant_id == merchant_id, Leader.compound_id.is_not(None),
                   WaveOrder.status.in_(REACHING))
            .group_by(Leader.compound_id))}
    rows = []
    for c in compounds:
        group_count, members = groups.get(c.id, (0, 0))
        customers, orders_n = reach.get(c.id, (0, 0))
        reached = min(customers, c.households) if c.households else customers
        rows.append({"compound": c, "leaders": leaders.get(c.id, []), "groups": group_count, "members": members,
                     "households": c.households, "households_reached": reached,
                     "reach_per_100": per_100(reached, c.households), "orders": orders_n,
                     "orders_per_100_households": per_100(orders_n, c.households),
                     "no_leader": not leaders.get(c.id), "no_group": group_count == 0})
    return {
        "compounds": rows,
        "total_households": sum(r["households"] for r in rows),
        "households_reached": sum(r["households_reached"] for r in rows),
        "without_leader": [r["compound"] for r in rows if r["no_leader"]],
        "without_group": [r["compound"] for r in rows if r["no_group"]],
    }
