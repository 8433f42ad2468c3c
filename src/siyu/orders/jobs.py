"""Time-driven work: unpaid orders expire; shipped orders complete by themselves after N days."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.orders import service


@ticks("orders.expire_unpaid")
def expire_unpaid(session: Session, now: dt.datetime) -> int:
    """Cancel orders not paid within `order_expiry_minutes`, releasing their stock. Idempotent."""
    return len(service.expire_unpaid(session, now))


@ticks("orders.auto_complete")
def auto_complete(session: Session, now: dt.datetime) -> int:
    """Complete shipped orders `auto_complete_days` after shipping. Idempotent."""
    return len(service.auto_complete(session, now))
