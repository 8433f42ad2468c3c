"""membership: points. The balance is a ledger account (kind "points", owner ("customer", id));
lots say when points expire (earned in year Y expire at the end of Y + `expiry_years`, Asia/Shanghai)
and are spent first-in-first-out (soonest to expire first).

Every change takes the account's row lock first (ledger.lock_account), expires what is due, then
posts to the ledger (a conditional UPDATE that cannot go below zero) and moves the lots, so two
spends racing for the same points cannot both win, and expired points are never spent.
Invariant: balance == sum(remaining) over the lots not expired."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import audit, clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page
from siyu.ledger import service as ledger
from siyu.membership.models.points import OrderPoints, PointsLot, PointsLotUse
from siyu.membership.service import members as members_service

KIND = "points"
OWNER = "customer"


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    message = "Not enough points."


def expires_at_for(earned_at: dt.datetime, expiry_years: int) -> dt.datetime | None:
    """The end of year Y + expiry_years (Shanghai time) for points earned in year Y; None = never."""
    if expiry_years <= 0:
        return None
    year = clock.local(earned_at).year  # type: ignore[union-attr]
    return dt.datetime(year + expiry_years + 1, 1, 1, tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def balance(session: Session, *, merchant_id: int, customer_id: int) -> int:
    return ledger.balance(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id)


def balances(session: Session, *, merchant_id: int, customer_ids: list[int]) -> dict[int, int]:
    return ledger.balances(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_ids=customer_ids)


def _open_lots(merchant_id: int, customer_id: int) -> Any:
    return select(PointsLot).where(PointsLot.merchant_id == merchant_id, PointsLot.customer_id == customer_id,
                                   PointsLot.expired_at.is_(None), PointsLot.remaining > 0)


def available(session: Session, *, merchant_id: int, customer_id: int, now: dt.datetime | None = None) -> int:
    """Points that can be spent now: the open lots not past their expiry."""
    now = now or clock.now()
    total = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.merchant_id == merchant_id, PointsLot.customer_id == customer_id,
            PointsLot.expired_at.is_(None), PointsLot.remaining > 0,
            (PointsLot.expires_at.is_(None)) | (PointsLot.expires_at > now)))
    return int(total or 0)


def expiring_soon(session: Session, *, merchant_id: int, customer_id: int) -> tuple[int, dt.datetime | None]:
    """The points of the soonest-expiring open lot date, and that date."""
    now = clock.now()
    first = session.scalar(
        select(func.min(PointsLot.expires_at)).where(
            PointsLot.merchant_id == merchant_id, PointsLot.customer_id == customer_id,
            PointsLot.expired_at.is_(None), PointsLot.remaining > 0, PointsLot.expires_at > now))
    if first is None:
        return 0, None
    total = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.merchant_id == merchant_id, PointsLot.customer_id == customer_id,
            PointsLot.expired_at.is_(None), PointsLot.expires_at == first))
    return int(total or 0), first


def _lock(session: Session, merchant_id: int, customer_id: int) -> None:
    ledger.lock_account(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id)


def _expire_due(session: Session, merchant_id: int, customer_id: int, now: dt.datetime) -> int:
    """Expire the customer's open lots past their date (the account is locked by the caller)."""
    lots = list(session.scalars(_open_lots(merchant_id, customer_id).where(
        PointsLot.expires_at.is_not(None), PointsLot.expires_at <= now).order_by(PointsLot.id)))
    total = 0
    for lot in lots:
        n = lot.remaining
        ledger.post(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id, delta=-n,
                    reason="expire", idempotency_key=f"points:lot:{lot.id}:expire:{lot.expired_points + n}",
                    ref_type="points_lot", ref_id=lot.id, note=clock.format_local(lot.earned_at, "%Y-%m-%d"))
        lot.remaining = 0
        lot.expired_points += n
        lot.expired_at = now
        total += n
    session.flush()
    return total


def earn(session: Session, *, merchant_id: int, customer_id: int, points: int, reason: str, key: str,
         ref_type: str | None = None, ref_id: int | None = None, note: str = "", actor: Principal | None = None,
         expires_at: dt.datetime | None | str = "rule") -> PointsLot | None:
    """Credit points as a new lot (expiring by the merchant's rule unless `expires_at` is given).
    Idempotent by `key`: a replay returns the first lot. 0 points: nothing."""
    if points <= 0:
        return None
    existing = session.scalars(select(PointsLot).where(PointsLot.merchant_id == merchant_id,
                                                       PointsLot.entry_key == key)).first()
    if existing is not None:
        return existing
    now = clock.now()
    if expires_at == "rule":
        expires_at = expires_at_for(now, members_service.rules(session, merchant_id).expiry_years)
    assert not isinstance(expires_at, str)
    _lock(session, merchant_id, customer_id)
    ledger.post(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id, delta=points,
                reason=reason, idempotency_key=key, ref_type=ref_type, ref_id=ref_id, note=note, actor=actor)
    lot = PointsLot(merchant_id=merchant_id, customer_id=customer_id, amount=points, remaining=points, reason=reason[:40],
                    entry_key=key, ref_type=ref_type, ref_id=ref_id, earned_at=now, expires_at=expires_at)
    session.add(lot)
    session.flush()
    if expires_at is not None and expires_at <= now:
        _expire_due(session, merchant_id, customer_id, now)
    return lot


def spend(session: Session, *, merchant_id: int, customer_id: int, points: int, reason: str, key: str,
          ref_type: str | None = None, ref_id: int | None = None, note: str = "", actor: Principal | None = None,
          first_lot_id: int | None = None) -> int:
    """Take points, first-in-first-out over the lots (those of `first_lot_id` first, for reversals).
    Expired points are expired first, never spent. Raises 409 `insufficient_points` and moves
    nothing when there are not enough. Idempotent by `key`. Returns the points taken."""
    if points <= 0:
        return 0
    if ledger.find_entry(session, merchant_id=merchant_id, idempotency_key=key) is not None:
        return points
    now = clock.now()
    _lock(session, merchant_id, customer_id)
    _expire_due(session, merchant_id, customer_id, now)
    try:
        ledger.post(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id,
                    delta=-points, reason=reason, idempotency_key=key, ref_type=ref_type, ref_id=ref_id, note=note,
                    actor=actor)
    except ledger.InsufficientBalance as exc:
        raise InsufficientPoints(details={"requested": points, "available": exc.details.get("balance", 0)}) from exc
    lots = list(session.scalars(_open_lots(merchant_id, customer_id).order_by(
        PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)))
    if first_lot_id is not None:
        lots.sort(key=lambda lot: lot.id != first_lot_id)
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        lot.remaining -= take
        left -= take
        session.add(PointsLotUse(merchant_id=merchant_id, customer_id=customer_id, lot_id=lot.id, spend_key=key,
                                 amount=take, returned=0, created_at=now))
    # The balance and the open lots agree, so the lots always cover a spend the ledger allowed.
    assert left == 0, "points lots out of step with the ledger"
    session.flush()
    return points


def give_back(session: Session, *, merchant_id: int, customer_id: int, spend_key: str, points: int, key: str,
              reason: str = "return", ref_type: str | None = None, ref_id: int | None = None, note: str = "",
              actor: Principal | None = None) -> int:
    """Return points taken by the spend `spend_key` to the lots they came from (the latest-expiring
    first); points whose lot has expired meanwhile are returned and expire at once. Idempotent by
    `key`; never more than was taken. Returns the points given back."""
    if points <= 0 or ledger.find_entry(session, merchant_id=merchant_id, idempotency_key=key) is not None:
        return 0
    now = clock.now()
    _lock(session, merchant_id, customer_id)
    uses = list(session.scalars(select(PointsLotUse).where(
        PointsLotUse.merchant_id == merchant_id, PointsLotUse.spend_key == spend_key).order_by(PointsLotUse.id.desc())))
    left = min(points, sum(u.amount - u.returned for u in uses))
    if left <= 0:
        return 0
    ledger.post(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id, delta=left,
                reason=reason, idempotency_key=key, ref_type=ref_type, ref_id=ref_id, note=note, actor=actor)
    given = left
    lots = {lot.id: lot for lot in session.scalars(select(PointsLot).where(
        PointsLot.id.in_([u.lot_id for u in uses])))}
    for use in uses:
        if left == 0:
            break
        n = min(left, use.amount - use.returned)
        if n <= 0:
            continue
        use.returned += n
        lot = lots[use.lot_id]
        if lot.expired_at is not None:
            lot.expired_at = None  # reopened; expired again below, with its own entry
        lot.remaining += n
        left -= n
    session.flush()
    _expire_due(session, merchant_id, customer_id, now)
    return given


def adjust(session: Session, *, actor: Principal, customer_id: int, delta: int, reason: str) -> int:
    """Staff add or take points with a reason (audited). Taking more than the member has: 409."""
    actor.require("membership.adjust")
    member = members_service.member_of(session, merchant_id=actor.merchant_id, customer_id=customer_id)
    if member is None:
        raise NotFound("This customer has no member card.", code="not_a_member")
    members_service.get_member(session, member.id, actor=actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(details={"fields": {"reason": _("Say why the points change.")}})
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > 10_000_000:
        raise ValidationFailed(details={"fields": {"delta": _("Enter a non-zero whole number of points.")}})
    # The audit row and the movement stand or fall together (a refused take leaves no audit row).
    with session.begin_nested():
        row = audit.record(session, actor=actor, action="membership.points_adjusted", target_type="customer",
                           target_id=customer_id, details={"delta": delta, "reason": reason[:200]})
        key = f"points:adjust:{row.id}"
        if delta > 0:
            earn(session, merchant_id=actor.merchant_id, customer_id=customer_id, points=delta, reason="adjust",
                 key=key, ref_type="audit", ref_id=row.id, note=reason[:200], actor=actor)
        else:
            spend(session, merchant_id=actor.merchant_id, customer_id=customer_id, points=-delta, reason="adjust",
                  key=key, ref_type="audit", ref_id=row.id, note=reason[:200], actor=actor)
    return balance(session, merchant_id=actor.merchant_id, customer_id=customer_id)


def history(session: Session, *, merchant_id: int, customer_id: int, cursor: str | None = None,
            limit: int | None = None) -> Page[Any]:
    return ledger.entries(session, merchant_id=merchant_id, kind=KIND, owner_type=OWNER, owner_id=customer_id,
                          cursor=cursor, limit=limit)


def expire_tick(session: Session, now: dt.datetime, *, limit: int = 500) -> int:
    """Expire every lot past its date (customer by customer, each under its account lock). Idempotent."""
    due = session.execute(
        select(PointsLot.merchant_id, PointsLot.customer_id).where(
            PointsLot.expired_at.is_(None), PointsLot.remaining > 0, PointsLot.expires_at.is_not(None),
            PointsLot.expires_at <= now).group_by(PointsLot.merchant_id, PointsLot.customer_id)
        .order_by(PointsLot.merchant_id, PointsLot.customer_id).limit(limit)).all()
    total = 0
    for merchant_id, customer_id in due:
        _lock(session, merchant_id, customer_id)
        total += _expire_due(session, merchant_id, customer_id, now)
    return total


def check_lots(session: Session, *, merchant_id: int, customer_id: int) -> tuple[int, int]:
    """(ledger balance, sum of open lots) — equal unless something is wrong."""
    lots = session.scalar(select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
        PointsLot.merchant_id == merchant_id, PointsLot.customer_id == customer_id, PointsLot.expired_at.is_(None)))
    return balance(session, merchant_id=merchant_id, customer_id=customer_id), int(lots or 0)


# ---------------------------------------------------------------- orders


def points_value_cents(points: int, points_per_yuan: int) -> int:
    return points * 100 // points_per_yuan


def points_for_cents(cents: int, points_per_yuan: int) -> int:
    return -(-cents * points_per_yuan // 100)


def order_points(session: Session, *, merchant_id: int, order_id: int, customer_id: int,
                 create: bool = True, lock: bool = False) -> OrderPoints | None:
    stmt = select(OrderPoints).where(OrderPoints.merchant_id == merchant_id, OrderPoints.order_id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None and create:
        row = OrderPoints(merchant_id=merchant_id, order_id=order_id, customer_id=customer_id)
        session.add(row)
        session.flush()
    return row


def spend_for_order(session: Session, *, merchant_id: int, customer_id: int, order_id: int, order_no: str,
                    points: int, cents: int, mall_item_id: int | None = None) -> None:
    """The checkout's commit step: take the points of the order (409 when they are gone)."""
    what = "mall" if mall_item_id else "points"
    spend(session, merchant_id=merchant_id, customer_id=customer_id, points=points, reason=f"order_{what}",
          key=f"order:{order_id}:{what}", ref_type="order", ref_id=order_id, note=order_no)
    row = order_points(session, merchant_id=merchant_id, order_id=order_id, customer_id=customer_id)
    assert row is not None
    row.spent_points += points
    row.spent_cents += cents
    if mall_item_id:
        row.mall_item_id = mall_item_id
    session.flush()


def _spend_keys(row: OrderPoints) -> list[str]:
    return [f"order:{row.order_id}:points", f"order:{row.order_id}:mall"]


def _return_spent(session: Session, row: OrderPoints, target: int, *, key: str, note: str) -> int:
    """Give back spent points until `target` of them are back (split over the order's spends)."""
    want = min(target, row.spent_points) - row.returned_points
    given = 0
    for i, spend_key in enumerate(_spend_keys(row)):
        if want - given <= 0:
            break
        given += give_back(session, merchant_id=row.merchant_id, customer_id=row.customer_id, spend_key=spend_key,
                           points=want - given, key=f"{key}:{i}", ref_type="order", ref_id=row.order_id, note=note)
    row.returned_points += given
    session.flush()
    return given


def on_order_cancelled(session: Session, *, merchant_id: int, order_id: int, customer_id: int) -> int:
    """An unpaid order cancelled or expired: every point it took comes back."""
    row = order_points(session, merchant_id=merchant_id, order_id=order_id, customer_id=customer_id, create=False,
                       lock=True)
    if row is None or row.spent_points == 0:
        return 0
    return _return_spent(session, row, row.spent_points, key=f"order:{order_id}:cancel_return", note="")


def on_order_completed(session: Session, *, merchant_id: int, order_id: int, customer_id: int, paid_cents: int,
                       multiplier_bps: int, member_id: int | None) -> tuple[int, int]:
    """Earn points and growth for the money paid (less what was refunded before completion):
    `points_per_yuan` × the tier multiplier, `growth_per_yuan`; a member's first completed order
    also earns the first-purchase bonus. Once per order. Returns (points, growth)."""
    from siyu.membership.service import tiers

    row = order_points(session, merchant_id=merchant_id, order_id=order_id, customer_id=customer_id, lock=True)
    assert row is not None
    if row.completed:
        return 0, 0
    row.completed = True
    r = members_service.rules(session, merchant_id)
    base = max(0, paid_cents - row.money_refunded_cents)
    row.earn_base_cents = base
    yuan = base // 100
    earned = yuan * r.points_per_yuan * multiplier_bps // 10_000
    growth = yuan * r.growth_per_yuan
    row.earned_points = earned
    row.growth_earned = growth
    row.money_refunded_cents = 0  # from here on: money refunded out of the base
    session.flush()
    earn(session, merchant_id=merchant_id, customer_id=customer_id, points=earned, reason="order_earn",
         key=f"order:{order_id}:earn", ref_type="order", ref_id=order_id, note="")
    member = tiers.member_by_id(session, member_id) if member_id else None
    if member is not None:
        tiers.add_growth(session, member, delta=growth, reason="order", key=f"order:{order_id}:growth",
                         ref_type="order", ref_id=order_id)
        first = session.scalar(select(func.count()).select_from(OrderPoints).where(
            OrderPoints.merchant_id == merchant_id, OrderPoints.customer_id == customer_id,
            OrderPoints.completed.is_(True), OrderPoints.order_id != order_id))
        if not first:
            earn(session, merchant_id=merchant_id, customer_id=customer_id, points=r.first_purchase_points,
                 reason="first_purchase", key=f"member:{member.id}:first_purchase", ref_type="order", ref_id=order_id,)
    return earned, growth


def on_order_refunded(session: Session, *, merchant_id: int, order_id: int, customer_id: int, refund_id: int,
                      money_cents: int, order_refunded_cents: int, order_total_cents: int, fully: bool) -> dict[str, int]:
    """A refund gives back the points spent on the refunded part (the order's cumulative refunded
    share of its total, so all refunds together return exactly what was spent) and takes back the
    points and growth earned by the refunded money (never below zero: what the member already
    spent stays spent)."""
    from siyu.membership.service import tiers

    result = {"returned": 0, "reversed": 0, "growth_reversed": 0}
    row = order_points(session, merchant_id=merchant_id, order_id=order_id, customer_id=customer_id, create=False,
                       lock=True)
    if row is None:
        if members_service.member_of(session, merchant_id=merchant_id, customer_id=customer_id) is None:
            return result  # no points spent, none to earn: nothing to keep for this order
        row = order_points(session, merchant_id=merchant_id, order_id=order_id, customer_id=customer_id)
        assert row is not None
    if row.spent_points:
        if fully or order_total_cents <= 0:
            target = row.spent_points
        else:
            target = row.spent_points * min(order_refunded_cents, order_total_cents) // order_total_cents
        result["returned"] = _return_spent(session, row, target, key=f"refund:{refund_id}:points_return",
                                           note="")
    row.money_refunded_cents += money_cents
    if row.completed and row.earn_base_cents > 0:
        share = min(row.money_refunded_cents, row.earn_base_cents)
        target_points = row.earned_points if fully else row.earned_points * share // row.earn_base_cents
        target_growth = row.growth_earned if fully else row.growth_earned * share // row.earn_base_cents
        take = target_points - row.reversed_points
        if take > 0:
            lot = session.scalars(select(PointsLot).where(PointsLot.merchant_id == merchant_id,
                                                          PointsLot.entry_key == f"order:{order_id}:earn")).first()
            _lock(session, merchant_id, customer_id)
            _expire_due(session, merchant_id, customer_id, clock.now())
            have = balance(session, merchant_id=merchant_id, customer_id=customer_id)
            take = min(take, have)
            if take > 0:
                spend(session, merchant_id=merchant_id, customer_id=customer_id, points=take, reason="refund_reverse",
                      key=f"refund:{refund_id}:points_reverse", ref_type="order", ref_id=order_id,
                      note="", first_lot_id=lot.id if lot else None)
            # What could not be taken (already spent) is written off: the target counts as reached.
            row.reversed_points = target_points
            result["reversed"] = take
        g = target_growth - row.growth_reversed
        if g > 0:
            member = members_service.member_of(session, merchant_id=merchant_id, customer_id=customer_id)
            if member is not None:
                tiers.add_growth(session, member, delta=-g, reason="refund", key=f"refund:{refund_id}:growth",
                                 ref_type="order", ref_id=order_id)
            row.growth_reversed = target_growth
            result["growth_reversed"] = g
    session.flush()
    return result


@dataclasses.dataclass(frozen=True)
class PointsSummary:
    balance: int
    available: int
    expiring_points: int
    expiring_at: dt.datetime | None
    value_cents: int

    @property
    def expiring_on(self) -> dt.date | None:
        """The last day the soonest-expiring points can be used (Shanghai)."""
        if self.expiring_at is None:
            return None
        return (clock.local(self.expiring_at) - dt.timedelta(seconds=1)).date()  # type: ignore[operator]


def summary(session: Session, *, merchant_id: int, customer_id: int) -> PointsSummary:
    r = members_service.rules(session, merchant_id)
    avail = available(session, merchant_id=merchant_id, customer_id=customer_id)
    soon, when = expiring_soon(session, merchant_id=merchant_id, customer_id=customer_id)
    return PointsSummary(balance=balance(session, merchant_id=merchant_id, customer_id=customer_id), available=avail,
                         expiring_points=soon, expiring_at=when,
                         value_cents=points_value_cents(avail, r.redeem_points_per_yuan))


def move_lots(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> int:
    """Move a merged customer's open points to the customer they were merged into, lot by lot with
    the same expiry (idempotent by lot). Returns the points moved."""
    now = clock.now()
    _lock(session, merchant_id, source_id)
    _expire_due(session, merchant_id, source_id, now)
    moved = 0
    for lot in list(session.scalars(_open_lots(merchant_id, source_id).order_by(PointsLot.id))):
        n = lot.remaining
        spend(session, merchant_id=merchant_id, customer_id=source_id, points=n, reason="merge_out",
              key=f"points:lot:{lot.id}:merge_out", ref_type="customer", ref_id=target_id, first_lot_id=lot.id)
        earn(session, merchant_id=merchant_id, customer_id=target_id, points=n, reason="merge_in",
             key=f"points:lot:{lot.id}:merge_in", ref_type="customer", ref_id=source_id, expires_at=lot.expires_at)
        moved += n
    return moved
