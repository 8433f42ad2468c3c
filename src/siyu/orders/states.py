"""Order and refund-request statuses and the one table of allowed moves.

"Partly refunded" is not a status: a partly refunded order keeps its status and lists its refunds;
it becomes `refunded` when every unit it sold has been refunded (derived from the amounts).
"""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import InvalidTransition, Transitions  # noqa: F401 (re-exported)


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    READY_FOR_PICKUP = "ready_for_pickup"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


S = OrderStatus

# Labels for pages (message ids; translated with `_()` where shown).
STATUS_LABELS = {
    S.PENDING_PAYMENT: "Pending payment",
    S.PAID: "Paid",
    S.SHIPPED: "Shipped",
    S.READY_FOR_PICKUP: "Ready for pickup",
    S.COMPLETED: "Completed",
    S.CANCELLED: "Cancelled",
    S.REFUNDING: "Refunding",
    S.REFUNDED: "Refunded",
}
FULFILMENT_LABELS = {"delivery": "Delivery", "pickup": "Store pickup", "leader": "Leader pickup",
                     "virtual": "No shipping"}

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    # Paid leader orders are completed by the group-buying hand-out, without shipping; virtual
    # (service) orders are completed as soon as they are paid.
    S.PAID: frozenset({S.SHIPPED, S.READY_FOR_PICKUP, S.COMPLETED, S.REFUNDING, S.REFUNDED}),
    S.SHIPPED: frozenset({S.COMPLETED, S.REFUNDING, S.REFUNDED}),
    S.READY_FOR_PICKUP: frozenset({S.COMPLETED, S.REFUNDING, S.REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDING, S.REFUNDED}),
    # A rejected whole-order refund returns the order to where it was.
    S.REFUNDING: frozenset({S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.COMPLETED, S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# Statuses in which a customer may ask for a refund (completed: within the after-sales window).
REFUNDABLE = frozenset({S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.COMPLETED})
# Orders whose money has been taken and not (wholly) given back.
OPEN_PAID = frozenset({S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.REFUNDING})


ORDER_MACHINE = Transitions(OrderStatus, TRANSITIONS, message="This order cannot move from {old} to {new}.")


def can_transition(old: str, new: str) -> bool:
    return ORDER_MACHINE.allowed(old, new)


def assert_transition(old: str, new: str) -> None:
    """Raise InvalidTransition (409 `invalid_transition`) unless an order may move from `old` to `new`."""
    ORDER_MACHINE.check(old, new)


class RefundStatus(StrEnum):
    PENDING = "pending"  # waiting for staff review
    PROCESSING = "processing"  # approved; the provider is returning the money
    REFUNDED = "refunded"
    REJECTED = "rejected"


REFUND_STATUS_LABELS = {
    RefundStatus.PENDING: "Pending review",
    RefundStatus.PROCESSING: "Processing",
    RefundStatus.REFUNDED: "Refunded",
    RefundStatus.REJECTED: "Rejected",
}

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.PROCESSING, RefundStatus.REFUNDED, RefundStatus.REJECTED}),
    RefundStatus.PROCESSING: frozenset({RefundStatus.REFUNDED}),
    RefundStatus.REFUNDED: frozenset(),
    RefundStatus.REJECTED: frozenset(),
}


REFUND_MACHINE = Transitions(RefundStatus, REFUND_TRANSITIONS,
                             message="This refund request cannot move from {old} to {new}.")


def assert_refund_transition(old: str, new: str) -> None:
    REFUND_MACHINE.check(old, new)
