"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — statuses and transitions."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class CampaignStatus(StrEnum):
    """Shared by the three plays of this module family (split coupons, payment offers, pop-ups)."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"


C = CampaignStatus
CAMPAIGN_MACHINE = Transitions(CampaignStatus, {
    C.DRAFT: frozenset({C.SCHEDULED, C.LIVE, C.ENDED}),
    C.SCHEDULED: frozenset({C.LIVE, C.PAUSED, C.ENDED}),
    C.LIVE: frozenset({C.PAUSED, C.ENDED}),
    C.PAUSED: frozenset({C.LIVE, C.SCHEDULED, C.ENDED}),
    C.ENDED: frozenset(),
}, message="This campaign cannot move from {old} to {new}.")

CAMPAIGN_LABELS = {C.DRAFT: "Draft", C.SCHEDULED: "Scheduled", C.LIVE: "Running", C.PAUSED: "Paused", C.ENDED: "Ended"}


class PoolStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    EXPIRED = "expired"


P = PoolStatus
POOL_MACHINE = Transitions(PoolStatus, {
    P.OPEN: frozenset({P.FILLED, P.EXPIRED}),
    P.FILLED: frozenset(),
    P.EXPIRED: frozenset(),
}, message="This pool cannot move from {old} to {new}.")

POOL_LABELS = {P.OPEN: "Waiting for friends", P.FILLED: "Split up", P.EXPIRED: "Expired"}
