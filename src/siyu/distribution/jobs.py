"""Time-driven work: settle commissions whose after-sales window has closed; follow payouts in flight."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core.jobs import ticks
from siyu.distribution import service


@ticks("distribution.settle")
def settle(session: Session, now: dt.datetime) -> int:
    """Settle due commissions into withdrawable balances. Idempotent; safe to run twice at once."""
    return service.settle_due(session, now)


@ticks("distribution.payouts")
def payouts(session: Session, now: dt.datetime) -> int:
    """Ask payout providers about withdrawals still being paid."""
    return service.poll_payouts(session, now)
