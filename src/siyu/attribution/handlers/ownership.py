"""attribution: ownership reactions to other domains' events.

- `staff.disabled` (merchants): the leaver's customers are transferred as chosen on the disable form
  (离职继承, see service/transfer.py).
- `customer.owner_changed` (customers): an owner set outside attribution moves the guide binding too.
- `customer.merged` (customers): bindings and referrals move to the surviving customer.
- `order.created` / `order.paid` (orders): attribution keeps its copy of the order's snapshot.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.attribution.service import ownership, transfer
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import NotFound
from siyu.core.events import Event, handles
from siyu.core.models import OutboxEvent
from siyu.customers import events as customer_events
from siyu.merchants import service as merchants
from siyu.orders import events as order_events


@handles("staff.disabled")
def transfer_leavers_customers(session: Session, event: Event) -> None:
    p = event.payload
    staff = merchants.get_staff(session, p["staff_id"], actor=system_principal(event.merchant_id))
    if staff.active:  # enabled again before this ran: nothing to inherit
        return
    mode = p.get("transfer_mode") or "round_robin"
    transfer.transfer_departed(session, merchant_id=event.merchant_id, staff_id=staff.id,
                               mode=mode if mode in transfer.MODES else "round_robin",
                               colleague_id=p.get("transfer_to_id"), actor=_actor(session, event))


def _actor(session: Session, event: Event) -> Principal:
    """Who disabled the leaver (named in the history lines), else the system."""
    system = system_principal(event.merchant_id)
    by_id = event.payload.get("by_staff_id")
    if not by_id:
        return system
    try:
        by = merchants.get_staff(session, by_id, actor=system)
    except NotFound:
        return system
    actor = merchants.principal_for(session, by)
    return actor if by.active and actor.can("customers.transfer") else system


@handles(customer_events.CUSTOMER_OWNER_CHANGED)
def follow_owner_change(session: Session, event: Event) -> None:
    p = event.payload
    ownership.sync_owner(session, merchant_id=event.merchant_id, customer_id=p["customer_id"],
                         reason=p.get("reason") or "")


@handles(customer_events.CUSTOMER_MERGED)
def move_merged_bindings(session: Session, event: Event) -> None:
    ownership.move_merged(session, merchant_id=event.merchant_id, source_id=event.payload["source_id"],
                          target_id=event.payload["target_id"])


@handles(order_events.ORDER_CREATED)
def keep_order_snapshot(session: Session, event: Event) -> None:
    p = event.payload
    if p.get("kind", "goods") != "goods":  # recharges and paid memberships are nobody's sale
        return
    ownership.record_order(session, merchant_id=event.merchant_id, order_id=p["order_id"], order_no=p["order_no"],
                           customer_id=p["customer_id"], snapshot=p.get("attribution") or {},
                           total_cents=p["total_cents"], created_at=_created_at(session, event))


@handles(order_events.ORDER_PAID)
def keep_order_paid(session: Session, event: Event) -> None:
    p = event.payload
    ownership.record_order_paid(session, merchant_id=event.merchant_id, order_id=p["order_id"],
                                paid_cents=p["paid_cents"], paid_at=dt.datetime.fromisoformat(p["paid_at"]))


def _created_at(session: Session, event: Event) -> dt.datetime:
    if event.created_at is not None:
        return event.created_at
    row = session.get(OutboxEvent, event.id)
    return row.created_at if row is not None else clock.now()
