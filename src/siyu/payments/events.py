"""Events the payments domain emits (through core.events.emit, in the transaction that changes the
payment). `orders` subscribes: payment.succeeded marks its order paid (or refunds a late payment
of a cancelled order); payment.refunded records the refund on the order. The plain case (a pending
order paid in full) orders already records in the payment's own transaction, through
`service.register_payment_recorder`, and the event is then written processed (its handler would find it
done: `core.events.emit` with `handled`)."""

from __future__ import annotations

import dataclasses
import datetime as dt

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_REFUNDED = "payment.refunded"


@dataclasses.dataclass(frozen=True)
class PaymentSucceeded:
    payment_id: int
    order_id: int
    customer_id: int
    amount_cents: int
    method: str
    paid_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class PaymentRefunded:
    payment_id: int
    order_id: int
    refund_id: int
    amount_cents: int
