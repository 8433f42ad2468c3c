"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — statuses and transitions.

A campaign: staff move it draft → scheduled (it runs in its window), pause and resume it, or end it.
A bargain: open (friends cut) → ordered (the starter placed an order at its price) → bought (paid);
an ordered bargain whose order is cancelled goes back to open, or to expired when its time is up;
an open bargain expires at `expires_at` (the tick) or when its campaign ends."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class BargainCampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PAUSED = "paused"
    ENDED = "ended"


C = BargainCampaignStatus
CAMPAIGN_MACHINE = Transitions(BargainCampaignStatus, {
    C.DRAFT: frozenset({C.SCHEDULED, C.ENDED}),
    C.SCHEDULED: frozenset({C.DRAFT, C.PAUSED, C.ENDED}),
    C.PAUSED: frozenset({C.SCHEDULED, C.ENDED}),
    C.ENDED: frozenset(),
}, message="This bargain campaign cannot move from {old} to {new}.")

CAMPAIGN_LABELS = {C.DRAFT: "Draft", C.SCHEDULED: "Scheduled", C.PAUSED: "Paused", C.ENDED: "Ended"}


class BargainStatus(StrEnum):
    OPEN = "open"
    ORDERED = "ordered"
    BOUGHT = "bought"
    EXPIRED = "expired"


B = BargainStatus
BARGAIN_MACHINE = Transitions(BargainStatus, {
    B.OPEN: frozenset({B.ORDERED, B.EXPIRED}),
    B.ORDERED: frozenset({B.BOUGHT, B.OPEN, B.EXPIRED}),
    B.BOUGHT: frozenset(),
    B.EXPIRED: frozenset(),
}, message="This bargain cannot move from {old} to {new}.")

BARGAIN_LABELS = {B.OPEN: "Bargaining", B.ORDERED: "Ordered", B.BOUGHT: "Bought", B.EXPIRED: "Expired"}


def assert_campaign_transition(old: str, new: str) -> None:
    CAMPAIGN_MACHINE.check(old, new)


def assert_bargain_transition(old: str, new: str) -> None:
    BARGAIN_MACHINE.check(old, new)
