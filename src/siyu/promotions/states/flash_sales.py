"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — statuses and transitions.

Staff move a campaign draft → scheduled (it then runs in its window), pause and resume it, or end it
early. The tick moves scheduled → active at `starts_at` and scheduled/active → ended at `ends_at`; what
customers see follows the window even before the tick ran (`effective_status`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from siyu.core.states import Transitions


class FlashSaleStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


F = FlashSaleStatus
FLASH_SALE_MACHINE = Transitions(FlashSaleStatus, {
    F.DRAFT: frozenset({F.SCHEDULED, F.ENDED}),
    # Back to draft to edit before it starts.
    F.SCHEDULED: frozenset({F.DRAFT, F.ACTIVE, F.PAUSED, F.ENDED}),
    F.ACTIVE: frozenset({F.PAUSED, F.ENDED}),
    # Resuming goes back to scheduled; the window then says whether it is running.
    F.PAUSED: frozenset({F.SCHEDULED, F.ENDED}),
    F.ENDED: frozenset(),
}, message="This flash sale cannot move from {old} to {new}.")

FLASH_SALE_LABELS = {F.DRAFT: "Draft", F.SCHEDULED: "Scheduled", F.ACTIVE: "Running", F.PAUSED: "Paused",
                     F.ENDED: "Ended"}

# Stored statuses under which the campaign sells while inside its window.
SELLING = (F.SCHEDULED.value, F.ACTIVE.value)


class FlashOrderStatus(StrEnum):
    TAKEN = "taken"
    PAID = "paid"
    RELEASED = "released"


FO = FlashOrderStatus
FLASH_ORDER_MACHINE = Transitions(FlashOrderStatus, {
    FO.TAKEN: frozenset({FO.PAID, FO.RELEASED}),
    FO.PAID: frozenset(),
    FO.RELEASED: frozenset(),
}, message="This flash-sale order cannot move from {old} to {new}.")


def effective_status(status: str, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> str:
    """What the campaign is at `now`: a scheduled or active campaign is scheduled before its window,
    active inside it and ended after it; draft, paused and ended stay as they are."""
    if status not in SELLING:
        return status
    if now >= ends_at:
        return F.ENDED.value
    if now < starts_at:
        return F.SCHEDULED.value
    return F.ACTIVE.value
