"""attribution: ownership demo data. Guide bindings for every demo customer who has an owner (from the guide's
first touch of them when there is one, else from when they joined), referrer bindings from the first touch a
customer shared, a few rebinds (a customer first touched by another guide, rebound to their owner after the
protection period), and one departure: a guide who left, whose customers were dealt round-robin to the
store's other guides. Bulk inserts for the many rows; the services for the departure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import BindingHistory, CustomerBinding
from siyu.attribution.models.shares import Touch
from siyu.attribution.service import ownership, transfer
from siyu.core import clock
from siyu.core.auth import Role, system_principal
from siyu.core.demo import DEMO_PASSWORD, DemoContext
from siyu.customers import service as customers
from siyu.merchants import service as merchants

GUIDE_DAYS = 30
REFERRER_DAYS = 90
MAX_REBINDS = 25
LEAVER_CUSTOMERS = 12


def _customers(session: Session, merchant_id: int) -> list[Any]:
    system = system_principal(merchant_id)
    out: list[Any] = []
    cursor = None
    while True:
        page = customers.list_customers(session, actor=system, cursor=cursor, limit=100)
        out.extend(page.items)
        if page.next_cursor is None:
            return sorted(out, key=lambda c: c.id)
        cursor = page.next_cursor


def seed(session: Session, ctx: DemoContext) -> None:
    if not ctx.merchant_id or ctx.admin is None or not ctx.guide_ids:
        return
    mid, now = ctx.merchant_id, ctx.now
    ownership.update_protection_settings(session, actor=ctx.admin, guide_protection_days=GUIDE_DAYS,
                                         referrer_protection_days=REFERRER_DAYS)
    people = _customers(session, mid)
    first_staff: dict[int, Any] = {}
    first_customer: dict[int, Any] = {}
    columns = (Touch.id, Touch.customer_id, Touch.sharer_staff_id, Touch.sharer_customer_id, Touch.channel, Touch.at)
    for t in session.execute(select(*columns).where(
            Touch.merchant_id == mid, Touch.customer_id.is_not(None),
            (Touch.sharer_staff_id.is_not(None)) | (Touch.sharer_customer_id.is_not(None)))
            .order_by(Touch.at, Touch.id)):
        if t.sharer_staff_id is not None:
            first_staff.setdefault(t.customer_id, t)
        elif t.sharer_customer_id is not None and t.sharer_customer_id != t.customer_id:
            first_customer.setdefault(t.customer_id, t)

    bindings: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    guide_days, referrer_days = dt.timedelta(days=GUIDE_DAYS), dt.timedelta(days=REFERRER_DAYS)
    staff_store = dict(ctx.guide_store)
    rebinds = 0

    def line(customer_id: int, kind: str, action: str, at: dt.datetime, to: tuple[Any, Any, Any],
             before: tuple[Any, Any, Any] = (None, None, None), touch_id: int | None = None, reason: str = "") -> None:
        lines.append({"merchant_id": mid, "customer_id": customer_id, "kind": kind, "action": action,
                      "from_guide_id": before[0], "from_store_id": before[1], "from_referrer_customer_id": before[2],
                      "to_guide_id": to[0], "to_store_id": to[1], "to_referrer_customer_id": to[2],
                      "touch_id": touch_id, "reason": reason, "actor_type": "system", "actor_id": None,
                      "actor_name": "", "at": at})

    for c in people:
        touch = first_staff.get(c.id)
        if c.owner_id is not None:
            owner = (c.owner_id, c.store_id, None)
            if touch is not None and touch.sharer_staff_id == c.owner_id:
                bound_at, touch_id, channel = touch.at, touch.id, touch.channel
                line(c.id, "guide", "bind", bound_at, owner, touch_id=touch_id, reason=f"first touch ({channel})")
            elif (touch is not None and touch.sharer_staff_id in staff_store and rebinds < MAX_REBINDS
                  and touch.at + guide_days + dt.timedelta(days=5) < now):
                # Brought by another guide first; their owner won them after the protection period.
                rebinds += 1
                first = (touch.sharer_staff_id, staff_store[touch.sharer_staff_id], None)
                line(c.id, "guide", "bind", touch.at, first, touch_id=touch.id, reason=f"first touch ({touch.channel})")
                bound_at, touch_id, channel = touch.at + guide_days + dt.timedelta(days=3), None, "guide_qr"
                line(c.id, "guide", "rebind", bound_at, owner, before=first, reason="touch after protection (guide_qr)")
            else:
                bound_at, touch_id, channel = c.created_at, None, "guide_qr"
                line(c.id, "guide", "bind", bound_at, owner, reason="first touch (guide_qr)")
            bindings.append({"merchant_id": mid, "customer_id": c.id, "kind": "guide", "guide_id": c.owner_id,
                             "store_id": c.store_id, "referrer_customer_id": None, "touch_id": touch_id,
                             "channel": channel, "bound_at": bound_at, "protected_until": bound_at + guide_days,
                             "updated_at": bound_at})
        ref = first_customer.get(c.id)
        if ref is not None:
            target = (None, None, ref.sharer_customer_id)
            line(c.id, "referrer", "bind", ref.at, target, touch_id=ref.id, reason=f"first touch ({ref.channel})")
            bindings.append({"merchant_id": mid, "customer_id": c.id, "kind": "referrer", "guide_id": None,
                             "store_id": None, "referrer_customer_id": ref.sharer_customer_id, "touch_id": ref.id,
                             "channel": ref.channel, "bound_at": ref.at, "protected_until": ref.at + referrer_days,
                             "updated_at": ref.at})
    lines.sort(key=lambda r: r["at"])
    for model, rows in ((CustomerBinding, bindings), (BindingHistory, lines)):
        for start in range(0, len(rows), 2000):
            session.execute(insert(model.__table__), rows[start:start + 2000])
    session.flush()
    _departure(session, ctx, people)


def _departure(session: Session, ctx: DemoContext, people: list[Any]) -> None:
    """A guide of the first store (小郑, `guide_left`) served some customers, then left: disabled, and their
    customers dealt round-robin to the store's other guides."""
    store_id = ctx.store_ids[0] if ctx.store_ids else None
    if store_id is None:
        return
    leaver = merchants.create_staff(session, actor=ctx.admin, username="guide_left", password=DEMO_PASSWORD,
                                    name="郑离职", role=Role.GUIDE, store_id=store_id)
    leaver.created_at = ctx.now - dt.timedelta(days=200)
    theirs = [c.id for c in people if c.store_id == store_id and c.owner_id is not None][:LEAVER_CUSTOMERS]
    if not theirs:
        return
    with clock.frozen(ctx.now - dt.timedelta(days=60)):
        transfer.transfer_customers(session, actor=ctx.admin, customer_ids=theirs, to_guide_id=leaver.id,
                                    reason="新导购接手")
    with clock.frozen(ctx.now - dt.timedelta(days=7)):
        merchants.disable_staff(session, leaver.id, actor=ctx.admin, transfer_mode="round_robin")
        transfer.transfer_departed(session, merchant_id=ctx.merchant_id, staff_id=leaver.id, mode="round_robin",
                                   actor=ctx.admin)
