"""After-sales: refund requests for the whole order or some units of some lines, staff review,
the money back through the provider that took it, optional restock.

Amounts: a line's paid amount is split per unit by largest remainder, so the parts of all its
refunds add up to exactly what was paid for it; shipping goes back with the last units of an order
that was never shipped. Quantities and amounts already claimed by pending or finished requests
count, so nothing can be refunded twice or beyond what was paid.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, get_scoped, scoped
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.core.events import emit
from siyu.core.money import split_largest_remainder
from siyu.core.pagination import Page, paginate
from siyu.customers import service as customers
from siyu.orders import events as ev
from siyu.orders.models import Order, OrderLine, RefundLine, RefundRequest
from siyu.orders.service.common import (
    add_history,
    after_sales_closes_at,
    change_status,
    get_order,
    lock_order,
    order_lines,
    valid_id,
)
from siyu.orders.states import REFUNDABLE, OrderStatus, RefundStatus, assert_refund_transition
from siyu.payments import service as payments

S = OrderStatus
R = RefundStatus


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"
    message = "This is more than can still be refunded."


def unit_prefix(paid_cents: int, quantity: int, units: int) -> int:
    """What the first `units` units of a line cost: its paid amount split per unit by largest remainder."""
    if units <= 0 or quantity <= 0:
        return 0
    return sum(split_largest_remainder(paid_cents, [1] * quantity)[:units])


@dataclasses.dataclass
class _Claimed:
    quantity: int = 0
    amount_cents: int = 0


def _claims(session: Session, order: Order) -> tuple[dict[int, _Claimed], int, int, int]:
    """Per line: units and amounts claimed by requests not rejected; and the order's claimed
    total value, money and shipping."""
    per_line: dict[int, _Claimed] = {}
    rows = session.execute(
        select(RefundLine.order_line_id, func.sum(RefundLine.quantity), func.sum(RefundLine.amount_cents))
        .join(RefundRequest, RefundRequest.id == RefundLine.refund_id)
        .where(RefundRequest.order_id == order.id, RefundRequest.status != R.REJECTED.value)
        .group_by(RefundLine.order_line_id)
    )
    for line_id, qty, amount in rows:
        per_line[line_id] = _Claimed(quantity=int(qty or 0), amount_cents=int(amount or 0))
    total, money, shipping = session.execute(
        select(func.coalesce(func.sum(RefundRequest.amount_cents), 0), func.coalesce(func.sum(RefundRequest.money_cents), 0),
               func.coalesce(func.sum(RefundRequest.shipping_cents), 0))
        .where(RefundRequest.order_id == order.id, RefundRequest.status != R.REJECTED.value)
    ).one()
    return per_line, int(total), int(money), int(shipping)


def refundable_lines(session: Session, order: Order) -> list[dict[str, Any]]:
    """Per line: how many units can still be asked for (not claimed by another request)."""
    claimed, *_ = _claims(session, order)
    return [{"order_line_id": line.id, "quantity": line.quantity,
             "refundable_quantity": line.quantity - claimed.get(line.id, _Claimed()).quantity}
            for line in order_lines(session, order.id)]


def _check_window(session: Session, order: Order) -> None:
    if order.status not in REFUNDABLE:
        raise Conflict("This order cannot be refunded now.", code="not_refundable", details={"status": order.status})
    if order.status == S.COMPLETED:
        closes = after_sales_closes_at(order, session=session)
        if closes is not None and clock.now() > closes:
            raise Conflict("The after-sales period of this order has ended.", code="after_sales_closed",
                           details={"closed_at": closes.isoformat()})


def request_refund(session: Session, order_id: int, *, actor: Principal, reason: str,
                   lines: list[tuple[int, int]] | None = None, photos: list[str] | None = None,
                   source: str = "customer") -> RefundRequest:
    """Ask for money back: some units of some lines (`[(order_line_id, quantity)]`), or without
    lines everything not yet claimed. Allowed while paid, shipped, ready for pickup, or completed
    within the after-sales window. A request covering everything left puts the order in
    `refunding` until it is decided. 409 `refund_exceeds_paid` beyond what is left."""
    if actor.kind == "staff":
        actor.require("orders.refund")
    order = get_order(session, order_id, actor=actor, lock=True)
    if (order.kind or "goods") != "goods":
        # A service order is refunded by the domain that sold it, under its own rules
        # (service_orders.refund_service_order), not through after-sales.
        if source != "service":
            raise Conflict("This order is refunded by the service it bought, not through after-sales.",
                           code="service_order_refund")
        if order.status not in REFUNDABLE:
            raise Conflict("This order cannot be refunded now.", code="not_refundable",
                           details={"status": order.status})
    else:
        _check_window(session, order)
    all_lines = order_lines(session, order.id)
    by_id = {line.id: line for line in all_lines}
    claimed, claimed_total, claimed_money, claimed_shipping = _claims(session, order)

    def left(line: OrderLine) -> int:
        return line.quantity - claimed.get(line.id, _Claimed()).quantity

    wanted: dict[int, int] = {}
    if lines:
        for line_id, quantity in lines:
            if line_id not in by_id:
                raise NotFound("This order has no such line.", code="order_line_not_found",
                               details={"order_line_id": line_id})
            wanted[line_id] = wanted.get(line_id, 0) + quantity
        for line_id, quantity in wanted.items():
            if quantity <= 0 or quantity > left(by_id[line_id]):
                raise RefundExceedsPaid(details={"order_line_id": line_id, "requested": quantity,
                                                 "refundable_quantity": left(by_id[line_id])})
    else:
        wanted = {line.id: left(line) for line in all_lines if left(line) > 0}
    if not wanted:
        raise RefundExceedsPaid("Everything in this order has already been refunded or asked for.",
                                details={"refundable_quantity": 0})

    refund_lines: list[tuple[OrderLine, int, int]] = []
    for line_id, quantity in wanted.items():
        line = by_id[line_id]
        c = claimed.get(line_id, _Claimed())
        amount = max(0, unit_prefix(line.paid_cents, line.quantity, c.quantity + quantity) - c.amount_cents)
        refund_lines.append((line, quantity, amount))
    covers_rest = all(left(line) == wanted.get(line.id, 0) for line in all_lines)
    shipping = 0
    if covers_rest and order.shipped_at is None:
        shipping = max(0, order.shipping_cents - claimed_shipping)
    amount = sum(a for _, _, a in refund_lines) + shipping
    if claimed_total + amount > order.total_cents:
        raise RefundExceedsPaid(details={"refundable_cents": max(0, order.total_cents - claimed_total)})
    # Money back through the provider vs payment parts given back, in the order's proportion;
    # cumulative, so the money parts of all refunds add up exactly to the money taken.
    after = claimed_total + amount
    money_after = order.paid_cents if after >= order.total_cents or order.total_cents == 0 else \
        after * order.paid_cents // order.total_cents
    money = max(0, min(amount, money_after - claimed_money))

    refund = RefundRequest(
        merchant_id=order.merchant_id, order_id=order.id, customer_id=order.customer_id, owner_id=order.owner_id,
        store_id=order.store_id, status=R.PENDING.value, whole_order=covers_rest, amount_cents=amount,
        money_cents=money, parts_cents=amount - money, shipping_cents=shipping, reason=reason[:200],
        photos=list(photos or [])[:9], source=source, created_at=clock.now(),
    )
    session.add(refund)
    session.flush()
    session.add_all([RefundLine(merchant_id=order.merchant_id, refund_id=refund.id, order_line_id=line.id,
                                quantity=quantity, amount_cents=line_amount)
                     for line, quantity, line_amount in refund_lines])
    if covers_rest:
        order.status_before_refund = order.status
        change_status(session, order, S.REFUNDING, actor=actor, note=f"Refund request {refund.id}: {reason}"[:500])
    else:
        add_history(session, order, from_status=order.status, to_status=order.status, actor=actor,
                    note=f"Refund request {refund.id} for {amount} cents: {reason}"[:500])
    session.flush()
    return refund


def get_refund(session: Session, refund_id: int, *, actor: Principal, lock: bool = False) -> RefundRequest:
    if not valid_id(refund_id):
        raise NotFound()
    if actor.kind == "customer":
        row = session.scalars(select(RefundRequest).where(
            RefundRequest.id == refund_id, RefundRequest.merchant_id == actor.merchant_id,
            RefundRequest.customer_id == actor.customer_id)).first()
        if row is None:
            raise NotFound()
        return row
    return get_scoped(session, RefundRequest, refund_id, actor, lock=lock)


def refund_lines_of(session: Session, refund_ids: list[int]) -> dict[int, list[RefundLine]]:
    out: dict[int, list[RefundLine]] = {i: [] for i in refund_ids}
    if refund_ids:
        for row in session.scalars(select(RefundLine).where(RefundLine.refund_id.in_(refund_ids)).order_by(RefundLine.id)):
            out[row.refund_id].append(row)
    return out


def refunds_of_order(session: Session, order_id: int) -> list[RefundRequest]:
    return list(session.scalars(select(RefundRequest).where(RefundRequest.order_id == order_id)
                                .order_by(RefundRequest.id)))


def list_refunds(session: Session, *, actor: Principal, status: str | None = None, order_id: int | None = None,
                 cursor: str | None = None, limit: int | None = None) -> Page[RefundRequest]:
    """Refund requests in the actor's scope (a customer: their own), newest first."""
    if actor.kind == "customer":
        stmt = select(RefundRequest).where(RefundRequest.merchant_id == actor.merchant_id,
                                           RefundRequest.customer_id == actor.customer_id)
    else:
        stmt = scoped(select(RefundRequest), RefundRequest, actor)
    if status:
        stmt = stmt.where(RefundRequest.status == status)
    if order_id:
        stmt = stmt.where(RefundRequest.order_id == order_id)
    return paginate(session, stmt, RefundRequest.id, cursor=cursor, limit=limit)


def _lock_pair(session: Session, refund_id: int, actor: Principal) -> tuple[RefundRequest, Order]:
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()
    actor.require("orders.refund")
    refund = get_refund(session, refund_id, actor=actor)
    # Lock the order first (every path locks order before refund), then the refund row.
    order = lock_order(session, refund.order_id, merchant_id=refund.merchant_id)
    assert order is not None
    refund = session.scalars(select(RefundRequest).where(RefundRequest.id == refund.id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    return refund, order


def approve_refund(session: Session, refund_id: int, *, actor: Principal, restock: bool = False) -> RefundRequest:
    """Approve a pending request: the money goes back through the provider that took it (payment
    parts are given back by their owners on order.refunded), optionally the units go back into
    stock. Approving a request whose provider refund failed retries it."""
    refund, order = _lock_pair(session, refund_id, actor)
    if refund.status == R.PENDING:
        assert_refund_transition(refund.status, R.PROCESSING)
        refund.status = R.PROCESSING.value
        refund.restock = restock
        refund.reviewed_by = actor.subject_id
        refund.reviewed_at = clock.now()
    elif refund.status != R.PROCESSING:
        raise Conflict("This refund request has already been decided.", code="refund_decided",
                       details={"status": refund.status})
    if refund.money_cents > 0:
        if order.payment_id is None:
            raise Conflict("This order has no payment to refund.", code="no_payment")
        result = payments.refund(session, merchant_id=order.merchant_id, payment_id=order.payment_id,
                                 amount_cents=refund.money_cents, reason=refund.reason,
                                 refund_key=f"after_sale:{refund.id}")
        refund.payment_refund_id = result.refund_id
        session.flush()
        if result.status != "succeeded":
            # "pending": the provider's notification finishes it (payment.refunded); "failed": retry.
            return refund
    complete_refund(session, refund, order, actor=actor)
    return refund


def complete_refund(session: Session, refund: RefundRequest, order: Order, *, actor: Principal | None) -> None:
    """The money is back: record it on the lines and the order, restock when asked, derive the
    order's status (refunded when every unit is), emit order.refunded and update the customer's stats."""
    assert_refund_transition(refund.status, R.REFUNDED)
    now = clock.now()
    refund.status = R.REFUNDED.value
    refund.refunded_at = now
    lines = order_lines(session, order.id)
    by_id = {line.id: line for line in lines}
    refunded_lines = []
    for rl in refund_lines_of(session, [refund.id])[refund.id]:
        line = by_id[rl.order_line_id]
        line.refunded_quantity += rl.quantity
        line.refunded_cents += rl.amount_cents
        refunded_lines.append(ev.RefundedLine(order_line_id=line.id, sku_id=line.sku_id, product_id=line.product_id,
                                              quantity=rl.quantity, amount_cents=rl.amount_cents))
    if refund.restock:
        for rl in sorted(refunded_lines, key=lambda x: x.sku_id):
            catalog.post_stock(session, merchant_id=order.merchant_id, sku_id=rl.sku_id, delta=rl.quantity,
                               reason="return", idempotency_key=f"refund:{refund.id}:restock:{rl.order_line_id}",
                               note=order.order_no, ref_type="refund", ref_id=refund.id, actor=actor)
    order.refunded_cents += refund.amount_cents
    fully = all(line.refunded_quantity >= line.quantity for line in lines)
    note = f"Refund {refund.id}: {refund.amount_cents} cents back."
    if fully:
        change_status(session, order, S.REFUNDED, actor=actor, note=note)
    elif order.status == S.REFUNDING:
        change_status(session, order, order.status_before_refund or S.PAID, actor=actor, note=note)
    else:
        add_history(session, order, from_status=order.status, to_status=order.status, actor=actor, note=note, at=now)
    emit(session, ev.ORDER_REFUNDED, ev.OrderRefunded(
        order_id=order.id, refund_id=refund.id, customer_id=order.customer_id, amount_cents=refund.amount_cents,
        money_cents=refund.money_cents, parts_cents=refund.parts_cents, shipping_cents=refund.shipping_cents,
        lines=refunded_lines, order_refunded_cents=order.refunded_cents, order_total_cents=order.total_cents,
        fully_refunded=fully, refunded_at=now, kind=order.kind or "goods"), merchant_id=order.merchant_id)
    if (order.kind or "goods") == "goods":  # service orders are not counted in the customer's spend
        customers.record_refund(session, merchant_id=order.merchant_id, customer_id=order.customer_id,
                                order_id=order.id, amount_cents=refund.amount_cents, refunded_at=now,
                                refund_id=refund.id)
    session.flush()


def reject_refund(session: Session, refund_id: int, *, actor: Principal, reason: str) -> RefundRequest:
    """Turn a pending request down with a reason; an order held in `refunding` returns to where it was."""
    refund, order = _lock_pair(session, refund_id, actor)
    if refund.status != R.PENDING:
        raise Conflict("This refund request has already been decided.", code="refund_decided",
                       details={"status": refund.status})
    assert_refund_transition(refund.status, R.REJECTED)
    refund.status = R.REJECTED.value
    refund.reject_reason = reason[:200]
    refund.reviewed_by = actor.subject_id
    refund.reviewed_at = clock.now()
    note = f"Refund request {refund.id} rejected: {reason}"[:500]
    if order.status == S.REFUNDING and refund.whole_order:
        change_status(session, order, order.status_before_refund or S.PAID, actor=actor, note=note)
    else:
        add_history(session, order, from_status=order.status, to_status=order.status, actor=actor, note=note)
    session.flush()
    return refund


def record_provider_refund(session: Session, *, merchant_id: int, payment_refund_id: int) -> str:
    """payment.refunded: finish the refund request that was waiting for this provider refund.
    Idempotent; "refunded", "already" or "unknown" (e.g. a late payment's automatic refund)."""
    refund = session.scalars(select(RefundRequest).where(RefundRequest.merchant_id == merchant_id,
                                                         RefundRequest.payment_refund_id == payment_refund_id)).first()
    if refund is None:
        return "unknown"
    order = lock_order(session, refund.order_id, merchant_id=merchant_id)
    assert order is not None
    refund = session.scalars(select(RefundRequest).where(RefundRequest.id == refund.id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    if refund.status != R.PROCESSING:
        return "already"
    complete_refund(session, refund, order, actor=None)
    return "refunded"


def waiting_count(session: Session, *, actor: Principal) -> int:
    stmt = scoped(select(func.count()).select_from(RefundRequest), RefundRequest, actor)
    return int(session.scalar(stmt.where(RefundRequest.status == R.PENDING.value)) or 0)



def refund_price_difference(session: Session, order_id: int, *, amount_cents: int, reason: str,
                            actor: Principal) -> RefundRequest:
    """A system refund of money without units (a ladder price fell after the order was paid): refund
    lines of quantity 0, the amount spread across the order's lines by largest remainder of what
    each line has left (never more than a line has left), paid back through the provider that took
    the money like `approve_refund`. Later unit refunds subtract what these lines claimed, so the
    order's refunds never exceed what was paid. 409 `refund_exceeds_paid` beyond what is left."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise Conflict("A price difference refund needs a positive amount.", code="invalid_refund_amount",
                       details={"amount_cents": amount_cents})
    order = get_order(session, order_id, actor=actor, lock=True)
    if (order.kind or "goods") != "goods":
        raise Conflict("This order is refunded by the service it bought, not through after-sales.",
                       code="service_order_refund")
    if order.status not in REFUNDABLE and order.status != S.REFUNDING:
        raise Conflict("This order cannot be refunded now.", code="not_refundable", details={"status": order.status})
    all_lines = order_lines(session, order.id)
    claimed, claimed_total, claimed_money, _claimed_shipping = _claims(session, order)
    lefts = [max(0, line.paid_cents - claimed.get(line.id, _Claimed()).amount_cents) for line in all_lines]
    if amount_cents > sum(lefts) or claimed_total + amount_cents > order.total_cents:
        raise RefundExceedsPaid(details={"refundable_cents": min(sum(lefts), max(0, order.total_cents - claimed_total)),
                                         "requested_cents": amount_cents})
    shares = split_largest_remainder(amount_cents, lefts)
    after = claimed_total + amount_cents
    money_after = order.paid_cents if after >= order.total_cents or order.total_cents == 0 else \
        after * order.paid_cents // order.total_cents
    money = max(0, min(amount_cents, money_after - claimed_money))
    refund = RefundRequest(
        merchant_id=order.merchant_id, order_id=order.id, customer_id=order.customer_id, owner_id=order.owner_id,
        store_id=order.store_id, status=R.PENDING.value, whole_order=False, amount_cents=amount_cents,
        money_cents=money, parts_cents=amount_cents - money, shipping_cents=0, reason=reason[:200], photos=[],
        source="system", created_at=clock.now(),
    )
    session.add(refund)
    session.flush()
    session.add_all([RefundLine(merchant_id=order.merchant_id, refund_id=refund.id, order_line_id=line.id,
                                quantity=0, amount_cents=share)
                     for line, share in zip(all_lines, shares, strict=True) if share > 0])
    add_history(session, order, from_status=order.status, to_status=order.status, actor=actor,
                note=f"Price difference refund {refund.id} for {amount_cents} cents: {reason}"[:500])
    session.flush()
    return approve_refund(session, refund.id, actor=actor)
