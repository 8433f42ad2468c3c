"""Stored value (储值): recharge plans, recharges, paying with the balance, refunds and adjustments.

Money rules (also in the README):

- Two ledger accounts per customer: **principal** (`stored_value`: money the customer paid in) and
  **bonus** (`stored_value_bonus`: what a plan gave on top, 充500送50). Each is a ledger account whose
  balance changes with an append-only entry by a conditional UPDATE that cannot go negative, so the
  two are never mixed up and never below zero.
- **Recharge**: a plan is bought as a service order (kind "recharge", the normal checkout and
  payment); when the order is paid the principal and the bonus are credited, once (keyed by the
  recharge). A recharge cannot be paid with stored value.
- **Spending** takes principal and bonus **in proportion to the two balances at that moment**
  (largest remainder, ties to the principal), so the bonus is used up at the same rate as the money
  behind it. Either at checkout (`use_balance`: a payment part of the order, up to the balance, the
  rest paid by another method) or as the whole payment (`POST /orders/{id}/pay {method: balance}`).
- **Giving back**: an unpaid order that is cancelled or expires gets its payment part back in full;
  a refund of a balance-paid order goes back to principal and bonus in the shares that were taken
  (cumulative largest remainder, so all refunds of one order add up exactly to what was taken).
- **Refunding a recharge** (staff): only while it is unused, i.e. the principal balance still holds
  the recharge's whole principal. The principal goes back as money through the provider that took
  it and leaves the principal balance; the bonus that came with it is forfeited: taken from the
  bonus balance, at most what is left of it. Bonus is never paid out as money.
- **Adjustments** by staff (`membership.stored_value`) name the account, the amount and a reason,
  and are written to the audit log.
- **Customer merge**: the merged-away customer's principal and bonus move to the target, per account.
- Stored value does not expire.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core import audit, clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied, field_error
from siyu.core.i18n import gettext as _
from siyu.core.money import format_cents, split_largest_remainder
from siyu.core.pagination import Page, encode_cursor
from siyu.customers import service as customers
from siyu.ledger import service as ledger
from siyu.ledger.service import InsufficientBalance
from siyu.membership.models.stored_value import BalanceUse, Recharge, RechargePlan
from siyu.orders import pricing
from siyu.orders import service as orders
from siyu.payments import service as payments
from siyu.payments.service import register_balance_provider

PRINCIPAL = "stored_value"
BONUS = "stored_value_bonus"
OWNER = "customer"
ACCOUNTS = {"principal": PRINCIPAL, "bonus": BONUS}
ORDER_KIND = "recharge"
PART_KIND = "stored_value"
CONTRIBUTOR = "membership.stored_value"
MAX_CENTS = 2**31 - 1
PERMISSION = "membership.stored_value"

__all__ = [
    "BONUS", "PRINCIPAL", "Balance", "InsufficientBalance", "adjust", "balance_of", "balances_of", "cancel_recharge",
    "create_plan", "credit_recharge", "entries_of", "get_plan", "get_recharge", "install", "list_plans",
    "list_recharges", "move_customer", "refund_order_part", "refund_recharge", "return_order_part", "spend", "start_recharge",
    "summary", "update_plan", "uses_of_order",
]


@dataclasses.dataclass(frozen=True)
class Balance:
    principal_cents: int
    bonus_cents: int

    @property
    def total_cents(self) -> int:
        return self.principal_cents + self.bonus_cents

    def as_dict(self) -> dict[str, int]:
        return {"principal_cents": self.principal_cents, "bonus_cents": self.bonus_cents,
                "total_cents": self.total_cents}


def _cents(value: Any, field: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_CENTS:
        raise field_error(field, "Enter an amount between ¥0.01 and ¥21,474,836.47.")
    return value


# ==================================================================== balances


def balances_of(session: Session, *, merchant_id: int, customer_ids: list[int]) -> dict[int, Balance]:
    """Principal and bonus of many customers in two queries (0 without an account)."""
    principal = ledger.balances(session, merchant_id=merchant_id, kind=PRINCIPAL, owner_type=OWNER, owner_ids=customer_ids)
    bonus = ledger.balances(session, merchant_id=merchant_id, kind=BONUS, owner_type=OWNER, owner_ids=customer_ids)
    return {cid: Balance(principal.get(cid, 0), bonus.get(cid, 0)) for cid in customer_ids}


def balance_of(session: Session, *, merchant_id: int, customer_id: int) -> Balance:
    return balances_of(session, merchant_id=merchant_id, customer_ids=[customer_id])[customer_id]


def summary(session: Session, *, merchant_id: int, customer_id: int) -> dict[str, Any]:
    """What `membership/_stored_value_summary.html` shows: the balances and the customer's id."""
    return {"customer_id": customer_id, **balance_of(session, merchant_id=merchant_id, customer_id=customer_id).as_dict()}


def entries_of(session: Session, *, merchant_id: int, customer_id: int, cursor: str | None = None,
               limit: int = 50) -> Page[dict[str, Any]]:
    """Both accounts' entries merged, newest first (entry ids are one sequence, so one cursor
    pages both): `{id, account, delta_cents, balance_after_cents, reason, note, ref_type, ref_id, created_at}`."""
    limit = max(1, min(limit, 200))
    merged: list[dict[str, Any]] = []
    more = False
    for name, kind in ACCOUNTS.items():
        page = ledger.entries(session, merchant_id=merchant_id, kind=kind, owner_type=OWNER, owner_id=customer_id,
                              cursor=cursor, limit=limit)
        more = more or page.next_cursor is not None
        merged += [{"id": e.id, "account": name, "delta_cents": e.delta, "balance_after_cents": e.balance_after,
                    "reason": e.reason, "note": e.note, "ref_type": e.ref_type, "ref_id": e.ref_id,
                    "actor_type": e.actor_type, "actor_id": e.actor_id, "created_at": e.created_at}
                   for e in page.items]
    merged.sort(key=lambda e: e["id"], reverse=True)
    items = merged[:limit]
    next_cursor = encode_cursor(items[-1]["id"]) if items and (more or len(merged) > limit) else None
    return Page(items=items, next_cursor=next_cursor)


def _lock_both(session: Session, merchant_id: int, customer_id: int) -> Balance:
    """Lock the customer's two accounts (opened if missing) in id order; their balances now."""
    accounts = {kind: ledger.account(session, merchant_id=merchant_id, kind=kind, owner_type=OWNER, owner_id=customer_id)
                for kind in (PRINCIPAL, BONUS)}
    locked: dict[str, int] = {}
    for kind in sorted(accounts, key=lambda k: accounts[k].id):  # type: ignore[union-attr]
        locked[kind] = ledger.lock_account(session, merchant_id=merchant_id, kind=kind, owner_type=OWNER,
                                           owner_id=customer_id).balance
    return Balance(locked[PRINCIPAL], locked[BONUS])


def _post(session: Session, *, merchant_id: int, customer_id: int, kind: str, delta: int, reason: str, key: str,
          note: str = "", ref_type: str | None = None, ref_id: int | None = None,
          actor: Principal | None = None) -> None:
    if delta:
        ledger.post(session, merchant_id=merchant_id, kind=kind, owner_type=OWNER, owner_id=customer_id, delta=delta,
                    reason=reason, idempotency_key=key, note=note, ref_type=ref_type, ref_id=ref_id, actor=actor)


# ==================================================================== recharge plans


def _require(actor: Principal) -> None:
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()
    actor.require(PERMISSION)


def list_plans(session: Session, *, merchant_id: int, active_only: bool = False) -> list[RechargePlan]:
    stmt = select(RechargePlan).where(RechargePlan.merchant_id == merchant_id)
    if active_only:
        stmt = stmt.where(RechargePlan.active.is_(True))
    return list(session.scalars(stmt.order_by(RechargePlan.sort, RechargePlan.price_cents, RechargePlan.id)))


def get_plan(session: Session, plan_id: int, *, merchant_id: int, lock: bool = False) -> RechargePlan:
    if not isinstance(plan_id, int) or not 0 < plan_id <= 2**53:
        raise NotFound()
    stmt = select(RechargePlan).where(RechargePlan.merchant_id == merchant_id, RechargePlan.id == plan_id)
    if lock:
        stmt = stmt.with_for_update()
    plan = session.scalars(stmt).first()
    if plan is None:
        raise NotFound()
    return plan


def _plan_name(name: Any) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 60:
        raise field_error("name", "Give the plan a name of 1–60 characters.")
    return name


def create_plan(session: Session, *, actor: Principal, name: str, price_cents: int, bonus_cents: int = 0,
                active: bool = True, sort: int = 0) -> RechargePlan:
    """A recharge plan: pay `price_cents`, get `bonus_cents` on top (brand only)."""
    _require(actor)
    plan = RechargePlan(merchant_id=actor.merchant_id, name=_plan_name(name), price_cents=_cents(price_cents, "price_cents"),
                        bonus_cents=_cents(bonus_cents, "bonus_cents", allow_zero=True), active=bool(active),
                        sort=int(sort), created_at=clock.now(), updated_at=clock.now())
    session.add(plan)
    session.flush()
    audit.record(session, actor=actor, action="stored_value.plan_create", target_type="recharge_plan",
                 target_id=plan.id, details={"price_cents": plan.price_cents, "bonus_cents": plan.bonus_cents})
    return plan


def update_plan(session: Session, plan_id: int, *, actor: Principal, name: str | None = None,
                price_cents: int | None = None, bonus_cents: int | None = None, active: bool | None = None,
                sort: int | None = None) -> RechargePlan:
    """Edit or disable a plan. Recharges already bought keep the amounts they were bought with."""
    _require(actor)
    plan = get_plan(session, plan_id, merchant_id=actor.merchant_id, lock=True)
    before = {"name": plan.name, "price_cents": plan.price_cents, "bonus_cents": plan.bonus_cents, "active": plan.active}
    if name is not None:
        plan.name = _plan_name(name)
    if price_cents is not None:
        plan.price_cents = _cents(price_cents, "price_cents")
    if bonus_cents is not None:
        plan.bonus_cents = _cents(bonus_cents, "bonus_cents", allow_zero=True)
    if active is not None:
        plan.active = bool(active)
    if sort is not None:
        plan.sort = int(sort)
    plan.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="stored_value.plan_update", target_type="recharge_plan",
                 target_id=plan.id, details={"before": before, "after": {
                     "name": plan.name, "price_cents": plan.price_cents, "bonus_cents": plan.bonus_cents,
                     "active": plan.active}})
    return plan


# ==================================================================== recharges


def start_recharge(session: Session, *, actor: Principal, plan_id: int) -> Recharge:
    """The customer buys a plan: a pending recharge and its service order (kind "recharge"), paid
    through the normal payment flow; credited on order.paid."""
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    try:
        plan = get_plan(session, plan_id, merchant_id=actor.merchant_id)
    except NotFound as exc:
        raise field_error("plan_id", "Choose one of the recharge plans.") from exc
    if not plan.active:
        raise Conflict("This recharge plan is no longer offered.", code="plan_inactive")
    recharge = Recharge(merchant_id=actor.merchant_id, customer_id=actor.customer_id, plan_id=plan.id,
                        plan_name=plan.name, principal_cents=plan.price_cents, bonus_cents=plan.bonus_cents,
                        status="pending", created_at=clock.now())
    session.add(recharge)
    session.flush()
    order = orders.create_service_order(session, actor=actor, kind=ORDER_KIND, title=plan.name,
                                        amount_cents=plan.price_cents, ref_type="stored_value_recharge",
                                        ref_id=recharge.id, details={"plan_id": plan.id, "bonus_cents": plan.bonus_cents})
    recharge.order_id = order.id
    session.flush()
    return recharge


def _recharge_by_order(session: Session, *, merchant_id: int, order_id: int, lock: bool = False) -> Recharge | None:
    stmt = select(Recharge).where(Recharge.merchant_id == merchant_id, Recharge.order_id == order_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def get_recharge(session: Session, recharge_id: int, *, actor: Principal, lock: bool = False) -> Recharge:
    """A recharge of the merchant (a customer: only their own; staff: customers in their scope)."""
    if not isinstance(recharge_id, int) or not 0 < recharge_id <= 2**53:
        raise NotFound()
    stmt = select(Recharge).where(Recharge.merchant_id == actor.merchant_id, Recharge.id == recharge_id)
    if actor.kind == "customer":
        stmt = stmt.where(Recharge.customer_id == actor.customer_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound()
    if actor.kind == "staff":
        customers.get_customer(session, row.customer_id, actor=actor)
    return row


def list_recharges(session: Session, *, merchant_id: int, customer_id: int | None = None,
                   limit: int = 50) -> list[Recharge]:
    stmt = select(Recharge).where(Recharge.merchant_id == merchant_id)
    if customer_id is not None:
        stmt = stmt.where(Recharge.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(Recharge.id.desc()).limit(max(1, min(limit, 200)))))


def credit_recharge(session: Session, *, merchant_id: int, order_id: int) -> str:
    """order.paid of a recharge order: credit principal and bonus once. "credited", "already" or "unknown"."""
    recharge = _recharge_by_order(session, merchant_id=merchant_id, order_id=order_id, lock=True)
    if recharge is None:
        return "unknown"
    if recharge.status != "pending":
        return "already"
    note = recharge.plan_name
    _post(session, merchant_id=merchant_id, customer_id=recharge.customer_id, kind=PRINCIPAL,
          delta=recharge.principal_cents, reason="recharge", key=f"sv:recharge:{recharge.id}:principal", note=note,
          ref_type="order", ref_id=order_id)
    _post(session, merchant_id=merchant_id, customer_id=recharge.customer_id, kind=BONUS, delta=recharge.bonus_cents,
          reason="recharge_bonus", key=f"sv:recharge:{recharge.id}:bonus", note=note, ref_type="order", ref_id=order_id)
    recharge.status = "credited"
    recharge.credited_at = clock.now()
    session.flush()
    return "credited"


def cancel_recharge(session: Session, *, merchant_id: int, order_id: int) -> str:
    """order.cancelled of a recharge order (never paid): the recharge is cancelled."""
    recharge = _recharge_by_order(session, merchant_id=merchant_id, order_id=order_id, lock=True)
    if recharge is None:
        return "unknown"
    if recharge.status != "pending":
        return "already"
    recharge.status = "cancelled"
    recharge.cancelled_at = clock.now()
    session.flush()
    return "cancelled"


def refund_recharge(session: Session, recharge_id: int, *, actor: Principal, reason: str) -> Recharge:
    """Refund an unused recharge (the rule in the module docstring): the principal balance must
    still hold its whole principal (409 `recharge_used` otherwise, nothing moves); the principal
    leaves the balance and goes back as money; the bonus is forfeited, at most what is left."""
    _require(actor)
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", "Say why the recharge is refunded.")
    recharge = get_recharge(session, recharge_id, actor=actor, lock=True)
    if recharge.status != "credited" or recharge.order_id is None:
        raise Conflict("Only a credited recharge can be refunded.", code="recharge_not_refundable",
                       details={"status": recharge.status})
    balance = _lock_both(session, recharge.merchant_id, recharge.customer_id)
    if balance.principal_cents < recharge.principal_cents:
        raise Conflict("This recharge has been (partly) spent and can no longer be refunded.", code="recharge_used",
                       details={"principal_cents": balance.principal_cents,
                                "recharge_principal_cents": recharge.principal_cents})
    forfeit = min(balance.bonus_cents, recharge.bonus_cents)
    note = reason[:200]
    _post(session, merchant_id=recharge.merchant_id, customer_id=recharge.customer_id, kind=PRINCIPAL,
          delta=-recharge.principal_cents, reason="recharge_refund", key=f"sv:recharge:{recharge.id}:refund:principal",
          note=note, ref_type="order", ref_id=recharge.order_id, actor=actor)
    _post(session, merchant_id=recharge.merchant_id, customer_id=recharge.customer_id, kind=BONUS, delta=-forfeit,
          reason="bonus_forfeit", key=f"sv:recharge:{recharge.id}:refund:bonus", note=note, ref_type="order",
          ref_id=recharge.order_id, actor=actor)
    recharge.status = "refunded"
    recharge.forfeited_bonus_cents = forfeit
    recharge.refund_reason = note
    recharge.refunded_at = clock.now()
    session.flush()
    orders.refund_service_order(session, recharge.order_id, actor=actor, reason=note)
    audit.record(session, actor=actor, action="stored_value.recharge_refund", target_type="customer",
                 target_id=recharge.customer_id, details={"recharge_id": recharge.id, "order_id": recharge.order_id,
                                                          "principal_cents": recharge.principal_cents,
                                                          "forfeited_bonus_cents": forfeit, "reason": note})
    return recharge


# ==================================================================== spending and giving back


def _use(session: Session, *, merchant_id: int, source: str, source_id: int, lock: bool = False) -> BalanceUse | None:
    stmt = select(BalanceUse).where(BalanceUse.merchant_id == merchant_id, BalanceUse.source == source,
                                    BalanceUse.source_id == source_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def uses_of_order(session: Session, *, merchant_id: int, order_id: int) -> list[BalanceUse]:
    return list(session.scalars(select(BalanceUse).where(BalanceUse.merchant_id == merchant_id,
                                                         BalanceUse.order_id == order_id).order_by(BalanceUse.id)))


def spend(session: Session, *, merchant_id: int, customer_id: int, amount_cents: int, source: str, source_id: int,
          order_id: int, note: str = "", actor: Principal | None = None) -> BalanceUse:
    """Take `amount_cents` of stored value, principal and bonus in proportion to their balances
    (largest remainder, ties to the principal), both accounts locked in id order. Idempotent by
    (source, source_id); 409 `insufficient_balance` when the two together are short (nothing moves)."""
    _cents(amount_cents, "amount_cents")
    existing = _use(session, merchant_id=merchant_id, source=source, source_id=source_id)
    if existing is not None:
        if existing.amount_cents != amount_cents or existing.customer_id != customer_id:
            raise Conflict("This balance use was recorded with another amount.", code="idempotency_key_reused")
        return existing
    balance = _lock_both(session, merchant_id, customer_id)
    if balance.total_cents < amount_cents:
        raise InsufficientBalance(details={"balance_cents": balance.total_cents, "requested_cents": amount_cents})
    principal, bonus = split_largest_remainder(amount_cents, [balance.principal_cents, balance.bonus_cents])
    key = f"sv:{source}:{source_id}:spend"
    _post(session, merchant_id=merchant_id, customer_id=customer_id, kind=PRINCIPAL, delta=-principal, reason="spend",
          key=f"{key}:principal", note=note, ref_type="order", ref_id=order_id, actor=actor)
    _post(session, merchant_id=merchant_id, customer_id=customer_id, kind=BONUS, delta=-bonus, reason="spend",
          key=f"{key}:bonus", note=note, ref_type="order", ref_id=order_id, actor=actor)
    use = BalanceUse(merchant_id=merchant_id, customer_id=customer_id, source=source, source_id=source_id,
                     order_id=order_id, amount_cents=amount_cents, principal_cents=principal, bonus_cents=bonus,
                     returned_principal_cents=0, returned_bonus_cents=0, parts_refunded_cents=0, refund_refs=[],
                     created_at=clock.now())
    session.add(use)
    session.flush()
    return use


def _give_back(session: Session, use: BalanceUse, amount_cents: int, *, ref: str, reason: str, note: str = "") -> tuple[int, int]:
    """Return `amount_cents` of a use, cumulatively in the shares it was taken (largest remainder
    over everything returned so far, so the returns of one use add up to exactly what was taken)."""
    returned = use.returned_principal_cents + use.returned_bonus_cents
    amount_cents = min(amount_cents, use.amount_cents - returned)
    if amount_cents <= 0:
        return 0, 0
    target_principal = split_largest_remainder(returned + amount_cents, [use.principal_cents, use.bonus_cents])[0] \
        if use.amount_cents else 0
    principal = max(0, min(target_principal - use.returned_principal_cents, amount_cents,
                           use.principal_cents - use.returned_principal_cents))
    bonus = amount_cents - principal
    if bonus > use.bonus_cents - use.returned_bonus_cents:  # never (two parts: the split is monotone)
        bonus = use.bonus_cents - use.returned_bonus_cents
        principal = amount_cents - bonus
    key = f"sv:{use.source}:{use.source_id}:{ref}"
    _post(session, merchant_id=use.merchant_id, customer_id=use.customer_id, kind=PRINCIPAL, delta=principal,
          reason=reason, key=f"{key}:principal", note=note, ref_type="order", ref_id=use.order_id)
    _post(session, merchant_id=use.merchant_id, customer_id=use.customer_id, kind=BONUS, delta=bonus, reason=reason,
          key=f"{key}:bonus", note=note, ref_type="order", ref_id=use.order_id)
    use.returned_principal_cents += principal
    use.returned_bonus_cents += bonus
    session.flush()
    return principal, bonus


def return_order_part(session: Session, *, merchant_id: int, order_id: int) -> int:
    """order.cancelled (unpaid order cancelled or expired): its stored-value payment part comes
    back in full. Idempotent; returns the cents given back now."""
    use = _use(session, merchant_id=merchant_id, source="order", source_id=order_id, lock=True)
    if use is None:
        return 0
    left = use.amount_cents - use.returned_principal_cents - use.returned_bonus_cents
    if left <= 0:
        return 0
    p, b = _give_back(session, use, left, ref="cancel", reason="order_cancelled")
    return p + b


def refund_order_part(session: Session, *, merchant_id: int, order_id: int, refund_id: int, parts_cents: int,
                      fully_refunded: bool) -> int:
    """order.refunded: this refund's share of the payment parts that is stored value (the order's
    other parts, e.g. points, keep theirs) goes back in the shares taken. Cumulative over the
    order's refunds; the last refund returns all that is left. Applied once per refund."""
    use = _use(session, merchant_id=merchant_id, source="order", source_id=order_id, lock=True)
    if use is None or refund_id in (use.refund_refs or []):
        return 0
    order = orders.get_order(session, order_id, actor=system_principal(merchant_id))
    parts_total = sum(int(p.get("amount_cents", 0)) for p in (order.payment_parts or []))
    ours = use.amount_cents
    seen = use.parts_refunded_cents + max(0, parts_cents)
    if fully_refunded or seen >= parts_total or parts_total <= ours:
        target = ours if fully_refunded or seen >= parts_total else min(ours, seen)
    else:
        target = split_largest_remainder(seen, [ours, parts_total - ours])[0]
    already = use.returned_principal_cents + use.returned_bonus_cents
    use.parts_refunded_cents = seen
    use.refund_refs = [*(use.refund_refs or []), refund_id]
    p, b = _give_back(session, use, max(0, target - already), ref=f"refund:{refund_id}", reason="refund")
    session.flush()
    return p + b


# ==================================================================== adjustments


def adjust(session: Session, *, actor: Principal, customer_id: int, account: str, delta_cents: int, reason: str,
           idempotency_key: str | None = None) -> dict[str, Any]:
    """A staff correction of one account (principal or bonus) with a reason, audited. A debit
    beyond the balance is 409 `insufficient_balance` and nothing moves."""
    _require(actor)
    customer = customers.get_customer(session, customer_id, actor=actor)
    if account not in ACCOUNTS:
        raise field_error("account", "Choose the principal or the bonus account.")
    if not isinstance(delta_cents, int) or isinstance(delta_cents, bool) or delta_cents == 0 \
            or abs(delta_cents) > MAX_CENTS:
        raise field_error("delta_cents", "Enter a non-zero amount.")
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 200:
        raise field_error("reason", "Say why the balance is adjusted (1–200 characters).")
    key = f"sv:adjust:{idempotency_key}" if idempotency_key else f"sv:adjust:{secrets.token_hex(12)}"
    entry = ledger.post(session, merchant_id=actor.merchant_id, kind=ACCOUNTS[account], owner_type=OWNER,
                        owner_id=customer.id, delta=delta_cents, reason="adjustment", idempotency_key=key[:200],
                        note=reason, ref_type="customer", ref_id=customer.id, actor=actor)
    audit.record(session, actor=actor, action="stored_value.adjust", target_type="customer", target_id=customer.id,
                 details={"account": account, "delta_cents": delta_cents, "reason": reason, "entry_id": entry.id,
                          "balance_after_cents": entry.balance_after})
    return {"entry_id": entry.id, "account": account, "delta_cents": delta_cents,
            "balance_after_cents": entry.balance_after, **balance_of(session, merchant_id=actor.merchant_id,
                                                                     customer_id=customer.id).as_dict()}


# ==================================================================== customer merge


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> Balance:
    """customer.merged: the source's stored value moves to the target, per account (an entry out of
    the source and one into the target, keyed by the merge, so a replay moves nothing more), and
    its recharges and balance uses follow. Returns what moved."""
    if source_id == target_id:
        return Balance(0, 0)
    if all(ledger.account(session, merchant_id=merchant_id, kind=kind, owner_type=OWNER, owner_id=source_id,
                          create=False) is None for kind in (PRINCIPAL, BONUS)):
        return Balance(0, 0)  # the source never had stored value
    for customer_id in sorted((source_id, target_id)):  # the two customers' accounts, in one order
        _lock_both(session, merchant_id, customer_id)
    moved = balance_of(session, merchant_id=merchant_id, customer_id=source_id)
    for name, kind in ACCOUNTS.items():
        key = f"sv:merge:{source_id}:{target_id}:{name}"
        if ledger.find_entry(session, merchant_id=merchant_id, idempotency_key=f"{key}:out") is not None:
            continue
        amount = moved.principal_cents if kind == PRINCIPAL else moved.bonus_cents
        note = f"merged customer {source_id} -> {target_id}"
        _post(session, merchant_id=merchant_id, customer_id=source_id, kind=kind, delta=-amount, reason="merge_out",
              key=f"{key}:out", note=note, ref_type="customer", ref_id=target_id)
        _post(session, merchant_id=merchant_id, customer_id=target_id, kind=kind, delta=amount, reason="merge_in",
              key=f"{key}:in", note=note, ref_type="customer", ref_id=source_id)
    for model in (Recharge, BalanceUse):
        session.execute(update(model).where(model.merchant_id == merchant_id, model.customer_id == source_id)
                        .values(customer_id=target_id).execution_options(synchronize_session=False))
    session.flush()
    return moved


# ==================================================================== plugging into checkout and payments


class StoredValueContributor:
    """Checkout with `use_balance`: pay as much of what is still payable as the balance covers (a
    payment part of kind "stored_value"), taken when the order is placed; 409
    `insufficient_balance` when the balance is empty or, by then, smaller than the part."""

    name = CONTRIBUTOR
    priority = 95

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.customer_id is None or ctx.payable_cents <= 0:
            return
        if not ctx.use_balance and not ctx.preview:
            return  # placing an order that does not pay from the balance: the notice is for the preview only
        available = balance_of(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id).total_cents
        if not ctx.use_balance:
            if available > 0:  # tell the customer (and the checkout page) the balance can pay
                ctx.notices.append({"kind": PART_KIND, "code": "balance_available", "balance_cents": available,
                                    "message": _("Stored value available: {amount}", amount=format_cents(available))})
            return
        if available <= 0:
            # Asked to pay with an empty balance (e.g. another checkout just spent it): refused, so
            # the customer is not left with an order they meant to pay from their balance.
            raise InsufficientBalance("Your stored-value balance is empty.", details={"balance_cents": 0})
        ctx.add_payment_part(kind=PART_KIND, amount_cents=available, source=self.name,
                             details={"balance_cents": available})

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        for part in ctx.payment_parts:
            if part.source == self.name and part.amount_cents > 0 and ctx.customer_id is not None:
                spend(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id, amount_cents=part.amount_cents,
                      source="order", source_id=order_id, order_id=order_id, note=order_no)


class StoredValueBalanceProvider:
    """The payments domain's "balance" method: the whole payment taken from stored value."""

    def charge(self, session: Session, *, merchant_id: int, customer_id: int, amount_cents: int, payment_id: int) -> None:
        payment = payments.get_payment(session, merchant_id=merchant_id, payment_id=payment_id)
        if _recharge_by_order(session, merchant_id=merchant_id, order_id=payment.order_id) is not None:
            raise Conflict("A recharge cannot be paid with stored value.", code="recharge_with_balance")
        spend(session, merchant_id=merchant_id, customer_id=customer_id, amount_cents=amount_cents, source="payment",
              source_id=payment_id, order_id=payment.order_id, note=payment.order_no)

    def refund(self, session: Session, *, merchant_id: int, customer_id: int, amount_cents: int, payment_id: int,
               refund_id: int) -> None:
        use = _use(session, merchant_id=merchant_id, source="payment", source_id=payment_id, lock=True)
        if use is None:
            raise Conflict("This payment took no stored value.", code="no_balance_use")
        if refund_id in (use.refund_refs or []):
            return
        use.refund_refs = [*(use.refund_refs or []), refund_id]
        _give_back(session, use, amount_cents, ref=f"refund:{refund_id}", reason="refund")


def install() -> None:
    """Register the checkout contributor and the "balance" payment provider (done at import; tests
    that unregistered providers call it again)."""
    pricing.register_contributor(StoredValueContributor())
    register_balance_provider(StoredValueBalanceProvider())


install()
