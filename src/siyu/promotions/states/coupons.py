"""promotions: coupon templates and coupons — statuses and the tables of allowed moves.

A template (the campaign a coupon comes from) is drafted, then published: `scheduled` until its
start, `active` while customers may claim it, `paused` by staff, `ended` at its end or by staff.
A coupon (one per claim) is `available` until an order uses it (`used`); a cancelled or wholly
refunded order gives it back (`available` again while still valid, else `expired`); the expiry job
moves unused coupons past their end to `expired`; staff may `void` an available one.
"""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class TemplateStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


T = TemplateStatus

TEMPLATE_TRANSITIONS = Transitions(TemplateStatus, {
    T.DRAFT: frozenset({T.SCHEDULED, T.ACTIVE, T.ENDED}),
    T.SCHEDULED: frozenset({T.ACTIVE, T.PAUSED, T.ENDED}),
    T.ACTIVE: frozenset({T.PAUSED, T.ENDED}),
    T.PAUSED: frozenset({T.ACTIVE, T.SCHEDULED, T.ENDED}),
    T.ENDED: frozenset(),
}, message="This coupon campaign cannot move from {old} to {new}.")

TEMPLATE_LABELS = {T.DRAFT: "Draft", T.SCHEDULED: "Scheduled", T.ACTIVE: "Running", T.PAUSED: "Paused",
                   T.ENDED: "Ended"}
# Templates that still count as a running campaign (the overview's figure).
LIVE_TEMPLATE_STATUSES = frozenset({T.SCHEDULED, T.ACTIVE})


class CouponStatus(StrEnum):
    AVAILABLE = "available"
    USED = "used"
    EXPIRED = "expired"
    VOID = "void"


C = CouponStatus

COUPON_TRANSITIONS = Transitions(CouponStatus, {
    C.AVAILABLE: frozenset({C.USED, C.EXPIRED, C.VOID}),
    # Given back by a cancelled or wholly refunded order: available again, or expired when its time is up.
    C.USED: frozenset({C.AVAILABLE, C.EXPIRED}),
    C.EXPIRED: frozenset(),
    C.VOID: frozenset(),
}, message="This coupon cannot move from {old} to {new}.")

COUPON_LABELS = {C.AVAILABLE: "Available", C.USED: "Used", C.EXPIRED: "Expired", C.VOID: "Void"}


def assert_template_transition(old: str, new: str) -> None:
    TEMPLATE_TRANSITIONS.check(old, new)


def assert_coupon_transition(old: str, new: str) -> None:
    COUPON_TRANSITIONS.check(old, new)
