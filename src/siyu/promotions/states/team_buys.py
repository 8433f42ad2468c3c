"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — statuses and transitions.

A campaign: staff move it draft → scheduled (it then runs inside its window), pause and resume it, or
end it early; the tick moves scheduled → active at `starts_at` and → ended at `ends_at`, and what
customers see follows the window even before the tick ran (`effective_status`).
A team: forming (opened by its first paid order, its clock running) → complete (N members paid) or
failed (its time ran out first: every paid member is refunded).
A member: pending (order placed, not paid) → paid (holds a seat) → refunded (the team failed), or
pending → cancelled (the order was cancelled or expired unpaid), or pending → refunded (paid too late:
the team was full, failed or the campaign over, and the campaign refunds the loser).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from siyu.core.states import Transitions
from siyu.promotions.states.common import window_status, windowed_campaign_machine


class TeamBuyStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


C = TeamBuyStatus
CAMPAIGN_MACHINE = windowed_campaign_machine(TeamBuyStatus, message="This team-buy campaign cannot move from {old} to {new}.")

CAMPAIGN_LABELS = {C.DRAFT: "Draft", C.SCHEDULED: "Scheduled", C.ACTIVE: "Running", C.PAUSED: "Paused",
                   C.ENDED: "Ended"}

# Stored statuses under which the campaign sells while inside its window.
SELLING = (C.SCHEDULED.value, C.ACTIVE.value)


def effective_status(status: str, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> str:
    """What the campaign is at `now`: scheduled or active means scheduled before the window, active
    inside it and ended after it; draft, paused and ended stay as they are."""
    return window_status(status, starts_at, ends_at, now, selling=SELLING)


class TeamStatus(StrEnum):
    FORMING = "forming"
    COMPLETE = "complete"
    FAILED = "failed"


T = TeamStatus
TEAM_MACHINE = Transitions(TeamStatus, {
    T.FORMING: frozenset({T.COMPLETE, T.FAILED}),
    T.COMPLETE: frozenset(),
    T.FAILED: frozenset(),
}, message="This team cannot move from {old} to {new}.")

TEAM_LABELS = {T.FORMING: "Forming", T.COMPLETE: "Complete", T.FAILED: "Failed"}


class MemberStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


M = MemberStatus
MEMBER_MACHINE = Transitions(MemberStatus, {
    M.PENDING: frozenset({M.PAID, M.CANCELLED, M.REFUNDED}),
    M.PAID: frozenset({M.REFUNDED}),
    M.REFUNDED: frozenset(),
    M.CANCELLED: frozenset(),
}, message="This team member cannot move from {old} to {new}.")

MEMBER_LABELS = {M.PENDING: "Pending payment", M.PAID: "Paid", M.REFUNDED: "Refunded", M.CANCELLED: "Cancelled"}

# Memberships that hold (or are about to pay for) a place: they count for the per-customer limit and
# for "nobody joins the same team twice".
LIVE_MEMBER = (M.PENDING.value, M.PAID.value)

# What the payment that loses the race for a team's last seat gets.
ON_FULL = ("refund", "new_team")
