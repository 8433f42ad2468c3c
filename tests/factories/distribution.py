"""Factories for distribution: the programme, distributors in a chain, rules, and orders that carry a
referrer in their attribution (as attribution's snapshot would)."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from siyu.core import events
from siyu.core.auth import Principal, system_principal
from siyu.customers.models import Customer
from siyu.distribution import service
from siyu.distribution.models import CommissionRule, Distributor
from siyu.merchants.models import Merchant
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.orders import customer_principal

_seq = itertools.count(1)


def admin(merchant: Merchant) -> Principal:
    return system_principal(merchant.id)


def set_programme(session: Session, *, merchant: Merchant, **changes: Any) -> None:
    service.update_programme(session, actor=admin(merchant), **changes)


def make_distributor(session: Session, *, merchant: Merchant, customer: Customer | None = None,
                     upline: Distributor | None = None, status: str = "active", grade: str | None = None,
                     nickname: str | None = None) -> Distributor:
    """A distributor (a customer who joined), optionally recruited by `upline`."""
    customer = customer or make_customer(session, merchant=merchant, nickname=nickname or f"分销员{next(_seq)}")
    row = service.join(session, actor=customer_principal(customer),
                       invite_code=upline.invite_code if upline else None)
    if row.status == "pending" and status != "pending":
        service.review(session, actor=admin(merchant), distributor_id=row.id, approve=True)
    if status in ("frozen", "removed"):
        service.change_status(session, actor=admin(merchant), distributor_id=row.id, status=status)
    if grade:
        row.grade = grade
    session.flush()
    return row


def make_rule(session: Session, *, merchant: Merchant, scope: str = "default", level: int = 1, kind: str = "bps",
              value: int = 1000, scope_id: int | None = None, grade: str | None = None,
              audience: str = "distributor", status: str = "active") -> CommissionRule:
    programme = service.get_programme(session, merchant_id=merchant.id)
    return service.create_rule(session, actor=admin(merchant), status=status, grade_codes=[
        g["code"] for g in service.grades(programme)], data={"audience": audience, "scope": scope, "scope_id": scope_id,
                                                             "grade": grade, "level": level, "kind": kind,
                                                             "value": value})


def refer(session: Session, order: Order, referrer: Distributor | Customer | None, **extra: Any) -> Order:
    """Give an order the attribution snapshot of a customer bound to `referrer` (set at creation by attribution)."""
    customer_id = referrer.customer_id if isinstance(referrer, Distributor) else (referrer.id if referrer else None)
    order.attribution = {**(order.attribution or {}), "referrer_customer_id": customer_id, **extra}
    session.flush()
    return order


def run_events(session: Session) -> int:
    """Run the handlers of the events this (never committed) test session emitted, as a commit would."""
    pending = session.info.pop(events.PENDING_KEY, [])
    session.flush()
    for ev in pending:
        events.run_event(ev)
    session.expire_all()
    return len(pending)
