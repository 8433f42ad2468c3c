"""attribution: customer transfer (客户继承). A manual transfer moves chosen customers to another guide;
a departure transfer (离职继承) moves every customer of a disabled guide — to a chosen colleague, to the
store manager, or round-robin across the store's other active guides. Either way the guide binding
moves, the customer's owner and store follow (through `customers.set_owner`), the protection period
restarts, and a `customer_binding_history` line records who did it.

Departure fall-backs, so that a departure never leaves customers with a disabled owner when someone can
take them: a colleague who is no longer active → the store manager; no store manager → round-robin;
no other active guide in the store → the store manager. With nobody in the store, nothing moves (the
history shows nothing, the customers keep their disabled owner, and the transfer tool can move them).

There is no tasks domain yet: a leaver's pending tasks will move with their customers when it lands
(it can subscribe to `customer.owner_changed`, which every move emits).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import CustomerBinding
from siyu.attribution.service import ownership
from siyu.core import clock
from siyu.core.auth import Principal, Role, system_principal
from siyu.core.errors import Conflict, NotFound, field_error
from siyu.customers import service as customers
from siyu.merchants import service as merchants

MODES = ("colleague", "manager", "round_robin")
MAX_CUSTOMERS = 1000


@dataclasses.dataclass
class TransferResult:
    moved: int = 0
    unchanged: int = 0
    not_found: int = 0
    # customer id -> the guide it went to
    targets: dict[int, int] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"moved": self.moved, "unchanged": self.unchanged, "not_found": self.not_found,
                "targets": {str(k): v for k, v in self.targets.items()}}


def move_guide(session: Session, *, merchant_id: int, customer_id: int, guide: Any, action: str, reason: str,
               actor: Principal) -> bool:
    """Move one customer's guide binding (creating it when missing) to `guide` (an active staff row),
    restart its protection period, log it and set the customer's owner. False when already there."""
    now = clock.now()
    days = ownership.protection_settings(session, merchant_id=merchant_id)[ownership.KIND_SETTINGS[ownership.GUIDE]]
    owner, store = customers.assignment_of(session, merchant_id=merchant_id, customer_id=customer_id)
    row = ownership._locked(session, merchant_id, customer_id, ownership.GUIDE)
    before = ownership._target_of(row) if row is not None else (owner, store, None)
    target = (guide.id, guide.store_id, None)
    if before[0] == guide.id and owner == guide.id:
        return False
    if row is None:
        ownership._insert_binding(session, merchant_id=merchant_id, customer_id=customer_id, kind=ownership.GUIDE,
                                  target=target, touch_id=None, channel="", at=now, days=days)
    else:
        row.guide_id, row.store_id, row.touch_id, row.channel, row.bound_at = guide.id, guide.store_id, None, "", now
        row.protected_until = ownership._protected_until(days, now)
        session.flush()
    ownership.log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=ownership.GUIDE,
                          action=action, before=before, after=target, reason=reason, actor=actor, at=now)
    ownership._set_owner(session, merchant_id=merchant_id, customer_id=customer_id, guide_id=guide.id,
                         store_id=guide.store_id, reason=reason or action, actor=actor)
    return True


def _active_target(session: Session, actor: Principal, staff_id: Any, field: str) -> Any:
    try:
        staff = merchants.get_staff(session, int(staff_id), actor=actor)
    except (NotFound, TypeError, ValueError):
        raise field_error(field, "Choose an active colleague.") from None
    if not staff.active:
        raise field_error(field, "Choose an active colleague.")
    return staff


def transfer_customers(session: Session, *, actor: Principal, customer_ids: list[int], to_guide_id: int,
                       reason: str = "") -> TransferResult:
    """Move chosen customers (inside the actor's scope) to another active staff member (inside it too).
    Customers outside the scope count as not found; customers already with that guide as unchanged."""
    actor.require("customers.transfer")
    ids = sorted({i for i in customer_ids if isinstance(i, int) and 0 < i <= 2**53})
    if not ids:
        raise field_error("customer_ids", "Choose at least one customer.")
    if len(ids) > MAX_CUSTOMERS:
        raise field_error("customer_ids", "Choose at most {n} customers at once.", n=MAX_CUSTOMERS)
    guide = _active_target(session, actor, to_guide_id, "to_guide_id")
    result = TransferResult()
    for customer_id in ids:
        try:
            customer = customers.get_customer(session, customer_id, actor=actor)
        except NotFound:
            result.not_found += 1
            continue
        if customer.merged_into_id is not None:
            result.not_found += 1
            continue
        if move_guide(session, merchant_id=actor.merchant_id, customer_id=customer_id, guide=guide, action="transfer",
                      reason=reason[:200] or "manual transfer", actor=actor):
            result.moved += 1
            result.targets[customer_id] = guide.id
        else:
            result.unchanged += 1
    return result


def customers_of(session: Session, *, merchant_id: int, staff_id: int) -> list[int]:
    """Every live customer bound to or owned by a staff member, in id order."""
    ids = set(session.scalars(select(CustomerBinding.customer_id).where(
        CustomerBinding.merchant_id == merchant_id, CustomerBinding.kind == ownership.GUIDE,
        CustomerBinding.guide_id == staff_id)))
    cursor = None
    system = system_principal(merchant_id)
    while True:
        page = customers.list_customers(session, actor=system, filters=customers.CustomerFilter(owner_id=staff_id),
                                        cursor=cursor, limit=100)
        ids.update(c.id for c in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return sorted(ids)


def _store_manager(session: Session, merchant_id: int, store_id: int | None, exclude: int) -> Any:
    if store_id is None:
        return None
    found = merchants.list_staff(session, actor=system_principal(merchant_id), role=Role.STORE_MANAGER.value,
                                 store_id=store_id, active=True)
    return next((s for s in found if s.id != exclude), None)


def _store_guides(session: Session, merchant_id: int, store_id: int | None, exclude: int) -> list[Any]:
    if store_id is None:
        return []
    found = merchants.list_staff(session, actor=system_principal(merchant_id), role=Role.GUIDE.value,
                                 store_id=store_id, active=True)
    return [s for s in found if s.id != exclude]


def departure_targets(session: Session, *, merchant_id: int, leaver: Any, mode: str,
                      colleague_id: int | None) -> tuple[str, list[Any]]:
    """The mode actually used (after the fall-backs in the module docstring) and its target staff."""
    system = system_principal(merchant_id)
    if mode == "colleague" and colleague_id is not None and colleague_id != leaver.id:
        try:
            colleague = merchants.get_staff(session, colleague_id, actor=system)
        except NotFound:
            colleague = None
        if colleague is not None and colleague.active:
            return "colleague", [colleague]
        mode = "manager"
    manager = _store_manager(session, merchant_id, leaver.store_id, leaver.id)
    guides = _store_guides(session, merchant_id, leaver.store_id, leaver.id)
    if mode in ("manager", "colleague"):
        if manager is not None:
            return "manager", [manager]
        return ("round_robin", guides) if guides else ("none", [])
    if guides:
        return "round_robin", guides
    return ("manager", [manager]) if manager is not None else ("none", [])


def transfer_departed(session: Session, *, merchant_id: int, staff_id: int, mode: str = "round_robin",
                      colleague_id: int | None = None, actor: Principal | None = None) -> TransferResult:
    """离职继承: move every customer of a (disabled) staff member. Round-robin deals the customers, in id
    order, to the store's other active guides in id order. Safe to run again: customers already moved
    are no longer the leaver's."""
    if mode not in MODES:
        raise field_error("mode", "Choose one of the options.")
    actor = actor or system_principal(merchant_id)
    actor.require("customers.transfer")
    try:
        leaver = merchants.get_staff(session, staff_id, actor=actor)
    except NotFound:
        raise field_error("staff_id", "No such staff member.") from None
    if leaver.active:
        raise Conflict("Disable the staff member first: only a leaver's customers are inherited.",
                       code="staff_active")
    used, targets = departure_targets(session, merchant_id=merchant_id, leaver=leaver, mode=mode,
                                      colleague_id=colleague_id)
    result = TransferResult()
    if not targets:
        return result
    reason = f"departure of {leaver.name} ({used})"
    for index, customer_id in enumerate(customers_of(session, merchant_id=merchant_id, staff_id=leaver.id)):
        guide = targets[index % len(targets)]
        if move_guide(session, merchant_id=merchant_id, customer_id=customer_id, guide=guide, action="departure",
                      reason=reason, actor=actor):
            result.moved += 1
            result.targets[customer_id] = guide.id
        else:
            result.unchanged += 1
    return result
