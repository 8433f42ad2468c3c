"""Payment and refund statuses and the one table of allowed moves.

"Refunded" and "partly refunded" are not statuses: they follow from `refunded_cents`.
"""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class PaymentStatus(StrEnum):
    CREATED = "created"
    SUCCEEDED = "succeeded"
    CLOSED = "closed"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# A closed or failed payment may still succeed: the provider took the money after we gave up on it
# (a late payment). The money is recorded; orders refunds it when its order is already cancelled.
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.CREATED: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.CLOSED, PaymentStatus.FAILED}),
    PaymentStatus.CLOSED: frozenset({PaymentStatus.SUCCEEDED}),
    PaymentStatus.FAILED: frozenset({PaymentStatus.SUCCEEDED}),
    PaymentStatus.SUCCEEDED: frozenset(),
}

# A failed refund may be retried with the same refund key (and the same out_refund_no).
REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.FAILED: frozenset({RefundStatus.PENDING}),
    RefundStatus.SUCCEEDED: frozenset(),
}


PAYMENT_MACHINE = Transitions(PaymentStatus, PAYMENT_TRANSITIONS,
                              message="This payment cannot move from {old} to {new}.")
REFUND_MACHINE = Transitions(RefundStatus, REFUND_TRANSITIONS, message="This refund cannot move from {old} to {new}.")


def assert_transition(old: str, new: str) -> None:
    """Raise 409 `invalid_transition` unless a payment may move from `old` to `new`."""
    PAYMENT_MACHINE.check(old, new)


def assert_refund_transition(old: str, new: str) -> None:
    REFUND_MACHINE.check(old, new)


def refund_state(amount_cents: int, refunded_cents: int) -> str:
    """"none", "partly_refunded" or "refunded", derived from the amounts."""
    if refunded_cents <= 0:
        return "none"
    if refunded_cents >= amount_cents:
        return "refunded"
    return "partly_refunded"
