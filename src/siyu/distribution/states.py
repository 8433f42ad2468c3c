"""Statuses of distributors, commissions and withdrawals, and the tables of allowed moves."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class DistributorStatus(StrEnum):
    PENDING = "pending"  # applied, waiting for approval
    ACTIVE = "active"
    FROZEN = "frozen"  # accrues nothing, cannot withdraw
    REMOVED = "removed"  # history kept, what is owed still settles
    REJECTED = "rejected"


D = DistributorStatus
DISTRIBUTOR_LABELS = {D.PENDING: "Applied, waiting", D.ACTIVE: "Enrolled", D.FROZEN: "Frozen", D.REMOVED: "Removed from the programme",
                      D.REJECTED: "Rejected"}
DISTRIBUTOR_MACHINE = Transitions(DistributorStatus, {
    D.PENDING: frozenset({D.ACTIVE, D.REJECTED}),
    D.ACTIVE: frozenset({D.FROZEN, D.REMOVED}),
    D.FROZEN: frozenset({D.ACTIVE, D.REMOVED}),
    D.REMOVED: frozenset(),
    # A rejected applicant may apply again.
    D.REJECTED: frozenset({D.PENDING, D.ACTIVE}),
}, message="This distributor cannot move from {old} to {new}.")


class CommissionStatus(StrEnum):
    PENDING = "pending"
    SETTLED = "settled"
    REVERSED = "reversed"


C = CommissionStatus
COMMISSION_LABELS = {C.PENDING: "Pending", C.SETTLED: "Settled", C.REVERSED: "Reversed"}
COMMISSION_MACHINE = Transitions(CommissionStatus, {
    C.PENDING: frozenset({C.SETTLED, C.REVERSED}),
    C.SETTLED: frozenset({C.REVERSED}),
    C.REVERSED: frozenset(),
}, message="This commission cannot move from {old} to {new}.")


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    PAYING = "paying"  # approved; the provider has not answered finally yet
    PAID = "paid"
    REJECTED = "rejected"
    FAILED = "failed"


W = WithdrawalStatus
WITHDRAWAL_LABELS = {W.REQUESTED: "Waiting for review", W.PAYING: "Paying out", W.PAID: "Paid out",
                     W.REJECTED: "Rejected", W.FAILED: "Payout failed"}
WITHDRAWAL_MACHINE = Transitions(WithdrawalStatus, {
    W.REQUESTED: frozenset({W.PAYING, W.PAID, W.REJECTED, W.FAILED}),
    W.PAYING: frozenset({W.PAID, W.FAILED}),
    W.PAID: frozenset(),
    W.REJECTED: frozenset(),
    W.FAILED: frozenset(),
}, message="This withdrawal cannot move from {old} to {new}.")
