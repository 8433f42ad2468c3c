"""promotions: payment marketing (支付营销) — time-driven work: rules past their end end."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.promotions.service import payment_offers


@ticks("promotions.payment_offers_end")
def end_rules(session: Session, now: dt.datetime) -> int:
    return payment_offers.end_due(session, now)
