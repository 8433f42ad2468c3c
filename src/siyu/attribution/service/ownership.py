"""attribution: ownership. First-touch bindings of a customer to a guide (and store) and to a referrer
(distributor), protection periods, the rebind log, order attribution snapshots, customer transfer.

The contract other modules rely on (keep the signatures):

    apply_touch(session, *, merchant_id, customer_id, touch_id, channel, sharer_staff_id, sharer_customer_id,
                at) -> None
        run the binding rules for one touch of a known customer (called by shares.record_touch and when
        a visitor's anonymous touches are stitched to the customer who logs in).

    order_attribution(session, *, merchant_id, customer_id, share_code, now) -> dict
        the snapshot stored in `orders.attribution` at order creation. Keys (all present, None when
        unknown): share_code, touch_id, channel, sharer_staff_id, sharer_customer_id, guide_id,
        store_id, referrer_customer_id, campaign, live_id.

Binding rules (客户关系保护期), applied to every touch of a known customer:

1. Two kinds, independent of each other: `guide` (a staff member and that staff member's store; it is
   also the customer's owner in `customers`) and `referrer` (the customer who brought them: the
   distributor binding). A touch may bind one kind, the other, both or none.
2. A touch shared by a staff member (`sharer_staff_id`, active) binds the guide kind. A touch shared
   by a customer (`sharer_customer_id`) binds only the referrer kind: the sharer's own guide gains
   nothing from it. A touch without a sharer (search, ad, direct) binds nothing.
3. A customer is never their own referrer, and never the referrer of their own referrer (no A↔B loop).
4. The first such touch binds. A binding protects itself for the merchant's protection period of its
   kind (`guide_protection_days`, `referrer_protection_days`; None = permanent) counted from the
   touch that made it: a touch for someone else inside the period changes nothing.
5. A touch from the party already bound renews the period from that touch (no history line).
6. After the period (or when the bound guide has been disabled) a touch for someone else rebinds.
   A touch older than the current binding (an anonymous touch stitched in late) never rebinds.
7. A customer who already has an owner set outside attribution (console, import) is first adopted as
   bound to that owner from the touch's time, then rule 4 applies.
8. Every bind, rebind, adoption and transfer writes a `customer_binding_history` line (who, from, to,
   reason, touch, at); transfers (manual or a guide's departure) also restart the protection period.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import AttributedOrder, BindingHistory, CustomerBinding
from siyu.attribution.models.shares import Share, Touch
from siyu.core import clock
from siyu.core.auth import Principal, scoped, system_principal
from siyu.core.errors import NotFound, field_error
from siyu.core.pagination import Page, decode_cursor, encode_cursor
from siyu.customers import service as customers
from siyu.db import execute_core, upsert_insert
from siyu.merchants import service as merchants

SNAPSHOT_KEYS = ("share_code", "touch_id", "channel", "sharer_staff_id", "sharer_customer_id", "guide_id",
                 "store_id", "referrer_customer_id", "campaign", "live_id")
GUIDE, REFERRER = "guide", "referrer"
KIND_SETTINGS = {GUIDE: "guide_protection_days", REFERRER: "referrer_protection_days"}
MAX_PROTECTION_DAYS = 3650
_UNSET: Any = object()


@dataclasses.dataclass(frozen=True)
class Binding:
    """A customer's current binding of one kind, as other domains see it."""

    customer_id: int
    kind: str
    guide_id: int | None
    store_id: int | None
    referrer_customer_id: int | None
    touch_id: int | None
    channel: str
    bound_at: dt.datetime
    protected_until: dt.datetime | None

    def protected_at(self, at: dt.datetime) -> bool:
        return self.protected_until is None or at < self.protected_until


def _info(row: CustomerBinding) -> Binding:
    return Binding(customer_id=row.customer_id, kind=row.kind, guide_id=row.guide_id, store_id=row.store_id,
                   referrer_customer_id=row.referrer_customer_id, touch_id=row.touch_id, channel=row.channel,
                   bound_at=row.bound_at, protected_until=row.protected_until)


# ---------------------------------------------------------------- settings


def _check_days(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PROTECTION_DAYS:
        raise field_error(field, "Enter a whole number of days from 1 to {n}, or choose permanent.",
                          n=MAX_PROTECTION_DAYS)
    return value


def protection_settings(session: Session, *, merchant_id: int) -> dict[str, int | None]:
    """{guide_protection_days, referrer_protection_days}: days, or None for permanent. A kind never set
    follows the merchant's general `protection_days`."""
    raw = merchants.get_merchant(session, merchant_id).settings or {}
    default = raw.get("protection_days", merchants.DEFAULT_PROTECTION_DAYS)
    return {key: raw.get(key, default) for key in KIND_SETTINGS.values()}


def update_protection_settings(session: Session, *, actor: Principal, guide_protection_days: Any = _UNSET,
                               referrer_protection_days: Any = _UNSET) -> dict[str, int | None]:
    """Change one or both protection periods (brand admin). None makes a kind permanent."""
    actor.require("merchant.manage")
    changes: dict[str, Any] = {}
    for key, value in (("guide_protection_days", guide_protection_days),
                       ("referrer_protection_days", referrer_protection_days)):
        if value is not _UNSET:
            changes[key] = _check_days(key, value)
    if changes:
        merchants.update_merchant(session, actor=actor, settings=changes)
    return protection_settings(session, merchant_id=actor.merchant_id)


def _protected_until(days: int | None, at: dt.datetime) -> dt.datetime | None:
    return None if days is None else at + dt.timedelta(days=days)


# ---------------------------------------------------------------- the binding rules


def _insert(session: Session) -> Any:
    return upsert_insert(session)


def _active_staff(session: Session, merchant_id: int, staff_id: int) -> Any:
    try:
        staff = merchants.get_staff(session, staff_id, actor=system_principal(merchant_id))
    except NotFound:
        return None
    return staff if staff.active else None


def _target_of(row: CustomerBinding | None) -> tuple[int | None, int | None, int | None]:
    if row is None:
        return None, None, None
    return row.guide_id, row.store_id, row.referrer_customer_id


def log_history(session: Session, *, merchant_id: int, customer_id: int, kind: str, action: str,
                before: tuple[int | None, int | None, int | None], after: tuple[int | None, int | None, int | None],
                touch_id: int | None = None, reason: str = "", actor: Principal | None = None,
                at: dt.datetime | None = None) -> None:
    session.add(BindingHistory(
        merchant_id=merchant_id, customer_id=customer_id, kind=kind, action=action,
        from_guide_id=before[0], from_store_id=before[1], from_referrer_customer_id=before[2],
        to_guide_id=after[0], to_store_id=after[1], to_referrer_customer_id=after[2], touch_id=touch_id,
        reason=reason[:200], actor_type=actor.kind if actor else "system", actor_id=actor.subject_id if actor else None,
        actor_name=(actor.name if actor else "")[:60], at=at or clock.now()))
    session.flush()


def _set_owner(session: Session, *, merchant_id: int, customer_id: int, guide_id: int | None, store_id: int | None,
               reason: str, actor: Principal | None = None) -> None:
    owner, store = customers.assignment_of(session, merchant_id=merchant_id, customer_id=customer_id)
    if (owner, store) == (guide_id, store_id):
        return
    customers.set_owner(session, customer_id=customer_id, owner_id=guide_id, store_id=store_id,
                        actor=actor or system_principal(merchant_id), reason=reason)


def _locked(session: Session, merchant_id: int, customer_id: int, kind: str) -> CustomerBinding | None:
    return session.scalars(select(CustomerBinding).where(
        CustomerBinding.merchant_id == merchant_id, CustomerBinding.customer_id == customer_id,
        CustomerBinding.kind == kind).with_for_update().execution_options(populate_existing=True)).first()


def _insert_binding(session: Session, *, merchant_id: int, customer_id: int, kind: str,
                    target: tuple[int | None, int | None, int | None], touch_id: int | None, channel: str,
                    at: dt.datetime, days: int | None) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on (merchant, customer, kind): True when this call bound the
    customer. A concurrent first touch waits for ours and then finds the row."""
    table = CustomerBinding.__table__
    inserted = execute_core(
        session, _insert(session)(table).values(
            merchant_id=merchant_id, customer_id=customer_id, kind=kind, guide_id=target[0], store_id=target[1],
            referrer_customer_id=target[2], touch_id=touch_id, channel=channel[:20], bound_at=at,
            protected_until=_protected_until(days, at), updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=["merchant_id", "customer_id", "kind"])
        .returning(table.c.id)).first()
    return inserted is not None


def _bind(session: Session, *, merchant_id: int, customer_id: int, kind: str,
          target: tuple[int | None, int | None, int | None], touch_id: int | None, channel: str,
          at: dt.datetime, days: int | None) -> str:
    """Apply rules 4–8 for one kind; returns what happened: bound, kept, renewed, rebound."""
    if kind == GUIDE:
        owner, store = customers.assignment_of(session, merchant_id=merchant_id, customer_id=customer_id)
        if owner is not None and owner != target[0] and _insert_binding(
                session, merchant_id=merchant_id, customer_id=customer_id, kind=kind, target=(owner, store, None),
                touch_id=None, channel="", at=at, days=days):
            log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=kind, action="adopt",
                        before=(None, None, None), after=(owner, store, None), reason="owner set before any touch",
                        at=at)
    if _insert_binding(session, merchant_id=merchant_id, customer_id=customer_id, kind=kind, target=target,
                       touch_id=touch_id, channel=channel, at=at, days=days):
        log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=kind, action="bind",
                    before=(None, None, None), after=target, touch_id=touch_id, reason=f"first touch ({channel})", at=at)
        if kind == GUIDE:
            _set_owner(session, merchant_id=merchant_id, customer_id=customer_id, guide_id=target[0],
                       store_id=target[1], reason="first touch")
        return "bound"
    row = _locked(session, merchant_id, customer_id, kind)
    assert row is not None  # the conflict that stopped the insert is this row
    current = _target_of(row)
    same = current[0] == target[0] if kind == GUIDE else current[2] == target[2]
    if same:
        renewed = _protected_until(days, at)
        if row.protected_until is not None and (renewed is None or renewed > row.protected_until):
            row.protected_until = renewed
            session.flush()
            return "renewed"
        return "kept"
    if at < row.bound_at:
        return "kept"
    protected = row.protected_until is None or at < row.protected_until
    if protected and kind == GUIDE and row.guide_id is not None and _active_staff(session, merchant_id, row.guide_id) is None:
        protected = False
    if protected:
        return "kept"
    row.guide_id, row.store_id, row.referrer_customer_id = target
    row.touch_id, row.channel, row.bound_at = touch_id, channel[:20], at
    row.protected_until = _protected_until(days, at)
    session.flush()
    log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=kind, action="rebind",
                before=current, after=target, touch_id=touch_id, reason=f"touch after protection ({channel})", at=at)
    if kind == GUIDE:
        _set_owner(session, merchant_id=merchant_id, customer_id=customer_id, guide_id=target[0],
                   store_id=target[1], reason="rebound after protection period")
    return "rebound"


def apply_touch(session: Session, *, merchant_id: int, customer_id: int, touch_id: int | None, channel: str,
                sharer_staff_id: int | None, sharer_customer_id: int | None, at: dt.datetime) -> None:
    """Run the binding rules (module docstring) for one touch of a known customer."""
    if sharer_staff_id is None and sharer_customer_id is None:
        return
    settings = protection_settings(session, merchant_id=merchant_id)
    if sharer_staff_id is not None:
        staff = _active_staff(session, merchant_id, sharer_staff_id)
        if staff is not None:
            _bind(session, merchant_id=merchant_id, customer_id=customer_id, kind=GUIDE,
                  target=(staff.id, staff.store_id, None), touch_id=touch_id, channel=channel, at=at,
                  days=settings[KIND_SETTINGS[GUIDE]])
    if sharer_customer_id is not None and may_refer(session, merchant_id=merchant_id, customer_id=customer_id,
                                                    referrer_customer_id=sharer_customer_id):
        _bind(session, merchant_id=merchant_id, customer_id=customer_id, kind=REFERRER,
              target=(None, None, sharer_customer_id), touch_id=touch_id, channel=channel, at=at,
              days=settings[KIND_SETTINGS[REFERRER]])


def may_refer(session: Session, *, merchant_id: int, customer_id: int, referrer_customer_id: int) -> bool:
    """Rule 3: not oneself, not one's own referrer, and a customer of the same merchant."""
    if referrer_customer_id == customer_id:
        return False
    try:
        customers.assignment_of(session, merchant_id=merchant_id, customer_id=referrer_customer_id)
    except NotFound:
        return False
    return referrer_of(session, merchant_id=merchant_id, customer_id=referrer_customer_id) != customer_id


# ---------------------------------------------------------------- queries other domains use


def _binding(session: Session, merchant_id: int, customer_id: int, kind: str) -> CustomerBinding | None:
    return session.scalars(select(CustomerBinding).where(
        CustomerBinding.merchant_id == merchant_id, CustomerBinding.customer_id == customer_id,
        CustomerBinding.kind == kind)).first()


def guide_binding(session: Session, *, merchant_id: int, customer_id: int) -> Binding | None:
    """The customer's guide binding (guide, store, since, protected until), or None."""
    row = _binding(session, merchant_id, customer_id, GUIDE)
    return _info(row) if row is not None else None


def referrer_binding(session: Session, *, merchant_id: int, customer_id: int) -> Binding | None:
    row = _binding(session, merchant_id, customer_id, REFERRER)
    return _info(row) if row is not None else None


def referrer_of(session: Session, *, merchant_id: int, customer_id: int) -> int | None:
    """The customer who referred this customer (the distributor binding), or None."""
    return session.scalar(select(CustomerBinding.referrer_customer_id).where(
        CustomerBinding.merchant_id == merchant_id, CustomerBinding.customer_id == customer_id,
        CustomerBinding.kind == REFERRER))


def bound_customers(session: Session, *, merchant_id: int, referrer_customer_id: int | None = None,
                    guide_id: int | None = None, store_id: int | None = None, cursor: str | None = None,
                    limit: int | None = 100) -> Page[Binding]:
    """Bindings (newest first, cursor-paginated) of the customers a referrer brought, or bound to a
    guide or a store. Give exactly one of referrer_customer_id, guide_id, store_id."""
    given = [v for v in (referrer_customer_id, guide_id, store_id) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of referrer_customer_id, guide_id, store_id")
    stmt = select(CustomerBinding).where(CustomerBinding.merchant_id == merchant_id)
    if referrer_customer_id is not None:
        stmt = stmt.where(CustomerBinding.kind == REFERRER, CustomerBinding.referrer_customer_id == referrer_customer_id)
    elif guide_id is not None:
        stmt = stmt.where(CustomerBinding.kind == GUIDE, CustomerBinding.guide_id == guide_id)
    else:
        stmt = stmt.where(CustomerBinding.kind == GUIDE, CustomerBinding.store_id == store_id)
    return _page(session, stmt, cursor=cursor, limit=limit)


def _page(session: Session, stmt: Select[Any], *, cursor: str | None, limit: int | None) -> Page[Binding]:
    limit = max(1, min(limit or 100, 1000))
    last = decode_cursor(cursor)
    if last is not None:
        stmt = stmt.where(CustomerBinding.id < last)
    rows = list(session.scalars(stmt.order_by(CustomerBinding.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[_info(r) for r in rows[:limit]], next_cursor=next_cursor)


def list_bindings(session: Session, *, actor: Principal, kind: str | None = None, guide_id: int | None = None,
                  referrer_customer_id: int | None = None, customer_id: int | None = None,
                  cursor: str | None = None, limit: int | None = None) -> Page[Binding]:
    """Bindings inside the actor's scope (a guide: theirs), filtered, newest first."""
    stmt = scoped(select(CustomerBinding), CustomerBinding, actor)
    for column, value in ((CustomerBinding.kind, kind), (CustomerBinding.guide_id, guide_id),
                          (CustomerBinding.referrer_customer_id, referrer_customer_id),
                          (CustomerBinding.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return _page(session, stmt, cursor=cursor, limit=min(limit or 20, 100))


def history(session: Session, *, merchant_id: int, customer_id: int | None = None, kind: str | None = None,
            action: str | None = None, staff_id: int | None = None, store_ids: list[int] | None = None,
            cursor: str | None = None, limit: int | None = None) -> Page[BindingHistory]:
    """The binding history, newest first; `staff_id` finds lines from or to that guide, `store_ids` lines
    from or to those stores."""
    stmt = select(BindingHistory).where(BindingHistory.merchant_id == merchant_id)
    if customer_id is not None:
        stmt = stmt.where(BindingHistory.customer_id == customer_id)
    if kind is not None:
        stmt = stmt.where(BindingHistory.kind == kind)
    if action is not None:
        stmt = stmt.where(BindingHistory.action == action)
    if staff_id is not None:
        stmt = stmt.where((BindingHistory.from_guide_id == staff_id) | (BindingHistory.to_guide_id == staff_id))
    if store_ids is not None:
        stmt = stmt.where(BindingHistory.from_store_id.in_(store_ids) | BindingHistory.to_store_id.in_(store_ids))
    limit = max(1, min(limit or 50, 200))
    last = decode_cursor(cursor)
    if last is not None:
        stmt = stmt.where(BindingHistory.id < last)
    rows = list(session.scalars(stmt.order_by(BindingHistory.id.desc()).limit(limit + 1)))
    return Page(items=rows[:limit], next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)


# ---------------------------------------------------------------- order attribution


def _share(session: Session, merchant_id: int, code: str | None) -> Share | None:
    if not code or not isinstance(code, str) or len(code) > 16:
        return None
    return session.scalars(select(Share).where(Share.merchant_id == merchant_id, Share.code == code)).first()


def last_touch(session: Session, *, merchant_id: int, customer_id: int, before: dt.datetime | None = None,
               share_code: str | None = None) -> Touch | None:
    params = {"merchant_id": merchant_id, "customer_id": customer_id, "before": before, "share_code": share_code}
    return session.scalars(_last_touch(before is not None, share_code is not None), params).first()


@functools.cache
def _last_touch(before: bool, share_code: bool) -> Any:
    # Built once per shape (every order asks): the values as parameters.
    stmt = select(Touch).where(Touch.merchant_id == bindparam("merchant_id"),
                               Touch.customer_id == bindparam("customer_id"))
    if before:
        stmt = stmt.where(Touch.at <= bindparam("before"))
    if share_code:
        stmt = stmt.where(Touch.share_code == bindparam("share_code"))
    return stmt.order_by(Touch.at.desc(), Touch.id.desc()).limit(1)


def order_attribution(session: Session, *, merchant_id: int, customer_id: int, share_code: str | None,
                      now: dt.datetime, assignment: tuple[int | None, int | None] | None = None) -> dict[str, Any]:
    """The snapshot written once into the order at creation. The last-touch sharer is the sharer of a
    valid `share_code` given at checkout, else of the customer's latest touch up to `now`; guide and
    store are the customer's guide binding (else their owner); the referrer is their referrer binding.
    `assignment`: the customer's (owner, store) when the caller has just read it (`customers.assignment_of`)."""
    snapshot: dict[str, Any] = dict.fromkeys(SNAPSHOT_KEYS)
    share = _share(session, merchant_id, share_code)
    touch = last_touch(session, merchant_id=merchant_id, customer_id=customer_id, before=now,
                       share_code=share.code if share is not None else None)
    if share is not None:
        snapshot.update(share_code=share.code, channel=share.channel, sharer_staff_id=share.sharer_staff_id,
                        sharer_customer_id=share.sharer_customer_id,
                        campaign=share.campaign, live_id=share.target_id if share.target_type == "live" else None)
        if touch is not None:
            snapshot.update(touch_id=touch.id, channel=touch.channel)
    elif touch is not None:
        snapshot.update(share_code=touch.share_code, touch_id=touch.id, channel=touch.channel,
                        sharer_staff_id=touch.sharer_staff_id, sharer_customer_id=touch.sharer_customer_id,
                        campaign=touch.campaign, live_id=touch.target_id if touch.target_type == "live" else None)
    # Both bindings (guide, referrer) in one read.
    bindings = {row.kind: row for row in execute_core(
        session, _guide_and_referrer(), {"merchant_id": merchant_id, "customer_id": customer_id})}
    guide = bindings.get(GUIDE)
    if guide is not None:
        snapshot.update(guide_id=guide.guide_id, store_id=guide.store_id)
    else:
        owner, store = assignment if assignment is not None else customers.assignment_of(
            session, merchant_id=merchant_id, customer_id=customer_id)
        snapshot.update(guide_id=owner, store_id=store)
    referrer = bindings.get(REFERRER)
    snapshot["referrer_customer_id"] = referrer.referrer_customer_id if referrer is not None else None
    return snapshot


@functools.cache
def _guide_and_referrer() -> Any:
    # Built once (every order asks): the ids as parameters.
    return (select(CustomerBinding.kind, CustomerBinding.guide_id, CustomerBinding.store_id,
                   CustomerBinding.referrer_customer_id)
            .where(CustomerBinding.merchant_id == bindparam("merchant_id"),
                   CustomerBinding.customer_id == bindparam("customer_id"),
                   CustomerBinding.kind.in_((GUIDE, REFERRER))))


def record_order(session: Session, *, merchant_id: int, order_id: int, order_no: str, customer_id: int,
                 snapshot: dict[str, Any], total_cents: int, created_at: dt.datetime) -> None:
    """Keep attribution's copy of an order's snapshot (once per order: a replay changes nothing)."""
    s = {k: snapshot.get(k) for k in SNAPSHOT_KEYS}
    execute_core(session, _record_order(session.get_bind().dialect.name), {
        "merchant_id": merchant_id, "order_id": order_id, "order_no": order_no[:40], "customer_id": customer_id,
        "snapshot": s, "guide_id": s["guide_id"], "store_id": s["store_id"], "sharer_staff_id": s["sharer_staff_id"],
        "sharer_customer_id": s["sharer_customer_id"], "referrer_customer_id": s["referrer_customer_id"],
        "channel": s["channel"], "total_cents": total_cents, "paid_cents": 0, "created_at": created_at,
        "paid_at": None})


@functools.cache
def _record_order(dialect: str) -> Any:
    # Built once per dialect (every order runs it): the values as parameters.
    table = AttributedOrder.__table__
    return (upsert_insert(dialect)(table).values({c.name: bindparam(c.name, type_=c.type) for c in table.c
                                                  if c.name != "id"})
            .on_conflict_do_nothing(index_elements=["merchant_id", "order_id"]))


def record_order_paid(session: Session, *, merchant_id: int, order_id: int, paid_cents: int,
                      paid_at: dt.datetime) -> None:
    """The copy of a paid order records its payment (once: a replay changes nothing). One Core UPDATE:
    it runs on every paid order."""
    execute_core(session, _RECORD_PAID, {"of_merchant": merchant_id, "of_order": order_id, "at_paid": paid_at,
                                         "cents_paid": paid_cents})


_ATTRIBUTED = AttributedOrder.__table__
_RECORD_PAID = update(_ATTRIBUTED).where(
    _ATTRIBUTED.c.merchant_id == bindparam("of_merchant", type_=_ATTRIBUTED.c.merchant_id.type),
    _ATTRIBUTED.c.order_id == bindparam("of_order", type_=_ATTRIBUTED.c.order_id.type),
    _ATTRIBUTED.c.paid_at.is_(None)).values({
        _ATTRIBUTED.c.paid_at: bindparam("at_paid", type_=_ATTRIBUTED.c.paid_at.type),
        _ATTRIBUTED.c.paid_cents: bindparam("cents_paid", type_=_ATTRIBUTED.c.paid_cents.type)})


@dataclasses.dataclass(frozen=True)
class OrderFacts:
    """What a bulk writer of orders knows about one order (see `bulk_snapshots`)."""

    customer_id: int
    created_at: dt.datetime
    guide_id: int | None
    store_id: int | None


def bulk_snapshots(session: Session, *, merchant_id: int, orders: list[OrderFacts]) -> list[dict[str, Any]]:
    """Snapshots for orders written in bulk (the demo's year of history, imports), in the order given: the
    customer's last touch up to each order's creation, the order's own guide and store, and the referrer
    bound by then. A few queries for any number of orders."""
    customer_ids = sorted({o.customer_id for o in orders})
    touches: dict[int, list[tuple[dt.datetime, int, Any]]] = {}
    referrers: dict[int, tuple[dt.datetime, int | None]] = {}
    for start in range(0, len(customer_ids), 1000):
        chunk = customer_ids[start:start + 1000]
        for row in session.execute(
                select(Touch.customer_id, Touch.at, Touch.id, Touch.share_code, Touch.channel, Touch.sharer_staff_id,
                       Touch.sharer_customer_id, Touch.campaign, Touch.target_type, Touch.target_id)
                .where(Touch.merchant_id == merchant_id, Touch.customer_id.in_(chunk)).order_by(Touch.at, Touch.id)):
            touches.setdefault(row.customer_id, []).append((row.at, row.id, row))
        for cid, bound_at, ref in session.execute(
                select(CustomerBinding.customer_id, CustomerBinding.bound_at, CustomerBinding.referrer_customer_id)
                .where(CustomerBinding.merchant_id == merchant_id, CustomerBinding.kind == REFERRER,
                       CustomerBinding.customer_id.in_(chunk))):
            referrers[cid] = (bound_at, ref)
    out = []
    for o in orders:
        snap: dict[str, Any] = dict.fromkeys(SNAPSHOT_KEYS)
        found = touches.get(o.customer_id) or []
        i = bisect.bisect_right(found, (o.created_at, 2**63))
        if i:
            t = found[i - 1][2]
            snap.update(share_code=t.share_code, touch_id=t.id, channel=t.channel, sharer_staff_id=t.sharer_staff_id,
                        sharer_customer_id=t.sharer_customer_id, campaign=t.campaign,
                        live_id=t.target_id if t.target_type == "live" else None)
        ref = referrers.get(o.customer_id)
        snap.update(guide_id=o.guide_id, store_id=o.store_id,
                    referrer_customer_id=ref[1] if ref is not None and ref[0] <= o.created_at else None)
        out.append(snap)
    return out


def record_orders(session: Session, *, merchant_id: int, rows: list[dict[str, Any]]) -> None:
    """attribution's copies of orders written in bulk (no events): each row has order_id, order_no,
    customer_id, snapshot, total_cents, paid_cents, created_at, paid_at."""
    values = [{"merchant_id": merchant_id, "order_id": r["order_id"], "order_no": r["order_no"][:40],
               "customer_id": r["customer_id"], "snapshot": r["snapshot"], "guide_id": r["snapshot"]["guide_id"],
               "store_id": r["snapshot"]["store_id"], "sharer_staff_id": r["snapshot"]["sharer_staff_id"],
               "sharer_customer_id": r["snapshot"]["sharer_customer_id"],
               "referrer_customer_id": r["snapshot"]["referrer_customer_id"], "channel": r["snapshot"]["channel"],
               "total_cents": r["total_cents"], "paid_cents": r["paid_cents"], "created_at": r["created_at"],
               "paid_at": r["paid_at"]} for r in rows]
    for start in range(0, len(values), 2000):
        session.execute(AttributedOrder.__table__.insert(), values[start:start + 2000])


def attributed_order(session: Session, *, merchant_id: int, order_id: int) -> AttributedOrder | None:
    return session.scalars(select(AttributedOrder).where(AttributedOrder.merchant_id == merchant_id,
                                                         AttributedOrder.order_id == order_id)).first()


# ---------------------------------------------------------------- merges and owner changes made elsewhere


def move_merged(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """A customer merged into another: the target keeps its own bindings, takes the source's where it has
    none; referrals by the source become the target's (a referral of oneself is dropped)."""
    for kind in (GUIDE, REFERRER):
        src = _locked(session, merchant_id, source_id, kind)
        if src is None:
            continue
        if _binding(session, merchant_id, target_id, kind) is None and not (
                kind == REFERRER and src.referrer_customer_id == target_id):
            src.customer_id = target_id
        else:
            session.delete(src)
    session.flush()
    for row in session.scalars(select(CustomerBinding).where(
            CustomerBinding.merchant_id == merchant_id, CustomerBinding.kind == REFERRER,
            CustomerBinding.referrer_customer_id == source_id).with_for_update()):
        if row.customer_id == target_id:
            session.delete(row)
        else:
            row.referrer_customer_id = target_id
    session.execute(BindingHistory.__table__.update().where(
        BindingHistory.merchant_id == merchant_id, BindingHistory.customer_id == source_id).values(customer_id=target_id))
    session.flush()


def sync_owner(session: Session, *, merchant_id: int, customer_id: int, reason: str) -> None:
    """The customer's owner was changed in `customers` (console, import): the guide binding follows the
    customer's owner as it is now (a late or replayed event cannot turn it back), so the two never
    disagree. Our own owner changes find the binding already equal and change nothing."""
    try:
        owner_id, store_id = customers.assignment_of(session, merchant_id=merchant_id, customer_id=customer_id)
    except NotFound:
        return
    row = _locked(session, merchant_id, customer_id, GUIDE)
    if row is None:
        if owner_id is None:
            return
        if _insert_binding(session, merchant_id=merchant_id, customer_id=customer_id, kind=GUIDE,
                           target=(owner_id, store_id, None), touch_id=None, channel="", at=clock.now(),
                           days=protection_settings(session, merchant_id=merchant_id)[KIND_SETTINGS[GUIDE]]):
            log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=GUIDE, action="owner_sync",
                        before=(None, None, None), after=(owner_id, store_id, None), reason=reason or "owner changed")
        return
    before = _target_of(row)
    if (row.guide_id, row.store_id) == (owner_id, store_id):
        return
    if owner_id is None:
        session.delete(row)
    else:
        now = clock.now()
        row.guide_id, row.store_id, row.touch_id, row.channel, row.bound_at = owner_id, store_id, None, "", now
        row.protected_until = _protected_until(
            protection_settings(session, merchant_id=merchant_id)[KIND_SETTINGS[GUIDE]], now)
    session.flush()
    log_history(session, merchant_id=merchant_id, customer_id=customer_id, kind=GUIDE, action="owner_sync",
                before=before, after=(owner_id, store_id, None), reason=reason or "owner changed")
