"""Statuses of leaders, waves, wave orders and commissions, and their allowed moves."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class LeaderStatus(StrEnum):
    APPLIED = "applied"
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"
    REJECTED = "rejected"


L = LeaderStatus
LEADER_MACHINE = Transitions(LeaderStatus, {
    L.APPLIED: frozenset({L.ACTIVE, L.REJECTED}),
    L.ACTIVE: frozenset({L.FROZEN, L.CLOSED}),
    L.FROZEN: frozenset({L.ACTIVE, L.CLOSED}),
    # A rejected applicant may apply again.
    L.REJECTED: frozenset({L.APPLIED}),
    L.CLOSED: frozenset(),
}, message="This leader cannot move from {old} to {new}.")

LEADER_LABELS = {L.APPLIED: "Applied", L.ACTIVE: "Taking orders", L.FROZEN: "Frozen", L.CLOSED: "Closed",
                 L.REJECTED: "Rejected"}


class WaveStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


W = WaveStatus
WAVE_MACHINE = Transitions(WaveStatus, {
    W.DRAFT: frozenset({W.OPEN, W.CANCELLED}),
    W.OPEN: frozenset({W.CLOSED, W.CANCELLED}),
    W.CLOSED: frozenset(),
    W.CANCELLED: frozenset(),
}, message="This wave cannot move from {old} to {new}.")

WAVE_LABELS = {W.DRAFT: "Draft", W.OPEN: "Open", W.CLOSED: "Closed (cut off)", W.CANCELLED: "Cancelled"}


class WaveOrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    DELIVERED = "delivered"  # at the point, waiting for pickup
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


WO = WaveOrderStatus
WAVE_ORDER_MACHINE = Transitions(WaveOrderStatus, {
    WO.PENDING_PAYMENT: frozenset({WO.PAID, WO.CANCELLED}),
    WO.PAID: frozenset({WO.DELIVERED, WO.REFUNDED}),
    WO.DELIVERED: frozenset({WO.PICKED_UP, WO.REFUNDED}),
    WO.PICKED_UP: frozenset({WO.REFUNDED}),
    WO.CANCELLED: frozenset(),
    WO.REFUNDED: frozenset(),
}, message="This group-buy order cannot move from {old} to {new}.")

OPEN_ORDER_STATUSES = (WO.PENDING_PAYMENT.value, WO.PAID.value, WO.DELIVERED.value)
WAVE_ORDER_LABELS = {WO.PENDING_PAYMENT: "Pending payment", WO.PAID: "Paid, waiting for delivery",
                     WO.DELIVERED: "Ready for pickup", WO.PICKED_UP: "Picked up", WO.CANCELLED: "Cancelled",
                     WO.REFUNDED: "Refunded"}


class CommissionStatus(StrEnum):
    PENDING = "pending"
    SETTLED = "settled"
    REVERSED = "reversed"  # wholly refunded before settlement
