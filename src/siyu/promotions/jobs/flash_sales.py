"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — time-driven work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import flash_sales as service


@ticks("promotions.flash_sales")
def advance_flash_sales(session: Session, now: dt.datetime) -> int:
    """Scheduled campaigns become active at their start and end at their end (checkout follows the
    window on its own; this keeps the stored status and the console's lists in step)."""
    return service.advance(session, now)
