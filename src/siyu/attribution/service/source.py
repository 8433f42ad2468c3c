"""attribution: the source views (客户来源). The full path of a customer — their touches in time order, their
current bindings and every bind, rebind and transfer — and of an order: its snapshot and the touches of
its customer up to its creation. Plain dicts, the same for the console page and the API."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import AttributedOrder, BindingHistory
from siyu.attribution.models.shares import Touch
from siyu.attribution.service import ownership
from siyu.core.auth import Principal
from siyu.core.errors import NotFound
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.merchants import service as merchants

MAX_TOUCHES = 200


class _Names:
    """Staff, store and customer names for ids, loaded once per view."""

    def __init__(self, session: Session, merchant_id: int) -> None:
        self.session, self.merchant_id = session, merchant_id
        self.staff: dict[int, str] = {}
        self.stores: dict[int, str] = {}
        self.customers: dict[int, str] = {}

    def load(self, *, staff: set[int], stores: set[int], customer_ids: set[int]) -> _Names:
        self.staff = merchants.staff_names(self.session, self.merchant_id, [i for i in staff if i])
        self.stores = customers.store_names_of(self.session, self.merchant_id, [i for i in stores if i])
        self.customers = customers.nicknames_of(self.session, self.merchant_id, [i for i in customer_ids if i])
        return self


def _touch_dict(t: Touch, names: _Names) -> dict[str, Any]:
    return {"id": t.id, "at": t.at, "channel": t.channel, "share_code": t.share_code,
            "sharer_staff_id": t.sharer_staff_id, "sharer_staff_name": names.staff.get(t.sharer_staff_id or 0, ""),
            "sharer_customer_id": t.sharer_customer_id,
            "sharer_customer_name": names.customers.get(t.sharer_customer_id or 0, ""),
            "target_type": t.target_type, "target_id": t.target_id, "campaign": t.campaign}


def _binding_dict(b: ownership.Binding | None, names: _Names) -> dict[str, Any] | None:
    if b is None:
        return None
    return {"kind": b.kind, "guide_id": b.guide_id, "guide_name": names.staff.get(b.guide_id or 0, ""),
            "store_id": b.store_id, "store_name": names.stores.get(b.store_id or 0, ""),
            "referrer_customer_id": b.referrer_customer_id,
            "referrer_name": names.customers.get(b.referrer_customer_id or 0, ""), "touch_id": b.touch_id,
            "channel": b.channel, "bound_at": b.bound_at, "protected_until": b.protected_until}


_REASONS = (
    (re.compile(r"^first touch \((\w+)\)$"), "First touch through {channel}"),
    (re.compile(r"^touch after protection \((\w+)\)$"), "Touch through {channel} after the protection period"),
    (re.compile(r"^departure of (.+) \((\w+)\)$"), "{name} left ({mode})"),
)
_MODES = {"colleague": "to a colleague", "manager": "to the store manager", "round_robin": "round-robin",
          "none": "nobody to take over"}


def reason_text(reason: str) -> str:
    """The stored reason in the reader's language (the system's own reasons are stored in English)."""
    from siyu.attribution.service.shares import CHANNEL_LABELS

    for pattern, message in _REASONS:
        m = pattern.match(reason or "")
        if m is None:
            continue
        if message.startswith("{name}"):
            return _(message, name=m.group(1), mode=_(_MODES.get(m.group(2), m.group(2))))
        return _(message, channel=_(CHANNEL_LABELS.get(m.group(1), m.group(1))))
    known = {"manual transfer": "Manual transfer", "owner set before any touch": "Owner set before any touch",
             "owner changed": "Owner changed"}
    return _(known[reason]) if reason in known else reason


def history_dict(h: BindingHistory, names: _Names) -> dict[str, Any]:
    return {"id": h.id, "customer_id": h.customer_id, "customer_name": names.customers.get(h.customer_id, ""),
            "kind": h.kind, "action": h.action, "at": h.at, "reason": h.reason, "reason_text": reason_text(h.reason),
            "touch_id": h.touch_id,
            "from": {"guide_id": h.from_guide_id, "guide_name": names.staff.get(h.from_guide_id or 0, ""),
                     "store_id": h.from_store_id, "store_name": names.stores.get(h.from_store_id or 0, ""),
                     "referrer_customer_id": h.from_referrer_customer_id,
                     "referrer_name": names.customers.get(h.from_referrer_customer_id or 0, "")},
            "to": {"guide_id": h.to_guide_id, "guide_name": names.staff.get(h.to_guide_id or 0, ""),
                   "store_id": h.to_store_id, "store_name": names.stores.get(h.to_store_id or 0, ""),
                   "referrer_customer_id": h.to_referrer_customer_id,
                   "referrer_name": names.customers.get(h.to_referrer_customer_id or 0, "")},
            "actor_type": h.actor_type, "actor_id": h.actor_id, "actor_name": h.actor_name}


def names_for_history(session: Session, merchant_id: int, lines: list[BindingHistory]) -> _Names:
    return _Names(session, merchant_id).load(
        staff={x for h in lines for x in (h.from_guide_id, h.to_guide_id) if x},
        stores={x for h in lines for x in (h.from_store_id, h.to_store_id) if x},
        customer_ids={x for h in lines for x in (h.customer_id, h.from_referrer_customer_id, h.to_referrer_customer_id)
                      if x})


def _touches(session: Session, merchant_id: int, customer_id: int, before: Any = None) -> list[Touch]:
    stmt = select(Touch).where(Touch.merchant_id == merchant_id, Touch.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(Touch.at <= before)
    rows = list(session.scalars(stmt.order_by(Touch.at.desc(), Touch.id.desc()).limit(MAX_TOUCHES)))
    return rows[::-1]


def customer_source(session: Session, *, actor: Principal, customer_id: int) -> dict[str, Any]:
    """A customer's path (404 outside the actor's scope): touches oldest first (the latest MAX_TOUCHES),
    bindings, binding history oldest first, and their attributed orders newest first."""
    customer = customers.get_customer(session, customer_id, actor=actor)
    mid = actor.merchant_id
    touches = _touches(session, mid, customer.id)
    guide = ownership.guide_binding(session, merchant_id=mid, customer_id=customer.id)
    referrer = ownership.referrer_binding(session, merchant_id=mid, customer_id=customer.id)
    lines = list(session.scalars(select(BindingHistory).where(
        BindingHistory.merchant_id == mid, BindingHistory.customer_id == customer.id).order_by(BindingHistory.id)))
    orders = list(session.scalars(select(AttributedOrder).where(
        AttributedOrder.merchant_id == mid, AttributedOrder.customer_id == customer.id)
        .order_by(AttributedOrder.id.desc()).limit(50)))
    names = names_for_history(session, mid, lines)
    extra = _Names(session, mid).load(
        staff={x for t in touches for x in (t.sharer_staff_id,) if x} | {guide.guide_id if guide and guide.guide_id else 0},
        stores={guide.store_id if guide and guide.store_id else 0},
        customer_ids={t.sharer_customer_id for t in touches if t.sharer_customer_id}
        | {referrer.referrer_customer_id if referrer and referrer.referrer_customer_id else 0})
    names.staff.update(extra.staff)
    names.stores.update(extra.stores)
    names.customers.update(extra.customers)
    return {
        "customer": {"id": customer.id, "nickname": customer.nickname, "owner_id": customer.owner_id,
                     "store_id": customer.store_id, "created_at": customer.created_at},
        "touches": [_touch_dict(t, names) for t in touches],
        "bindings": {"guide": _binding_dict(guide, names), "referrer": _binding_dict(referrer, names)},
        "history": [history_dict(h, names) for h in lines],
        "orders": [{"order_id": o.order_id, "order_no": o.order_no, "created_at": o.created_at, "paid_at": o.paid_at,
                    "total_cents": o.total_cents, "channel": o.channel} for o in orders],
    }


def order_source(session: Session, *, actor: Principal, order_id: int) -> dict[str, Any]:
    """An order's snapshot (as fixed at creation) and its customer's touches up to then; 404 when the
    order is unknown to attribution or its customer is outside the actor's scope."""
    row = ownership.attributed_order(session, merchant_id=actor.merchant_id, order_id=order_id)
    if row is None:
        raise NotFound()
    customer = customers.get_customer(session, row.customer_id, actor=actor)
    touches = _touches(session, actor.merchant_id, customer.id, before=row.created_at)
    snap = {k: row.snapshot.get(k) for k in ownership.SNAPSHOT_KEYS}
    names = _Names(session, actor.merchant_id).load(
        staff={t.sharer_staff_id for t in touches if t.sharer_staff_id} | {snap["guide_id"] or 0,
                                                                           snap["sharer_staff_id"] or 0},
        stores={snap["store_id"] or 0},
        customer_ids={t.sharer_customer_id for t in touches if t.sharer_customer_id}
        | {snap["sharer_customer_id"] or 0, snap["referrer_customer_id"] or 0})
    return {
        "order": {"id": row.order_id, "order_no": row.order_no, "customer_id": customer.id,
                  "customer_name": customer.nickname, "created_at": row.created_at, "paid_at": row.paid_at,
                  "total_cents": row.total_cents, "paid_cents": row.paid_cents},
        "snapshot": snap,
        "names": {"guide": names.staff.get(snap["guide_id"] or 0, ""),
                  "store": names.stores.get(snap["store_id"] or 0, ""),
                  "sharer_staff": names.staff.get(snap["sharer_staff_id"] or 0, ""),
                  "sharer_customer": names.customers.get(snap["sharer_customer_id"] or 0, ""),
                  "referrer": names.customers.get(snap["referrer_customer_id"] or 0, "")},
        "touches": [_touch_dict(t, names) for t in touches],
    }


def history_page(session: Session, *, actor: Principal, customer_id: int | None = None, kind: str | None = None,
                 action: str | None = None, staff_id: int | None = None, cursor: str | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    """The binding history for the console list and the API. One customer's lines need that customer in
    scope; a guide sees the lines from or to themself; otherwise the list needs `customers.transfer` and
    shows a store manager or agent only lines from or to their stores."""
    store_ids = None
    if customer_id is not None:
        customers.get_customer(session, customer_id, actor=actor)
    elif actor.kind == "staff" and actor.role is not None and actor.role.value == "guide":
        staff_id = actor.staff_id  # a guide sees the moves from and to themself
    else:
        actor.require("customers.transfer")
        if actor.kind == "staff" and actor.role is not None and actor.role.value != "brand_admin":
            store_ids = list(actor.store_ids)
    page = ownership.history(session, merchant_id=actor.merchant_id, customer_id=customer_id, kind=kind,
                             action=action, staff_id=staff_id, store_ids=store_ids, cursor=cursor, limit=limit)
    names = names_for_history(session, actor.merchant_id, page.items)
    return {"items": [history_dict(h, names) for h in page.items], "next_cursor": page.next_cursor}
