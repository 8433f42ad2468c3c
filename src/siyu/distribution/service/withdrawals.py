"""Withdrawals: a distributor takes settled commission out; staff approve (then the payout provider
pays) or reject with a reason; a failed payout returns the money. Every step is a ledger move."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import audit, clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.money import format_cents
from siyu.core.pagination import Page, paginate
from siyu.customers import service as customers
from siyu.distribution.models import Distributor, Withdrawal
from siyu.distribution.service import accounts, payouts
from siyu.distribution.service.distributors import get_distributor, require_own
from siyu.distribution.service.programme import get_programme
from siyu.distribution.states import WITHDRAWAL_MACHINE, DistributorStatus, WithdrawalStatus
from siyu.merchants import service as merchants

W = WithdrawalStatus
COUNTED = (W.REQUESTED.value, W.PAYING.value, W.PAID.value)
OWNER = "distributor"


class BelowMinimum(ValidationFailed):
    code = "below_minimum"
    message = "The least you can withdraw is {minimum}."


class DailyLimitReached(Conflict):
    code = "daily_limit_reached"
    message = "This is more than you can withdraw today (left today: {left})."


class InsufficientWithdrawable(Conflict):
    code = "insufficient_balance"
    message = "You cannot withdraw more than your withdrawable balance."


def withdrawn_today(session: Session, *, merchant_id: int, distributor_id: int, day: dt.date) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Withdrawal.amount_cents), 0)).where(
        Withdrawal.merchant_id == merchant_id, Withdrawal.distributor_id == distributor_id,
        Withdrawal.requested_on == day, Withdrawal.status.in_(COUNTED))) or 0)


def request_withdrawal(session: Session, *, actor: Principal, amount_cents: int) -> Withdrawal:
    """At least the minimum, within today's limit, never more than the withdrawable balance. The
    distributor's row is locked first, so two requests at once are decided one after the other, and the
    balance itself moves by a conditional update that cannot go below zero."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or not 0 < amount_cents <= 10**11:
        raise ValidationFailed("Enter an amount.", code="invalid_amount")
    row = require_own(session, actor=actor, lock=True)
    if row.status not in (DistributorStatus.ACTIVE, DistributorStatus.REMOVED):
        raise Conflict("Your distributor account cannot withdraw now.", code="distributor_not_active",
                       details={"status": row.status})
    programme = get_programme(session, merchant_id=actor.merchant_id)
    if amount_cents < programme.min_withdrawal_cents:
        raise BelowMinimum(details={"minimum_cents": programme.min_withdrawal_cents},
                           minimum=format_cents(programme.min_withdrawal_cents))
    today = clock.today_local()
    used = withdrawn_today(session, merchant_id=actor.merchant_id, distributor_id=row.id, day=today)
    left = max(0, programme.daily_withdrawal_limit_cents - used)
    if amount_cents > left:
        raise DailyLimitReached(details={"left_today_cents": left}, left=format_cents(left))
    now = clock.now()
    try:
        with session.begin_nested():
            w = Withdrawal(merchant_id=actor.merchant_id, distributor_id=row.id, amount_cents=amount_cents,
                           status=W.REQUESTED.value, method=programme.payout_method, requested_on=today,
                           created_at=now)
            session.add(w)
            session.flush()
            accounts.move(session, merchant_id=actor.merchant_id, owner_type=OWNER, owner_id=row.id,
                          source=accounts.SETTLED, target=accounts.WITHDRAWING, amount=amount_cents,
                          reason="withdrawal_requested", key=f"withdrawal:{w.id}:request", ref_type="withdrawal",
                          ref_id=w.id, actor=actor)
    except Conflict as exc:
        if exc.code == "insufficient_balance":
            raise InsufficientWithdrawable(details=exc.details) from None
        raise
    return w


def get_withdrawal(session: Session, *, merchant_id: int, withdrawal_id: int, lock: bool = False) -> Withdrawal:
    if isinstance(withdrawal_id, bool) or not isinstance(withdrawal_id, int) or not 0 < withdrawal_id <= 2**53:
        raise NotFound()
    stmt = select(Withdrawal).where(Withdrawal.id == withdrawal_id, Withdrawal.merchant_id == merchant_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    w = session.scalars(stmt).first()
    if w is None:
        raise NotFound()
    return w


def _move(w: Withdrawal, new: W) -> None:
    WITHDRAWAL_MACHINE.check(w.status, new)
    w.status = new.value


def _give_back(session: Session, w: Withdrawal, *, step: str, actor: Principal | None) -> None:
    accounts.move(session, merchant_id=w.merchant_id, owner_type=OWNER, owner_id=w.distributor_id,
                  source=accounts.WITHDRAWING, target=accounts.SETTLED, amount=w.amount_cents,
                  reason=f"withdrawal_{step}", key=f"withdrawal:{w.id}:{step}", ref_type="withdrawal", ref_id=w.id,
                  actor=actor)


def _payout_request(session: Session, w: Withdrawal) -> payouts.PayoutRequest:
    merchant = merchants.get_merchant(session, w.merchant_id)
    distributor = session.get(Distributor, w.distributor_id)
    openid = None
    if distributor is not None:
        customer = customers.get_customer(session, distributor.customer_id, actor=system_principal(w.merchant_id))
        openid = next((i.value for i in customers.identities(session, customer=customer) if i.kind == "openid"), None)
    return payouts.PayoutRequest(withdrawal_id=w.id, amount_cents=w.amount_cents, merchant=merchant, openid=openid)


def _apply(session: Session, w: Withdrawal, result: payouts.PayoutResult, *, actor: Principal | None) -> None:
    if result.provider_ref:
        w.provider_ref = result.provider_ref[:64]
    if result.status == "paid":
        _move(w, W.PAID)
        w.paid_at = clock.now()
        accounts.move(session, merchant_id=w.merchant_id, owner_type=OWNER, owner_id=w.distributor_id,
                      source=accounts.WITHDRAWING, target=accounts.WITHDRAWN, amount=w.amount_cents,
                      reason="withdrawal_paid", key=f"withdrawal:{w.id}:paid", ref_type="withdrawal", ref_id=w.id,
                      actor=actor)
    elif result.status == "failed":
        _move(w, W.FAILED)
        w.reason = result.error[:200]
        _give_back(session, w, step="failed", actor=actor)
    elif w.status != W.PAYING:
        _move(w, W.PAYING)
    session.flush()


def approve(session: Session, *, actor: Principal, withdrawal_id: int) -> Withdrawal:
    """Approve a request and pay it out through the programme's payout method."""
    actor.require("merchant.manage")
    w = get_withdrawal(session, merchant_id=actor.merchant_id, withdrawal_id=withdrawal_id, lock=True)
    WITHDRAWAL_MACHINE.check(w.status, W.PAYING)
    w.reviewed_by, w.reviewed_at = actor.staff_id, clock.now()
    provider = payouts.get(w.method)
    if provider is None:
        raise Conflict("This payout method is not available.", code="payout_unavailable")
    _apply(session, w, provider.pay(_payout_request(session, w)), actor=actor)
    audit.record(session, actor=actor, action="distribution.withdrawal_approve", target_type="withdrawal",
                 target_id=w.id, details={"amount_cents": w.amount_cents, "status": w.status})
    return w


def reject(session: Session, *, actor: Principal, withdrawal_id: int, reason: str) -> Withdrawal:
    """Turn a request down with a reason; the money goes back to the withdrawable balance."""
    actor.require("merchant.manage")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason.", code="reason_required", details={"fields": {"reason": "required"}})
    w = get_withdrawal(session, merchant_id=actor.merchant_id, withdrawal_id=withdrawal_id, lock=True)
    _move(w, W.REJECTED)
    w.reason = reason[:200]
    w.reviewed_by, w.reviewed_at = actor.staff_id, clock.now()
    _give_back(session, w, step="rejected", actor=actor)
    audit.record(session, actor=actor, action="distribution.withdrawal_reject", target_type="withdrawal",
                 target_id=w.id, details={"reason": w.reason})
    session.flush()
    return w


def poll_payouts(session: Session, now: dt.datetime, *, limit: int = 100) -> int:
    """Ask the provider about payouts still `paying` (the jobs tick)."""
    ids = list(session.scalars(select(Withdrawal.id).where(Withdrawal.status == W.PAYING.value)
                               .order_by(Withdrawal.id).limit(limit)))
    done = 0
    for wid in ids:
        w = session.scalars(select(Withdrawal).where(Withdrawal.id == wid, Withdrawal.status == W.PAYING.value)
                            .with_for_update().execution_options(populate_existing=True)).first()
        provider = payouts.get(w.method) if w is not None else None
        if w is None or provider is None:
            continue
        _apply(session, w, provider.query(_payout_request(session, w)), actor=None)
        done += w.status != W.PAYING
    return done


@dataclasses.dataclass
class WithdrawalFilter:
    status: str | None = None
    distributor_id: int | None = None


def list_withdrawals(session: Session, *, merchant_id: int, filters: WithdrawalFilter | None = None,
                     cursor: str | None = None, limit: int | None = None) -> Page[Withdrawal]:
    f = filters or WithdrawalFilter()
    stmt = select(Withdrawal).where(Withdrawal.merchant_id == merchant_id)
    if f.status:
        stmt = stmt.where(Withdrawal.status == f.status)
    if f.distributor_id:
        stmt = stmt.where(Withdrawal.distributor_id == f.distributor_id)
    return paginate(session, stmt, Withdrawal.id, cursor=cursor, limit=limit)


def waiting_count(session: Session, *, merchant_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Withdrawal).where(
        Withdrawal.merchant_id == merchant_id, Withdrawal.status == W.REQUESTED.value)) or 0)


def of_distributor_for_staff(session: Session, *, actor: Principal, distributor_id: int) -> Distributor:
    return get_distributor(session, merchant_id=actor.merchant_id, distributor_id=distributor_id)
