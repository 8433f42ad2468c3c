"""promotions demo: what the areas' seeds share — placing and paying a demo order in the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.merchants import service as merchants
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.payments import service as payments


def pay_in_sandbox(session: Session, ctx: DemoContext, *, customer_id: int, request: CheckoutRequest,
                   at: dt.datetime, then: Callable[[int], Any] | None = None) -> int | None:
    """Place and pay one order at `at` through checkout and a sandbox payment; its id, or None if refused.
    `then(order_id)` runs inside the same savepoint once the order is paid (a refusal undoes it all)."""
    actor = Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=customer_id)
    merchant = merchants.get_merchant(session, ctx.merchant_id)
    with clock.frozen(at):
        try:
            with session.begin_nested():
                order = orders.create_order(session, actor=actor, request=request)
                start = orders.pay_order(session, order.id, actor=actor, method="sandbox")
                payments.sandbox_confirm(session, merchant=merchant, payment_id=start.payment_id,
                                         customer_id=customer_id)
                orders.record_payment(session, merchant_id=ctx.merchant_id, order_id=order.id,
                                      payment_id=start.payment_id, amount_cents=order.payable_cents, paid_at=at)
                if then is not None:
                    then(order.id)
        except AppError:
            return None
    return order.id
