"""Customer notifications about group-buy orders. There is no message outbox in siyu yet, so each
notice is a row of this domain: the H5 shows it, and a messaging domain can send it on later."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.groupbuy.models import Notification


def notify(session: Session, *, merchant_id: int, customer_ids_orders: list[tuple[int, int | None]], kind: str,
           text: str) -> int:
    """One notice per (customer, order); returns how many were written."""
    if not customer_ids_orders:
        return 0
    now = clock.now()
    session.execute(insert(Notification), [
        {"merchant_id": merchant_id, "customer_id": customer_id, "kind": kind, "order_id": order_id,
         "text": text[:500], "created_at": now}
        for customer_id, order_id in customer_ids_orders
    ])
    return len(customer_ids_orders)


def notifications_of(session: Session, *, merchant_id: int, customer_id: int, limit: int = 20) -> list[Notification]:
    return list(session.scalars(
        select(Notification).where(Notification.merchant_id == merchant_id, Notification.customer_id == customer_id)
        .order_by(Notification.id.desc()).limit(limit)))


def mark_read(session: Session, *, merchant_id: int, customer_id: int) -> None:
    session.execute(update(Notification).where(
        Notification.merchant_id == merchant_id, Notification.customer_id == customer_id,
        Notification.read_at.is_(None)).values(read_at=clock.now()))
