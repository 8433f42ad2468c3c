"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — statuses and transitions.

Staff move a campaign draft → scheduled (it then runs in its window), pause and resume it, or end it
early. The tick moves scheduled → active at `starts_at` and scheduled/active → ended at `ends_at`; what
customers see follows the window even before the tick ran (`effective_status`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from siyu.core.states import Transitions
from siyu.promotions.states.common import window_status, windowed_campaign_machine


class FlashSaleStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


F = FlashSaleStatus
FLASH_SALE_MACHINE = windowed_campaign_machine(FlashSaleStatus, message="This flash sale cannot move from {old} to {new}.")

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
    return window_status(status, starts_at, ends_at, now, selling=SELLING)
