"""The order lifecycle after checkout: pay, cancel and expire, ship, pickup and verification (核销),
confirm receipt and auto-complete, and late payments."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hmac
import io
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock, ids
from siyu.core.auth import Principal, Role, scoped
from siyu.core.errors import AppError, Conflict, NotFound, PermissionDenied, field_error
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.db import execute_core
from siyu.merchants import service as merchants
from siyu.orders.models import Order, OrderLine
from siyu.orders.service.common import (
    add_history,
    change_status,
    check_not_held,
    get_order,
    lock_order,
    order_lines,
    settings_from,
    valid_id,
)
from siyu.orders.states import InvalidTransition, OrderStatus, assert_transition
from siyu.payments import events as payment_events
from siyu.payments import service as payments

S = OrderStatus
MAX_BULK_SHIP_ROWS = 2000


# ---------------------------------------------------------------- paying


def pay_order(session: Session, order_id: int, *, actor: Principal, method: str, payer_openid: str | None = None,
              client_ip: str = "127.0.0.1") -> payments.PaymentStart:
    """Start paying the customer's own pending order through `method` (sandbox, wechatpay, balance).
    The order row is locked so two starts do not race; 409 `invalid_transition` unless pending."""
    if not valid_id(order_id):
        raise NotFound()
    # One round trip: the order, locked, with its first line's title and its number of lines (the
    # payment's description).
    if actor.kind == "customer":
        order = execute_core(session, _payable_order(True), {
            "order_id": order_id, "merchant_id": actor.merchant_id, "customer_id": actor.customer_id}).first()
    else:
        stmt = scoped(_payable_order(False).where(Order.id == order_id), Order, actor)
        order = execute_core(session, stmt.with_for_update(of=Order)).first()
    if order is None:
        raise NotFound()
    if order.status != S.PENDING_PAYMENT:
        raise Conflict("This order is not waiting for payment.", code="order_not_payable",
                       details={"status": order.status})
    if order.expires_at is not None and order.expires_at <= clock.now():
        raise Conflict("This order has expired.", code="order_expired")
    description = (order.first_title or order.order_no)[:100]
    if order.line_count > 1:
        description = f"{description} …"
    return payments.start_payment(
        session, merchant_id=order.merchant_id, customer_id=order.customer_id, order_id=order.id,
        order_no=order.order_no, amount_cents=order.payable_cents, method=method, description=description,
        payer_openid=payer_openid, client_ip=client_ip, expires_at=order.expires_at,
    )


def _pickup_code(session: Session, order: Order) -> str:
    """6 digits, unique among the merchant's orders waiting for pickup (longer if 6 keep colliding)."""
    for digits in (6, 6, 6, 6, 7, 7, 8, 8):
        code = f"{ids.randbelow(10 ** digits):0{digits}d}"
        taken = session.scalar(select(Order.id).where(Order.merchant_id == order.merchant_id,
                                                      Order.status == S.READY_FOR_PICKUP.value,
                                                      Order.pickup_code == code))
        if taken is None:
            return code
    raise Conflict("Could not issue a pickup code; try again.", code="pickup_code_unavailable")


def apply_payment(session: Session, order: Order, *, payment_id: int | None, amount_cents: int, paid_at: dt.datetime,
                  actor: Principal | None, note: str = "", lines: list[OrderLine] | None = None) -> None:
    """Mark a (locked) pending order paid; a pickup order becomes ready for pickup with its code.
    Counts the order in the customer's stats. `lines`: the order's lines in id order, when the caller
    has them."""
    if lines is None:
        lines = order_lines(session, order.id)  # read first: the order's changes then go out in one UPDATE
    change_status(session, order, S.PAID, actor=actor, note=note, lines=lines,
                  changes={"paid_cents": amount_cents, "payment_id": payment_id, "paid_at": paid_at})
    if order.fulfilment_type == "pickup":
        change_status(session, order, S.READY_FOR_PICKUP, actor=actor,
                      changes={"pickup_code": _pickup_code(session, order)})
    elif order.fulfilment_type == "virtual":
        # A service order (recharge, paid membership): nothing to ship, done once paid; the domain
        # that sold it delivers the service on order.paid.
        change_status(session, order, S.COMPLETED, actor=actor, note="Nothing to ship.")
    if (order.kind or "goods") != "goods":
        return  # not counted in the customer's spend (a recharge is spent later, on goods)
    customers.record_paid_order(session, merchant_id=order.merchant_id, customer_id=order.customer_id,
                                order_id=order.id, amount_cents=order.total_cents, paid_at=paid_at)


def record_payment(session: Session, *, merchant_id: int, order_id: int, payment_id: int, amount_cents: int,
                   paid_at: dt.datetime) -> str:
    """A payment of the order succeeded (payment.succeeded). Idempotent; the order row is locked.

    Pending → paid. The same payment again → nothing. Money that arrives for an order that was
    cancelled or expired meanwhile (or was already paid by another payment) is refunded in full at
    once and noted in the order's history. Returns "paid", "already_paid", "refunded" or "unknown"."""
    # The plain case was recorded in the payment's own transaction (`record_payment_now`): one plain
    # read tells, without the lock. (A payment id once on an order stays; anything else takes the lock.)
    done = session.execute(select(Order.payment_id, Order.status)
                           .where(Order.id == order_id, Order.merchant_id == merchant_id)).first()
    if done is not None and done.payment_id == payment_id and done.status != S.PENDING_PAYMENT:
        return "already_paid"
    order = lock_order(session, order_id, merchant_id=merchant_id)
    if order is None:
        return "unknown"
    if order.payment_id == payment_id and order.status != S.PENDING_PAYMENT:
        return "already_paid"
    if order.status == S.PENDING_PAYMENT and amount_cents == order.payable_cents:
        apply_payment(session, order, payment_id=payment_id, amount_cents=amount_cents, paid_at=paid_at, actor=None)
        return "paid"
    reason = "order_expired" if order.status == S.CANCELLED else "duplicate_payment"
    if order.status == S.PENDING_PAYMENT:
        reason = "amount_mismatch"
    result = payments.refund(session, merchant_id=merchant_id, payment_id=payment_id, amount_cents=amount_cents,
                             reason=reason, refund_key=f"late_payment:{payment_id}")
    add_history(session, order, from_status=order.status, to_status=order.status, actor=None,
                note=f"Payment {payment_id} of {amount_cents} cents arrived for a {order.status} order; "
                     f"refunded in full ({reason}, refund {result.refund_id}: {result.status}).")
    session.flush()
    return "refunded"


@functools.cache
def _payable_order(customer: bool) -> Any:
    """What paying needs of the order (plain columns) with its first line's title and its number of lines:
    for a customer, built once and locked, the ids as parameters; for staff the caller adds the order,
    their scope and the lock."""
    first_title = (select(OrderLine.title).where(OrderLine.order_id == Order.id).order_by(OrderLine.id)
                   .limit(1).scalar_subquery().label("first_title"))
    line_count = select(func.count(OrderLine.id)).where(OrderLine.order_id == Order.id).scalar_subquery()
    stmt = select(Order.id, Order.merchant_id, Order.customer_id, Order.order_no, Order.status, Order.expires_at,
                  Order.payable_cents, first_title, line_count.label("line_count"))
    if not customer:
        return stmt
    return (stmt.where(Order.id == bindparam("order_id"), Order.merchant_id == bindparam("merchant_id"),
                       Order.customer_id == bindparam("customer_id"))
            .with_for_update(of=Order))


@functools.cache
def _order_with_lines_locked() -> Any:
    # Built once (every paid checkout asks): the ids as parameters.
    return (select(Order, OrderLine).outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.id == bindparam("order_id"), Order.merchant_id == bindparam("merchant_id"))
            .order_by(OrderLine.id)
            .with_for_update(of=Order, skip_locked=True).execution_options(populate_existing=True))


def record_payment_now(session: Session, succeeded: payment_events.PaymentSucceeded, merchant_id: int) -> bool:
    """payments' recorder: mark the order paid in the transaction that marked its payment succeeded
    (sandbox confirm, a provider's notification, stored value), so a checkout needs no second transaction.
    Only the plain case: the order waits for exactly this amount. Its row is locked without waiting
    (SKIP LOCKED; the payment's lock is held, and a cancel or expiry locks the order first): when another
    transaction holds it, or in any other case, `record_payment` (the payment.succeeded handler, after
    the commit) decides as before: pay, refund a late or duplicate payment, or nothing. True when it paid the
    order: that handler would find it done, so payments writes the event processed (`settles`)."""
    # One round trip: the order (locked) with its lines, one row per line.
    rows = session.execute(_order_with_lines_locked(), {"order_id": succeeded.order_id, "merchant_id": merchant_id}).all()
    if not rows:
        return False
    order = rows[0][0]
    if order.status != S.PENDING_PAYMENT or order.payable_cents != succeeded.amount_cents:
        return False
    apply_payment(session, order, payment_id=succeeded.payment_id, amount_cents=succeeded.amount_cents,
                  paid_at=succeeded.paid_at, actor=None, lines=[line for _order, line in rows if line is not None])
    return True


# The payment.succeeded handler (`siyu.orders.handlers.on_payment_succeeded`, `record_payment`) finds a
# payment recorded here done; its key, as `core.events.handles` registers it.
PAYMENT_SUCCEEDED_HANDLER = "siyu.orders.handlers.on_payment_succeeded"
payments.register_payment_recorder(record_payment_now, settles=(PAYMENT_SUCCEEDED_HANDLER,))


# ---------------------------------------------------------------- cancel and expire


def _release_stock(session: Session, order: Order, *, actor: Principal | None) -> None:
    if (order.kind or "goods") != "goods":
        return  # a service order reserved no stock
    for line in sorted(order_lines(session, order.id), key=lambda ln: ln.sku_id):
        catalog.post_stock(session, merchant_id=order.merchant_id, sku_id=line.sku_id, delta=line.quantity,
                           reason="order_release", idempotency_key=f"order:{order.id}:release:{line.sku_id}",
                           note=order.order_no, ref_type="order", ref_id=order.id, actor=actor)


def _cancel(session: Session, order: Order, *, actor: Principal | None, reason: str, note: str = "") -> None:
    assert_transition(order.status, S.CANCELLED)
    order.cancel_reason = reason[:40]
    _release_stock(session, order, actor=actor)
    payments.close_payments_for_order(session, merchant_id=order.merchant_id, order_id=order.id)
    change_status(session, order, S.CANCELLED, actor=actor, note=note or reason)


def cancel_order(session: Session, order_id: int, *, actor: Principal, reason: str = "") -> Order:
    """Cancel an order while it waits for payment: its stock is released and its unpaid payments
    closed. 409 `invalid_transition` in any other status."""
    order = get_order(session, order_id, actor=actor, lock=True)
    default = "customer_cancelled" if actor.kind == "customer" else "staff_cancelled"
    _cancel(session, order, actor=actor, reason=reason or default)
    return order


def due_for_expiry(session: Session, now: dt.datetime, *, limit: int = 500) -> list[int]:
    return list(session.scalars(
        select(Order.id).where(Order.status == S.PENDING_PAYMENT.value, Order.expires_at <= now)
        .order_by(Order.id).limit(limit)
    ))


def expire_unpaid(session: Session, now: dt.datetime, *, limit: int = 500) -> list[int]:
    """Cancel unpaid orders past their expiry, releasing stock and closing payments. Idempotent:
    each order is locked and re-checked, and stock releases are keyed, so a second run (or two
    at once) changes nothing more. Returns the ids cancelled."""
    done = []
    for order_id in due_for_expiry(session, now, limit=limit):
        order = lock_order(session, order_id)
        if order is None or order.status != S.PENDING_PAYMENT or order.expires_at is None or order.expires_at > now:
            continue
        _cancel(session, order, actor=None, reason="expired", note="Not paid in time.")
        done.append(order.id)
    return done


# ---------------------------------------------------------------- delivery


def _require_staff(actor: Principal) -> None:
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()


def ship_order(session: Session, order_id: int, *, actor: Principal, carrier: str, tracking_no: str) -> Order:
    """Hand a paid delivery order to a carrier: paid → shipped, with carrier and tracking number."""
    _require_staff(actor)
    actor.require("orders.fulfil")
    order = get_order(session, order_id, actor=actor, lock=True)
    if order.fulfilment_type != "delivery":
        raise Conflict("Only delivery orders are shipped.", code="not_delivery")
    check_not_held(order)
    if order.status != S.PAID:
        # Refunding orders also may move to shipped in the table (back after a rejection), not by hand.
        raise InvalidTransition(details={"from": order.status, "to": S.SHIPPED.value}, old=order.status,
                                new=S.SHIPPED.value)
    order.carrier = carrier.strip()[:40]
    order.tracking_no = tracking_no.strip()[:60]
    change_status(session, order, S.SHIPPED, actor=actor, note=f"{order.carrier} {order.tracking_no}")
    return order


@dataclasses.dataclass
class BulkShipRow:
    row: int
    order_no: str
    ok: bool
    order_id: int | None = None
    error: str = ""
    code: str = ""


def bulk_ship_csv(session: Session, *, actor: Principal, text: str) -> list[BulkShipRow]:
    """Ship many orders from CSV rows `order_no,carrier,tracking_no` (a header row is optional).
    Each row stands alone: a bad row is reported and the others still ship."""
    _require_staff(actor)
    actor.require("orders.fulfil")
    # newline="" lets the csv module see every line ending (Excel for Mac ends rows with a bare \r).
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    report: list[BulkShipRow] = []
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise field_error("csv", "The file is not valid CSV: {problem}", problem=str(exc)) from exc
    for number, raw in enumerate(rows, start=1):
        cells = [c.strip() for c in raw]
        if not any(cells):
            continue
        if number == 1 and cells and cells[0].lower() in ("order_no", "订单号"):
            continue
        if len(report) >= MAX_BULK_SHIP_ROWS:
            report.append(BulkShipRow(row=number, order_no="", ok=False, code="too_many_rows",
                                      error=_("At most {n} rows per file.", n=MAX_BULK_SHIP_ROWS)))
            break
        order_no = cells[0][:32] if cells else ""
        if len(cells) < 3 or not all(cells[:3]):
            report.append(BulkShipRow(row=number, order_no=order_no, ok=False, code="bad_row",
                                      error=_("Each row needs order_no, carrier and tracking_no.")))
            continue
        carrier, tracking_no = cells[1], cells[2]
        if len(carrier) > 40 or not 4 <= len(tracking_no) <= 60 or not tracking_no.replace("-", "").isalnum():
            report.append(BulkShipRow(row=number, order_no=order_no, ok=False, code="bad_row",
                                      error=_("The carrier or tracking number is not valid.")))
            continue
        try:
            with session.begin_nested():
                order = find_by_order_no(session, order_no, actor=actor)
                ship_order(session, order.id, actor=actor, carrier=carrier, tracking_no=tracking_no)
            report.append(BulkShipRow(row=number, order_no=order_no, ok=True, order_id=order.id))
        except AppError as exc:
            report.append(BulkShipRow(row=number, order_no=order_no, ok=False, code=exc.code,
                                      error=exc.translated()))
    return report


def find_by_order_no(session: Session, order_no: str, *, actor: Principal) -> Order:
    if not order_no or len(order_no) > 32:
        raise NotFound()
    order = session.scalars(scoped(select(Order).where(Order.order_no == order_no), Order, actor)).first()
    if order is None:
        raise NotFound()
    return order


def confirm_receipt(session: Session, order_id: int, *, actor: Principal) -> Order:
    """The customer says the parcel arrived: shipped → completed."""
    order = get_order(session, order_id, actor=actor, lock=True)
    if order.status != S.SHIPPED:
        raise InvalidTransition(details={"from": order.status, "to": S.COMPLETED.value}, old=order.status,
                                new=S.COMPLETED.value)
    change_status(session, order, S.COMPLETED, actor=actor, note="Receipt confirmed.")
    return order


def auto_complete(session: Session, now: dt.datetime, *, limit: int = 500) -> list[int]:
    """Complete shipped orders `auto_complete_days` (merchant setting, default 7) after shipping.
    Idempotent: each order is locked and re-checked."""
    merchant_ids = list(session.scalars(select(Order.merchant_id).where(Order.status == S.SHIPPED.value)
                                        .group_by(Order.merchant_id)))
    done: list[int] = []
    for merchant_id in merchant_ids:
        days = settings_from(merchants.get_merchant(session, merchant_id).settings).auto_complete_days
        cutoff = now - dt.timedelta(days=days)
        ids = list(session.scalars(select(Order.id).where(
            Order.merchant_id == merchant_id, Order.status == S.SHIPPED.value, Order.shipped_at <= cutoff)
            .order_by(Order.id).limit(limit)))
        for order_id in ids:
            order = lock_order(session, order_id)
            if order is None or order.status != S.SHIPPED or order.shipped_at is None or order.shipped_at > cutoff:
                continue
            change_status(session, order, S.COMPLETED, actor=None, note=f"Completed {days} days after shipping.")
            done.append(order.id)
    return done


def complete_order(session: Session, order_id: int, *, actor: Principal, note: str = "") -> Order:
    """Complete a paid leader order handed out by its leader (the group-buying domain calls this)."""
    order = get_order(session, order_id, actor=actor, lock=True)
    if order.fulfilment_type != "leader" or order.status != S.PAID:
        raise InvalidTransition(details={"from": order.status, "to": S.COMPLETED.value}, old=order.status,
                                new=S.COMPLETED.value)
    change_status(session, order, S.COMPLETED, actor=actor, note=note)
    return order


# ---------------------------------------------------------------- pickup (核销)


def _store_check(order: Order, actor: Principal) -> None:
    """Only staff of the pickup store (or above it) verify its pickups; others get 404."""
    if actor.kind == "system" or actor.role == Role.BRAND_ADMIN:
        return
    if order.pickup_store_id is None or order.pickup_store_id not in actor.store_ids:
        raise NotFound()


def _load_for_verify(session: Session, order_id: int, actor: Principal) -> Order:
    if not valid_id(order_id):
        raise NotFound()
    order = lock_order(session, order_id, merchant_id=actor.merchant_id)
    if order is None:
        raise NotFound()
    _store_check(order, actor)
    return order


def _verify(session: Session, order: Order, code: str, actor: Principal) -> Order:
    if order.fulfilment_type != "pickup":
        raise Conflict("This order is not for pickup.", code="not_pickup")
    if order.status != S.READY_FOR_PICKUP:
        raise InvalidTransition(details={"from": order.status, "to": S.COMPLETED.value}, old=order.status,
                                new=S.COMPLETED.value)
    check_not_held(order)
    if not order.pickup_code or not hmac.compare_digest(order.pickup_code.encode(), (code or "").encode()):
        raise Conflict("The pickup code does not match.", code="wrong_pickup_code")
    change_status(session, order, S.COMPLETED, actor=actor, note="Picked up (verified).")
    return order


def verify_pickup(session: Session, order_id: int, *, actor: Principal, code: str) -> Order:
    """Verify (核销) a pickup at the store: the code must match and the staff member must belong to
    the pickup store (or above it); ready_for_pickup → completed."""
    _require_staff(actor)
    actor.require("orders.fulfil")
    return _verify(session, _load_for_verify(session, order_id, actor), code, actor)


def verify_pickup_code(session: Session, *, actor: Principal, code: str) -> Order:
    """Verify by the code alone (the staff scanned the customer's QR): the order waiting for pickup
    with this code at one of the actor's stores."""
    _require_staff(actor)
    actor.require("orders.fulfil")
    if not code or not code.isdigit() or not 6 <= len(code) <= 8:
        raise field_error("code", "Enter the 6–8 digit pickup code.")
    order_id = session.scalar(select(Order.id).where(Order.merchant_id == actor.merchant_id,
                                                     Order.status == S.READY_FOR_PICKUP.value,
                                                     Order.pickup_code == code))
    if order_id is None:
        raise NotFound("No order is waiting for pickup with this code.", code="pickup_code_not_found")
    return _verify(session, _load_for_verify(session, order_id, actor), code, actor)


def pickup_qr_svg(order: Order, *, scale: int = 6) -> str:
    """The pickup code as a QR code (SVG) for the customer to show at the store."""
    import segno

    if not order.pickup_code:
        raise NotFound()
    return segno.make(order.pickup_code, error="m").svg_inline(scale=scale)


def pickup_qr_png(order: Order, *, scale: int = 8) -> bytes:
    import segno

    if not order.pickup_code:
        raise NotFound()
    buffer = io.BytesIO()
    segno.make(order.pickup_code, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
