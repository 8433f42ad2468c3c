"""promotions: the campaign status machine that flash sales and team buys share.

Staff move a campaign draft → scheduled (it then runs inside its window), pause and resume it, or end it
early; the tick moves scheduled → active at `starts_at` and → ended at `ends_at`, and what customers
see follows the window even before the tick ran (`window_status`). Each area keeps its own enum (same
values: draft, scheduled, active, paused, ended) and its own message."""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.core.states import Transitions


def windowed_campaign_machine(status: Any, *, message: str) -> Transitions:
    """The transition table of a campaign that runs in a window, for an enum with DRAFT, SCHEDULED, ACTIVE,
    PAUSED and ENDED."""
    return Transitions(status, {
        status.DRAFT: frozenset({status.SCHEDULED, status.ENDED}),
        # Back to draft to edit before it starts.
        status.SCHEDULED: frozenset({status.DRAFT, status.ACTIVE, status.PAUSED, status.ENDED}),
        status.ACTIVE: frozenset({status.PAUSED, status.ENDED}),
        # Resuming goes back to scheduled; the window then says whether it runs.
        status.PAUSED: frozenset({status.SCHEDULED, status.ENDED}),
        status.ENDED: frozenset(),
    }, message=message)


def window_status(status: str, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime, *,
                  selling: tuple[str, ...] = ("scheduled", "active")) -> str:
    """What the campaign is at `now`: a selling one (scheduled or active) is scheduled before its window,
    active inside it and ended after it; draft, paused and ended stay as they are."""
    if status not in selling:
        return status
    if now >= ends_at:
        return "ended"
    if now < starts_at:
        return "scheduled"
    return "active"
