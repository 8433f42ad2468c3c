"""Distributors: joining by the programme's enrolment mode, review, freeze/remove, the upline and
its guards (no self-binding, no cycles, limited churn), grades, and the team tree."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import ownership
from siyu.core import audit, clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.core.pagination import Page, paginate
from siyu.customers import service as customers
from siyu.distribution.models import Distributor, Programme, UplineChange
from siyu.distribution.service.programme import get_programme, grades
from siyu.distribution.states import DISTRIBUTOR_MACHINE, DistributorStatus

D = DistributorStatus
INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Statuses of distributors who still belong to a team (removed and rejected do not count).
IN_TEAM = (D.ACTIVE.value, D.FROZEN.value)


class NotADistributor(NotFound):
    code = "not_a_distributor"
    message = "You are not a distributor yet."


class UplineRefused(Conflict):
    code = "upline_refused"
    message = "This upline cannot be set."


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 2**53


def get_distributor(session: Session, *, merchant_id: int, distributor_id: int, lock: bool = False) -> Distributor:
    if not _valid_id(distributor_id):
        raise NotFound()
    stmt = select(Distributor).where(Distributor.id == distributor_id, Distributor.merchant_id == merchant_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound()
    return row


def of_customer(session: Session, *, merchant_id: int, customer_id: int | None) -> Distributor | None:
    if not customer_id:
        return None
    return session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id,
                                                     Distributor.customer_id == customer_id)).first()


def require_own(session: Session, *, actor: Principal, lock: bool = False) -> Distributor:
    """The signed-in customer's distributor record; 404 `not_a_distributor` without one."""
    row = of_customer(session, merchant_id=actor.merchant_id, customer_id=actor.customer_id)
    if row is None:
        raise NotADistributor()
    if lock:
        row = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=row.id, lock=True)
    return row


def by_invite_code(session: Session, *, merchant_id: int, code: str | None) -> Distributor | None:
    code = (code or "").strip().upper()[:16]
    if not code:
        return None
    return session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id,
                                                     Distributor.invite_code == code)).first()


def _new_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))


def _set_status(row: Distributor, new: D) -> None:
    DISTRIBUTOR_MACHINE.check(row.status, new)
    row.status = new.value
    row.updated_at = clock.now()


def refresh_team_size(session: Session, *, merchant_id: int, distributor_id: int | None) -> None:
    if distributor_id is None:
        return
    count = session.scalar(select(func.count()).select_from(Distributor).where(
        Distributor.merchant_id == merchant_id, Distributor.upline_id == distributor_id,
        Distributor.status.in_(IN_TEAM))) or 0
    upline = session.get(Distributor, distributor_id)
    if upline is not None:
        upline.team_size = int(count)
        update_grade(session, upline, get_programme(session, merchant_id=merchant_id))


def update_grade(session: Session, row: Distributor, programme: Programme) -> bool:
    """Move the distributor up to the highest grade they qualify for by settled sales or team size
    (grades only go up by themselves; staff may set one by hand)."""
    order = [g["code"] for g in grades(programme)]
    best = row.grade if row.grade in order else order[0]
    for g in grades(programme):
        sales, team = g.get("min_settled_sales_cents", 0), g.get("min_team_size", 0)
        qualifies = (sales == 0 and team == 0) or (sales > 0 and row.settled_sales_cents >= sales) \
            or (team > 0 and row.team_size >= team)
        if qualifies and order.index(g["code"]) > order.index(best):
            best = g["code"]
    if best != row.grade:
        row.grade = best
        return True
    return False


def _chain_of(session: Session, merchant_id: int, start_id: int | None, limit: int = 100) -> list[int]:
    """Upline ids from `start_id` upwards (stops on a repeat, so a corrupt chain cannot loop)."""
    out: list[int] = []
    current = start_id
    while current is not None and len(out) < limit and current not in out:
        out.append(current)
        current = session.scalar(select(Distributor.upline_id).where(Distributor.id == current,
                                                                     Distributor.merchant_id == merchant_id))
    return out


def set_upline(session: Session, *, row: Distributor, upline: Distributor | None, actor: Principal | None,
               programme: Programme | None = None, force: bool = False) -> None:
    """Set who recruited `row`. Refused: oneself, the same customer, a cycle (the new upline is in
    row's own downline), an upline that is not active, and more changes than the programme allows in
    30 days (`force`: staff correcting a mistake are not rate-limited)."""
    new_id = upline.id if upline else None
    if new_id == row.upline_id:
        return
    if upline is not None:
        if upline.id == row.id or upline.customer_id == row.customer_id:
            raise UplineRefused("A distributor cannot be their own upline.", code="self_binding")
        if upline.status != D.ACTIVE:
            raise UplineRefused("The inviting distributor is not active.", code="upline_inactive")
        if row.id is not None and row.id in _chain_of(session, row.merchant_id, upline.id):
            raise UplineRefused("This would make a cycle in the team.", code="upline_cycle")
    programme = programme or get_programme(session, merchant_id=row.merchant_id)
    if row.id is not None and row.upline_id is not None and not force:
        since = clock.now() - dt.timedelta(days=30)
        changes = session.scalar(select(func.count()).select_from(UplineChange).where(
            UplineChange.merchant_id == row.merchant_id, UplineChange.distributor_id == row.id,
            UplineChange.created_at >= since)) or 0
        if changes >= programme.upline_changes_per_30_days:
            raise UplineRefused("The upline was changed too recently; try again later.", code="upline_rate_limited")
    old = row.upline_id
    row.upline_id = new_id
    if row.id is None:
        session.add(row)
        session.flush()
    session.add(UplineChange(merchant_id=row.merchant_id, distributor_id=row.id, old_upline_id=old,
                             new_upline_id=new_id, actor_type=actor.kind if actor else "system",
                             actor_id=actor.subject_id if actor else None, created_at=clock.now()))
    session.flush()
    refresh_team_size(session, merchant_id=row.merchant_id, distributor_id=old)
    refresh_team_size(session, merchant_id=row.merchant_id, distributor_id=new_id)


def _referrer_upline(session: Session, merchant_id: int, customer_id: int) -> Distributor | None:
    """The customer's bound referrer under attribution's binding rules, when that is an active distributor."""
    referrer_id = ownership.referrer_of(session, merchant_id=merchant_id, customer_id=customer_id)
    found = of_customer(session, merchant_id=merchant_id, customer_id=referrer_id) if referrer_id else None
    return found if found is not None and found.status == D.ACTIVE else None


def join(session: Session, *, actor: Principal, invite_code: str | None = None, note: str = "") -> Distributor:
    """A customer joins (or applies to join) by the programme's enrolment mode. The upline is the
    distributor whose invite code was used, else the customer's bound referrer."""
    if actor.kind != "customer":
        raise PermissionDenied()
    merchant_id, customer_id = actor.merchant_id, actor.customer_id
    assert customer_id is not None
    programme = get_programme(session, merchant_id=merchant_id)
    if not programme.enabled:
        raise Conflict("The distribution programme is closed.", code="programme_closed")
    customer = customers.get_customer(session, customer_id, actor=system_principal(merchant_id))
    inviter = by_invite_code(session, merchant_id=merchant_id, code=invite_code)
    if invite_code and inviter is None:
        raise Conflict("This invitation code is not valid.", code="invalid_invite_code")
    mode = programme.enrolment_mode
    if mode == "invitation" and inviter is None:
        raise Conflict("Joining needs an invitation from a distributor.", code="invitation_required")
    if mode == "first_purchase" and customers.stats_of(customer)["paid_orders"] < 1:
        raise Conflict("You can join after your first purchase.", code="first_purchase_required")
    existing = of_customer(session, merchant_id=merchant_id, customer_id=customer_id)
    target = D.PENDING if mode == "approval" else D.ACTIVE
    now = clock.now()
    if existing is not None:
        if existing.status != D.REJECTED:
            raise Conflict("You have already joined.", code="already_joined", details={"status": existing.status})
        row = existing
        _set_status(row, target)
        row.applied_at = now
    else:
        row = Distributor(merchant_id=merchant_id, customer_id=customer_id, status=target.value,
                          grade=grades(programme)[0]["code"], invite_code=_new_code(),
                          nickname=(customer.nickname or "")[:64], note=note[:200], applied_at=now, updated_at=now)
        for _ in range(5):
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
                break
            except IntegrityError:
                if of_customer(session, merchant_id=merchant_id, customer_id=customer_id) is not None:
                    raise Conflict("You have already joined.", code="already_joined") from None
                row = Distributor(**{c: getattr(row, c) for c in ("merchant_id", "customer_id", "status", "grade",
                                                                   "nickname", "note", "applied_at", "updated_at")},
                                  invite_code=_new_code())
    if target == D.ACTIVE:
        row.joined_at = now
    upline = inviter or _referrer_upline(session, merchant_id, customer_id)
    if upline is not None:
        set_upline(session, row=row, upline=upline, actor=actor, programme=programme)
    session.flush()
    return row


def review(session: Session, *, actor: Principal, distributor_id: int, approve: bool, reason: str = "") -> Distributor:
    """Approve or reject an application."""
    actor.require("merchant.manage")
    row = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=distributor_id, lock=True)
    if row.status != D.PENDING:
        raise Conflict("This application has already been decided.", code="already_reviewed")
    _set_status(row, D.ACTIVE if approve else D.REJECTED)
    row.reviewed_by = actor.staff_id
    if approve:
        row.joined_at = clock.now()
        refresh_team_size(session, merchant_id=row.merchant_id, distributor_id=row.upline_id)
    else:
        row.note = reason[:200]
    audit.record(session, actor=actor, action="distribution.approve" if approve else "distribution.reject",
                 target_type="distributor", target_id=row.id, details={"reason": reason[:200]})
    session.flush()
    return row


def change_status(session: Session, *, actor: Principal, distributor_id: int, status: str,
                  reason: str = "") -> Distributor:
    """Freeze (accrues nothing, cannot withdraw), unfreeze, or remove (history kept; what is owed
    still settles and can be withdrawn)."""
    actor.require("merchant.manage")
    row = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=distributor_id, lock=True)
    new = D(status) if status in {s.value for s in D} else None
    if new not in (D.ACTIVE, D.FROZEN, D.REMOVED):
        raise Conflict("This distributor cannot move from {old} to {new}.", code="invalid_transition",
                       old=row.status, new=status)
    _set_status(row, new)
    if new == D.REMOVED:
        row.removed_at = clock.now()
    if reason:
        row.note = reason[:200]
    audit.record(session, actor=actor, action=f"distribution.{new.value}", target_type="distributor",
                 target_id=row.id, details={"reason": reason[:200]})
    refresh_team_size(session, merchant_id=row.merchant_id, distributor_id=row.upline_id)
    session.flush()
    return row


def set_grade(session: Session, *, actor: Principal, distributor_id: int, grade: str) -> Distributor:
    actor.require("merchant.manage")
    row = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=distributor_id, lock=True)
    codes = [g["code"] for g in grades(get_programme(session, merchant_id=actor.merchant_id))]
    if grade not in codes:
        raise Conflict("Unknown grade.", code="unknown_grade")
    row.grade = grade
    session.flush()
    return row


def change_upline(session: Session, *, actor: Principal, distributor_id: int, upline_id: int | None) -> Distributor:
    """Staff move a distributor to another upline (guards apply; the churn limit does not)."""
    actor.require("merchant.manage")
    row = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=distributor_id, lock=True)
    upline = get_distributor(session, merchant_id=actor.merchant_id, distributor_id=upline_id) if upline_id else None
    set_upline(session, row=row, upline=upline, actor=actor, force=True)
    return row


@dataclasses.dataclass
class DistributorFilter:
    status: str | None = None
    grade: str | None = None
    q: str | None = None
    upline_id: int | None = None


def list_distributors(session: Session, *, merchant_id: int, filters: DistributorFilter | None = None,
                      cursor: str | None = None, limit: int | None = None) -> Page[Distributor]:
    f = filters or DistributorFilter()
    stmt = select(Distributor).where(Distributor.merchant_id == merchant_id)
    if f.status:
        stmt = stmt.where(Distributor.status == f.status)
    if f.grade:
        stmt = stmt.where(Distributor.grade == f.grade)
    if f.upline_id:
        stmt = stmt.where(Distributor.upline_id == f.upline_id)
    if f.q:
        q = f.q.strip()[:40]
        stmt = stmt.where(or_(Distributor.nickname.contains(q, autoescape=True), Distributor.invite_code == q.upper()))
    return paginate(session, stmt, Distributor.id, cursor=cursor, limit=limit)


def by_ids(session: Session, *, merchant_id: int, ids: list[int]) -> dict[int, Distributor]:
    ids = [i for i in dict.fromkeys(ids) if i]
    if not ids:
        return {}
    rows = session.scalars(select(Distributor).where(Distributor.merchant_id == merchant_id, Distributor.id.in_(ids)))
    return {r.id: r for r in rows}


@dataclasses.dataclass
class TeamNode:
    distributor: Distributor
    children: list[TeamNode]


def team(session: Session, *, row: Distributor, depth: int = 2) -> list[TeamNode]:
    """The distributor's downline, `depth` levels deep (removed members are not shown)."""
    def level(parent_ids: list[int]) -> list[Distributor]:
        if not parent_ids:
            return []
        return list(session.scalars(select(Distributor).where(
            Distributor.merchant_id == row.merchant_id, Distributor.upline_id.in_(parent_ids),
            Distributor.status.in_(IN_TEAM + (D.PENDING.value,))).order_by(Distributor.id)))

    nodes: dict[int, TeamNode] = {}
    roots: list[TeamNode] = []
    parents = [row.id]
    for depth_index in range(depth):
        members = level(parents)
        for m in members:
            node = TeamNode(distributor=m, children=[])
            nodes[m.id] = node
            if depth_index == 0:
                roots.append(node)
            else:
                nodes[m.upline_id].children.append(node)  # type: ignore[index]
        parents = [m.id for m in members]
    return roots


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """A merged-away customer's distributor record follows them to the customer they were merged into
    (unless that customer is a distributor already: then both records are kept as they are)."""
    source = of_customer(session, merchant_id=merchant_id, customer_id=source_id)
    if source is not None and of_customer(session, merchant_id=merchant_id, customer_id=target_id) is None:
        source.customer_id = target_id
        source.updated_at = clock.now()
        session.flush()


def upline_history(session: Session, *, merchant_id: int, distributor_id: int) -> list[UplineChange]:
    return list(session.scalars(select(UplineChange).where(UplineChange.merchant_id == merchant_id,
                                                           UplineChange.distributor_id == distributor_id)
                                .order_by(UplineChange.id.desc()).limit(50)))
