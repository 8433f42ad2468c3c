"""Time-driven work of channels: keep the inbound callback log bounded."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from siyu.channels.models import InboundMessage
from siyu.core.jobs import ticks

# The log is for reading what WeChat sent lately; replays are refused long before this (a callback's
# timestamp must be within minutes of now), so old rows and their keys can go.
KEEP = dt.timedelta(days=90)
BATCH = 5000


@ticks("channels.prune_inbound")
def prune_inbound(session: Session, now: dt.datetime) -> int:
    """Delete inbound-log rows older than KEEP, a batch per run. Safe to run twice at once."""
    ids = list(session.scalars(select(InboundMessage.id).where(InboundMessage.received_at < now - KEEP)
                               .order_by(InboundMessage.id).limit(BATCH)))
    if ids:
        session.execute(delete(InboundMessage).where(InboundMessage.id.in_(ids)))
    return len(ids)
