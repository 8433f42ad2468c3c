"""Payments: start one for an order, take provider notifications, refund, and read them back.

`orders` calls the functions in the first section and reacts to the events in events.py; it never
touches these tables. A payment refers to its order only by `order_id` (and `order_no` for texts).

Rules:
- One order may have several payments (the customer switched method); starting one closes the
  earlier unpaid ones, and an order with a succeeded payment cannot start another.
- A payment succeeds only through a verified notification (sandbox, WeChat Pay) or at once
  (stored value). Notifications are idempotent: the payment row is locked and its status checked,
  so a replay or a duplicate changes nothing and emits nothing.
- A refund never exceeds what was paid minus what is refunded or being refunded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, cast, func, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from siyu.core import clock, ids
from siyu.core.auth import Principal, get_scoped, scoped
from siyu.core.errors import Conflict, NotFound, field_error
from siyu.core.events import emit
from siyu.core.pagination import Page, paginate
from siyu.db import add_written, execute_core, update_written
from siyu.merchants import service as merchants_service
from siyu.merchants.models import Merchant
from siyu.payments import events, providers
from siyu.payments.models import Payment, PaymentNotification, PaymentRefund
from siyu.payments.providers import (
    BalanceProvider,
    BalanceUnavailable,
    NotificationRejected,
    StartContext,
    balance_provider,
    get_provider,
)
from siyu.payments.providers import sandbox as sandbox_provider
from siyu.payments.providers import wechatpay as wechatpay_provider
from siyu.payments.providers.base import LOGGED_HEADERS
from siyu.payments.states import (
    PaymentStatus,
    RefundStatus,
    assert_refund_transition,
    assert_transition,
)

log = logging.getLogger(__name__)

METHODS = ("sandbox", "wechatpay", "balance")
MAX_CENTS = 2**31 - 1
DEFAULT_EXPIRY = dt.timedelta(minutes=15)
# A notification body larger than this is refused (WeChat Pay's are a few KB).
MAX_NOTIFICATION_BYTES = 64 * 1024


# ==================================================================== results


@dataclasses.dataclass(frozen=True)
class PaymentStart:
    """What the payer needs next. Exactly one of the provider fields is set for an unpaid payment;
    a stored-value payment comes back already `succeeded`."""

    payment_id: int
    status: str
    method: str
    amount_cents: int
    out_trade_no: str
    sandbox_confirm_url: str | None = None
    pay_page_url: str | None = None
    wechatpay: dict[str, str] | None = None
    h5_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The API shape: `{payment_id, status, sandbox_confirm_url?, pay_page_url?, wechatpay?, h5_url?}`."""
        out: dict[str, Any] = {"payment_id": self.payment_id, "status": self.status, "method": self.method,
                               "amount_cents": self.amount_cents}
        for key in ("sandbox_confirm_url", "pay_page_url", "wechatpay", "h5_url"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclasses.dataclass(frozen=True)
class RefundResult:
    refund_id: int
    payment_id: int
    amount_cents: int
    status: str  # "succeeded", "pending" (WeChat Pay still processing) or "failed"
    out_refund_no: str
    error: str | None = None
    replayed: bool = False


@dataclasses.dataclass(frozen=True)
class NotificationOutcome:
    """How a notification was handled, and what to answer the provider."""

    accepted: bool
    outcome: str  # "paid", "paid_late", "refunded", "refund_failed", "duplicate", "ignored", "rejected"
    status_code: int
    log_id: int
    payment_id: int | None = None
    refund_id: int | None = None
    error: str | None = None

    def response_body(self) -> dict[str, str]:
        """WeChat Pay's expected answer shape (the sandbox uses it too)."""
        if self.accepted:
            return {"code": "SUCCESS"}
        return {"code": "FAIL", "message": self.error or "rejected"}


# ==================================================================== what orders plugs in

# Called in the transaction that marks a payment succeeded, with the payment's row lock held, just before
# the `payment.succeeded` event is written: the domain that sold what was paid for (orders) records it
# in the same transaction instead of in a second one after the commit. It must not wait for other locks
# and must leave anything but the plain case to its `payment.succeeded` handler (which runs after the
# commit, idempotently, and finds the plain case already done). It returns True when it recorded the
# payment in full: the `payment.succeeded` handlers it names (`settles`) then have nothing left to do,
# and when they are all of the event's handlers the event is written processed (`core.events.emit`'s
# `handled`): no second transaction after the commit. (Its own events, e.g. `order.paid`, come first
# in the outbox then.)
PaymentRecorder = Callable[[Session, events.PaymentSucceeded, int], bool | None]
_recorder: PaymentRecorder | None = None
_recorder_settles: tuple[str, ...] = ()


def register_payment_recorder(fn: PaymentRecorder | None, *, settles: Collection[str] = ()) -> None:
    """Plug in (or, with None, remove) what records a succeeded payment in its own transaction;
    `settles`: the keys of the `payment.succeeded` handlers its True answer makes redundant."""
    global _recorder, _recorder_settles
    _recorder, _recorder_settles = fn, tuple(settles)


# ==================================================================== what orders calls


def start_payment(
    session: Session,
    *,
    merchant_id: int,
    customer_id: int,
    order_id: int,
    order_no: str,
    amount_cents: int,
    method: str,
    description: str,
    payer_openid: str | None = None,
    client_ip: str = "127.0.0.1",
    expires_at: dt.datetime | None = None,
) -> PaymentStart:
    """Start paying `amount_cents` for an order through `method`.

    Earlier unpaid payments of the order are closed first; an order that already has a succeeded
    payment cannot start another (409 `already_paid`). "balance" succeeds at once (or 409
    `balance_unavailable` when no stored-value provider is registered); "wechatpay" uses JSAPI with
    `payer_openid`, H5 without. The caller should hold its order row's lock so that two starts for
    one order do not race.
    """
    if method not in METHODS or get_provider(method) is None:
        raise field_error("method", "Choose a payment method: sandbox, wechatpay or balance.")
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or not 0 < amount_cents <= MAX_CENTS:
        raise field_error("amount_cents", "The amount must be a positive number of cents.")
    if method == "balance" and balance_provider() is None:
        raise BalanceUnavailable()
    provider = get_provider(method)
    assert provider is not None
    merchant = merchants_service.get_merchant(session, merchant_id)
    now = clock.now()

    # The order's earlier payments, locked: their statuses (plain columns); the payments themselves only
    # when one must be closed (a first payment, the usual case, has none).
    statuses = execute_core(session, _payment_statuses_of_order(),
                            {"merchant_id": merchant_id, "order_id": order_id}).scalars().all()
    if PaymentStatus.SUCCEEDED in statuses:
        raise Conflict("This order has already been paid.", code="already_paid")
    if PaymentStatus.CREATED in statuses:
        for p in session.scalars(_payments_of_order(), {"merchant_id": merchant_id, "order_id": order_id}):
            if p.status == PaymentStatus.CREATED:
                _close(session, p, merchant, now)

    payment = Payment(
        merchant_id=merchant_id, customer_id=customer_id, order_id=order_id, order_no=(order_no or "")[:40],
        method=method, description=(description or "")[:127], amount_cents=amount_cents, refunded_cents=0,
        status=PaymentStatus.CREATED.value, out_trade_no="T" + ids.token_hex(15), provider_data={},
        created_at=now, updated_at=now, expires_at=expires_at or now + DEFAULT_EXPIRY, provider_txn_id=None,
        paid_at=None, closed_at=None,
    )
    prefix = f"P{clock.local(now):%Y%m%d}"
    if session.get_bind().dialect.name == "postgresql":
        payment = _insert_with_trade_no(session, payment, prefix)
    else:
        session.add(payment)
        session.flush()
        payment.out_trade_no = f"{prefix}{payment.id:012d}"
        session.flush()

    started = provider.create(session, payment, StartContext(merchant=merchant, payer_openid=payer_openid,
                                                             client_ip=client_ip))
    if dict(started.provider_data) != payment.provider_data:
        update_written(session, payment, {"provider_data": dict(started.provider_data)})
    if started.succeeded_txn_id:
        _mark_succeeded(session, payment, txn_id=started.succeeded_txn_id, paid_at=now)
    session.flush()
    return PaymentStart(
        payment_id=payment.id, status=payment.status, method=method, amount_cents=amount_cents,
        out_trade_no=payment.out_trade_no, sandbox_confirm_url=started.sandbox_confirm_url,
        pay_page_url=started.pay_page_url, wechatpay=started.wechatpay, h5_url=started.h5_url,
    )


def get_payment(session: Session, *, merchant_id: int, payment_id: int, customer_id: int | None = None) -> Payment:
    """One payment of the merchant (and of the customer, when given); NotFound otherwise."""
    if not isinstance(payment_id, int) or not 0 < payment_id <= 2**62:
        raise NotFound()
    stmt = select(Payment).where(Payment.merchant_id == merchant_id, Payment.id == payment_id)
    if customer_id is not None:
        stmt = stmt.where(Payment.customer_id == customer_id)
    payment = session.scalars(stmt).first()
    if payment is None:
        raise NotFound()
    return payment


def payments_for_order(session: Session, *, merchant_id: int, order_id: int) -> list[Payment]:
    """Every payment of an order, oldest first."""
    return list(session.scalars(
        select(Payment).where(Payment.merchant_id == merchant_id, Payment.order_id == order_id).order_by(Payment.id)
    ))


def close_payments_for_order(session: Session, *, merchant_id: int, order_id: int) -> list[int]:
    """The order was cancelled or expired: its unpaid payments become closed (ids returned).

    If the customer pays one anyway, the late notification still records the money (see
    handle_notification) and orders refunds it.
    """
    merchant = merchants_service.get_merchant(session, merchant_id)
    now = clock.now()
    closed = []
    rows = session.scalars(
        select(Payment).where(Payment.merchant_id == merchant_id, Payment.order_id == order_id,
                              Payment.status == PaymentStatus.CREATED.value)
        .order_by(Payment.id).with_for_update().execution_options(populate_existing=True)
    )
    for payment in list(rows):
        if payment.status == PaymentStatus.CREATED:
            _close(session, payment, merchant, now)
            closed.append(payment.id)
    session.flush()
    return closed


def refund(
    session: Session,
    *,
    merchant_id: int,
    payment_id: int,
    amount_cents: int,
    reason: str,
    refund_key: str,
) -> RefundResult:
    """Give back `amount_cents` of a succeeded payment through the provider that took it.

    Never more than paid minus refunded and pending refunds (409 `refund_exceeds_paid`).
    Idempotent by `refund_key`: the same key returns the same refund (and retries it when it failed
    or its outcome was unknown); the same key for another payment or amount is 409
    `refund_key_reused`. A refund the provider refuses comes back with status "failed" (kept, and
    retried on the next call with the key); "pending" means WeChat Pay is still processing and its
    REFUND notification will settle it. payment.refunded is emitted when the money is back.
    """
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or not 0 < amount_cents <= MAX_CENTS:
        raise field_error("amount_cents", "The amount must be a positive number of cents.")
    if not refund_key or len(refund_key) > 200:
        raise field_error("refund_key", "A refund key of 1–200 characters is required.")
    payment = _lock_payment(session, merchant_id=merchant_id, payment_id=payment_id)
    merchant = merchants_service.get_merchant(session, merchant_id)
    provider = get_provider(payment.method)
    assert provider is not None
    row = session.scalars(
        select(PaymentRefund).where(PaymentRefund.merchant_id == merchant_id, PaymentRefund.refund_key == refund_key)
        .with_for_update().execution_options(populate_existing=True)
    ).first()
    if row is not None:
        if row.payment_id != payment.id or row.amount_cents != amount_cents:
            raise Conflict("This refund key was used for a different refund.", code="refund_key_reused")
        if row.status == RefundStatus.SUCCEEDED or (row.status == RefundStatus.PENDING and row.error is None):
            return _refund_result(row, replayed=True)
        if row.status == RefundStatus.FAILED:
            _check_refundable(session, payment, amount_cents, exclude_id=row.id)
            assert_refund_transition(row.status, RefundStatus.PENDING)
            row.status = RefundStatus.PENDING.value
    else:
        if payment.status != PaymentStatus.SUCCEEDED:
            raise Conflict("Only a paid payment can be refunded.", code="payment_not_paid",
                           details={"status": payment.status})
        _check_refundable(session, payment, amount_cents)
        now = clock.now()
        row = PaymentRefund(merchant_id=merchant_id, payment_id=payment.id, amount_cents=amount_cents,
                            status=RefundStatus.PENDING.value, refund_key=refund_key, reason=(reason or "")[:200],
                            out_refund_no="T" + ids.token_hex(15), attempts=0, created_at=now)
        session.add(row)
        session.flush()
        row.out_refund_no = f"R{clock.local(now):%Y%m%d}{row.id:012d}"
        session.flush()

    row.attempts += 1
    answer = provider.refund(session, payment, row, merchant)
    if answer.provider_refund_id:
        row.provider_refund_id = answer.provider_refund_id
    row.error = answer.error
    if answer.status == "succeeded":
        _refund_succeeded(session, payment, row)
    elif answer.status == "failed":
        assert_refund_transition(row.status, RefundStatus.FAILED)
        row.status = RefundStatus.FAILED.value
        row.finished_at = clock.now()
    session.flush()
    return _refund_result(row)


def handle_notification(
    session: Session,
    *,
    merchant: Merchant,
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    locked: Payment | None = None,
    new_notification_id: bool = False,
) -> NotificationOutcome:
    """Verify and apply one provider notification; log it whatever happens.

    A bad signature, a stale timestamp, an undecryptable resource, an amount that differs from the
    payment's, or an unknown payment are rejected (4xx to the provider) and change nothing but the
    log. A replay or a duplicate (same notification id, or a payment already succeeded) is answered
    with success and changes nothing, emits nothing. A payment notification for a payment that is
    already `closed` (its order expired or was cancelled) still marks it succeeded and emits
    payment.succeeded: the money was taken, so it is recorded, and orders refunds it automatically
    because its order is cancelled. Never raises for a bad notification: the caller must commit so
    that the log row is kept. `locked`: a payment whose row the caller already holds locked (in
    this transaction); when the notification names it, it is not looked up and locked again.
    `new_notification_id`: the caller built this notification just now with a new random id (sandbox
    confirm), so no earlier delivery can carry it and the duplicate lookup is skipped.
    """
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    entry = PaymentNotification(
        merchant_id=merchant.id, provider=_clean(provider, 20), verified=False, outcome="rejected",
        headers={k: _clean(lower[k], 600) for k in LOGGED_HEADERS if k in lower},
        body=_clean(body[:MAX_NOTIFICATION_BYTES].decode("utf-8", errors="replace"), MAX_NOTIFICATION_BYTES),
        received_at=clock.now(),
    )

    def finish(outcome: str, status_code: int, error: str | None = None, *, payment: Payment | None = None,
               refund_row: PaymentRefund | None = None) -> NotificationOutcome:
        entry.outcome = outcome
        entry.error = _clean(error, 500) if error else None
        entry.payment_id = payment.id if payment else None
        entry.refund_id = refund_row.id if refund_row else None
        add_written(session, [entry])
        if outcome == "rejected":
            log.warning("payment notification %s rejected (%s, merchant %s)", entry.id, error, merchant.id)
        return NotificationOutcome(accepted=status_code < 300, outcome=outcome, status_code=status_code,
                                   log_id=entry.id, payment_id=entry.payment_id, refund_id=entry.refund_id, error=error)

    impl = get_provider(provider)
    if impl is None:
        return finish("rejected", 404, "unknown provider")
    if len(body) > MAX_NOTIFICATION_BYTES:
        return finish("rejected", 413, "body too large")
    try:
        note = impl.parse_notification(merchant, lower, body)
    except NotificationRejected as exc:
        entry.claimed_id = _clean(exc.claimed_id, 64) if exc.claimed_id else None
        return finish("rejected", exc.status_code, exc.reason)
    entry.verified = True
    entry.claimed_id = note.notification_id
    entry.kind = note.kind
    if note.kind == "other":
        return finish("ignored", 200, f"event {note.event_type} not handled")

    payment = None
    if locked is not None and note.out_trade_no and locked.merchant_id == merchant.id \
            and locked.out_trade_no == note.out_trade_no:
        payment = locked
    elif note.out_trade_no:
        payment = session.scalars(
            select(Payment).where(Payment.merchant_id == merchant.id, Payment.out_trade_no == note.out_trade_no)
            .with_for_update().execution_options(populate_existing=True)
        ).first()
    if payment is None or payment.method != provider:
        return finish("rejected", 404, "unknown payment")

    if note.kind == "paid":
        if note.amount_cents != payment.amount_cents:
            return finish("rejected", 400, f"amount {note.amount_cents} does not match {payment.amount_cents}",
                          payment=payment)
        duplicate_of = None if new_notification_id else _seen(session, merchant.id, provider, note.notification_id)
        if duplicate_of is not None:
            entry.duplicate_of_id = duplicate_of
            return finish("duplicate", 200, payment=payment)
        entry.notification_id = note.notification_id
        if payment.status == PaymentStatus.SUCCEEDED:
            error = None if note.provider_txn_id == payment.provider_txn_id else \
                f"already succeeded with transaction {payment.provider_txn_id}"
            return finish("duplicate", 200, error, payment=payment)
        late = payment.status != PaymentStatus.CREATED
        _mark_succeeded(session, payment, txn_id=note.provider_txn_id, paid_at=note.paid_at or clock.now())
        return finish("paid_late" if late else "paid", 200, payment=payment)

    # A refund notification (succeeded, or closed / abnormal).
    refund_row = None
    if note.out_refund_no:
        refund_row = session.scalars(
            select(PaymentRefund).where(PaymentRefund.merchant_id == merchant.id,
                                        PaymentRefund.payment_id == payment.id,
                                        PaymentRefund.out_refund_no == note.out_refund_no)
            .with_for_update().execution_options(populate_existing=True)
        ).first()
    if refund_row is None:
        # Refunds made outside siyu (the provider's own console) are not ours to record.
        return finish("ignored", 200, "unknown refund", payment=payment)
    if note.refund_amount_cents is not None and note.refund_amount_cents != refund_row.amount_cents:
        return finish("rejected", 400,
                      f"refund amount {note.refund_amount_cents} does not match {refund_row.amount_cents}",
                      payment=payment, refund_row=refund_row)
    duplicate_of = _seen(session, merchant.id, provider, note.notification_id)
    if duplicate_of is not None:
        entry.duplicate_of_id = duplicate_of
        return finish("duplicate", 200, payment=payment, refund_row=refund_row)
    entry.notification_id = note.notification_id
    if refund_row.status != RefundStatus.PENDING:
        return finish("duplicate", 200, payment=payment, refund_row=refund_row)
    if note.provider_refund_id:
        refund_row.provider_refund_id = note.provider_refund_id
    if note.kind == "refunded":
        refund_row.error = None
        _refund_succeeded(session, payment, refund_row)
        return finish("refunded", 200, payment=payment, refund_row=refund_row)
    assert_refund_transition(refund_row.status, RefundStatus.FAILED)
    refund_row.status = RefundStatus.FAILED.value
    refund_row.error = f"provider reported {note.event_type}"[:500]
    refund_row.finished_at = clock.now()
    return finish("refund_failed", 200, payment=payment, refund_row=refund_row)


def sandbox_confirm(session: Session, *, merchant: Merchant, payment_id: int, customer_id: int) -> Payment:
    """The customer confirms a sandbox payment: the sandbox "provider" signs a notification and
    delivers it to the same handler as POST /webhooks/pay/sandbox/{m}. 409 unless `created`."""
    payment = _lock_payment(session, merchant_id=merchant.id, payment_id=payment_id)
    if payment.customer_id != customer_id:
        raise NotFound()
    if payment.method != "sandbox":
        raise Conflict("This is not a sandbox payment.", code="not_sandbox")
    if payment.status != PaymentStatus.CREATED:
        raise Conflict("This payment is no longer waiting to be paid.", code="payment_not_pending",
                       details={"status": payment.status})
    if payment.expires_at is not None and payment.expires_at <= clock.now():
        raise Conflict("This payment has expired; start again from the order.", code="payment_expired")
    headers, body = sandbox_provider.build_paid_notification(payment)
    outcome = handle_notification(session, merchant=merchant, provider="sandbox", headers=headers, body=body,
                                  locked=payment, new_notification_id=True)
    if outcome.outcome not in ("paid", "paid_late"):
        raise Conflict("The payment could not be confirmed.", code="confirm_failed",
                       details={"outcome": outcome.outcome})
    return payment


# ==================================================================== console and admin API


def get_payment_for_staff(session: Session, payment_id: int, *, actor: Principal) -> Payment:
    return get_scoped(session, Payment, payment_id, actor)


def list_payments(session: Session, *, actor: Principal, order_id: int | None = None, status: str | None = None,
                  method: str | None = None, out_trade_no: str | None = None, cursor: str | None = None,
                  limit: int | None = None) -> Page[Payment]:
    stmt = scoped(select(Payment), Payment, actor)
    if order_id is not None:
        stmt = stmt.where(Payment.order_id == order_id)
    if status:
        stmt = stmt.where(Payment.status == status)
    if method:
        stmt = stmt.where(Payment.method == method)
    if out_trade_no:
        stmt = stmt.where(Payment.out_trade_no == out_trade_no)
    return paginate(session, stmt, Payment.id, cursor=cursor, limit=limit)


def refunds_of(session: Session, *, merchant_id: int, payment_id: int) -> list[PaymentRefund]:
    return list(session.scalars(
        select(PaymentRefund).where(PaymentRefund.merchant_id == merchant_id, PaymentRefund.payment_id == payment_id)
        .order_by(PaymentRefund.id)
    ))


def notifications_of(session: Session, *, merchant_id: int, payment_id: int, limit: int = 100) -> list[PaymentNotification]:
    return list(session.scalars(
        select(PaymentNotification).where(PaymentNotification.merchant_id == merchant_id,
                                          PaymentNotification.payment_id == payment_id)
        .order_by(PaymentNotification.id.desc()).limit(limit)
    ))


# ==================================================================== internals


def _lock_payment(session: Session, *, merchant_id: int, payment_id: int) -> Payment:
    if not isinstance(payment_id, int) or not 0 < payment_id <= 2**62:
        raise NotFound()
    payment = session.scalars(_payment_locked(), {"merchant_id": merchant_id, "payment_id": payment_id}).first()
    if payment is None:
        raise NotFound()
    return payment


# The two locking reads of a checkout's payment, built once (the ids as parameters).
@functools.cache
def _payment_locked() -> Any:
    return (select(Payment).where(Payment.merchant_id == bindparam("merchant_id"), Payment.id == bindparam("payment_id"))
            .with_for_update().execution_options(populate_existing=True))


@functools.cache
def _payment_statuses_of_order() -> Any:
    table = Payment.__table__
    return (select(table.c.status).where(table.c.merchant_id == bindparam("merchant_id", type_=BigInteger()),
                                         table.c.order_id == bindparam("order_id", type_=BigInteger()))
            .order_by(table.c.id).with_for_update())


@functools.cache
def _payments_of_order() -> Any:
    return (select(Payment).where(Payment.merchant_id == bindparam("merchant_id"),
                                  Payment.order_id == bindparam("order_id"))
            .order_by(Payment.id).with_for_update().execution_options(populate_existing=True))


# The statement of `_insert_with_trade_no`, built once (its values as bind parameters): one object, so
# SQLAlchemy's cache key and compiled form are computed once, not per payment.
_payment_insert: tuple[tuple[str, ...], Any] | None = None


def _build_payment_insert() -> tuple[tuple[str, ...], Any]:
    table = Payment.__table__
    keys = tuple(c.key for c in sa_inspect(Payment).column_attrs if c.key not in ("id", "out_trade_no"))
    new = select(func.nextval(func.pg_get_serial_sequence("payments", "id")).label("id")).cte("new_payment_id")
    digits = cast(new.c.id, String)
    trade_no = bindparam("prefix", type_=String()) + func.lpad(digits, func.greatest(12, func.length(digits)), "0")
    columns = [table.c[k] for k in keys]
    stmt = (insert(table).from_select(
        ["id", "out_trade_no", *(c.name for c in columns)],
        select(new.c.id, trade_no, *(bindparam(f"v_{k}", type_=c.type) for k, c in zip(keys, columns, strict=True))))
        .returning(table.c.id, table.c.out_trade_no))
    return keys, stmt


def _insert_with_trade_no(session: Session, payment: Payment, prefix: str) -> Payment:
    """PostgreSQL: write a new payment in one statement, its id from the table's sequence and its
    out_trade_no (`prefix` + the id in at least 12 digits) made from that id in the same INSERT … SELECT;
    the row joins the session as loaded (nothing to read back). Returns the session's copy."""
    session.flush()
    global _payment_insert
    if _payment_insert is None:
        _payment_insert = _build_payment_insert()
    keys, stmt = _payment_insert
    values = {k: getattr(payment, k) for k in keys}
    row = session.connection().execute(stmt, {"prefix": prefix, **{f"v_{k}": v for k, v in values.items()}}).one()
    loaded = Payment(id=row.id, out_trade_no=row.out_trade_no, **values)
    make_transient_to_detached(loaded)
    session.add(loaded)
    return loaded


def _close(session: Session, payment: Payment, merchant: Merchant, now: dt.datetime) -> None:
    assert_transition(payment.status, PaymentStatus.CLOSED)
    payment.status = PaymentStatus.CLOSED.value
    payment.closed_at = now
    provider = get_provider(payment.method)
    if provider is not None:
        provider.close(session, payment, merchant)


def _mark_succeeded(session: Session, payment: Payment, *, txn_id: str | None, paid_at: dt.datetime) -> None:
    assert_transition(payment.status, PaymentStatus.SUCCEEDED)
    update_written(session, payment, {"status": PaymentStatus.SUCCEEDED.value, "provider_txn_id": txn_id,
                                      "paid_at": paid_at})
    succeeded = events.PaymentSucceeded(payment_id=payment.id, order_id=payment.order_id,
                                        customer_id=payment.customer_id, amount_cents=payment.amount_cents,
                                        method=payment.method, paid_at=paid_at)
    recorded = _recorder is not None and bool(_recorder(session, succeeded, payment.merchant_id))
    emit(session, events.PAYMENT_SUCCEEDED, succeeded, merchant_id=payment.merchant_id,
         handled=_recorder_settles if recorded else ())


def _check_refundable(session: Session, payment: Payment, amount_cents: int, *, exclude_id: int | None = None) -> None:
    stmt = select(func.coalesce(func.sum(PaymentRefund.amount_cents), 0)).where(
        PaymentRefund.merchant_id == payment.merchant_id, PaymentRefund.payment_id == payment.id,
        PaymentRefund.status == RefundStatus.PENDING.value)
    if exclude_id is not None:
        stmt = stmt.where(PaymentRefund.id != exclude_id)
    pending = int(session.scalar(stmt) or 0)
    refundable = payment.amount_cents - payment.refunded_cents - pending
    if amount_cents > refundable:
        raise Conflict("The refund is more than what is left to refund.", code="refund_exceeds_paid",
                       details={"refundable_cents": max(refundable, 0), "requested_cents": amount_cents})


def _refund_succeeded(session: Session, payment: Payment, row: PaymentRefund) -> None:
    assert_refund_transition(row.status, RefundStatus.SUCCEEDED)
    if payment.refunded_cents + row.amount_cents > payment.amount_cents:
        raise Conflict("The refund is more than what is left to refund.", code="refund_exceeds_paid")
    row.status = RefundStatus.SUCCEEDED.value
    row.finished_at = clock.now()
    payment.refunded_cents += row.amount_cents
    session.flush()
    emit(session, events.PAYMENT_REFUNDED,
         events.PaymentRefunded(payment_id=payment.id, order_id=payment.order_id, refund_id=row.id,
                                amount_cents=row.amount_cents),
         merchant_id=payment.merchant_id)


def _seen(session: Session, merchant_id: int, provider: str, notification_id: str | None) -> int | None:
    """The log id of an earlier verified delivery of this notification id, if any. Callers hold the
    payment's row lock, so two deliveries of one notification cannot both miss each other."""
    if not notification_id:
        return None
    return session.scalar(select(PaymentNotification.id).where(
        PaymentNotification.merchant_id == merchant_id, PaymentNotification.provider == provider[:20],
        PaymentNotification.notification_id == notification_id))


def _clean(text: str, max_length: int) -> str:
    """Text as both databases store it: no NUL characters (PostgreSQL refuses them), bounded."""
    return text.replace("\x00", "\ufffd")[:max_length]


def _refund_result(row: PaymentRefund, *, replayed: bool = False) -> RefundResult:
    return RefundResult(refund_id=row.id, payment_id=row.payment_id, amount_cents=row.amount_cents, status=row.status,
                        out_refund_no=row.out_refund_no, error=row.error, replayed=replayed)


def move_customer_payments(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> int:
    """Two customers were merged: the source's payments now belong to the target."""
    result = session.execute(update(Payment).where(Payment.merchant_id == merchant_id, Payment.customer_id == source_id)
                             .values(customer_id=target_id))
    return result.rowcount or 0


# ------------------------------------------------------------------ WeChat Pay for other domains
# Domains above payments that call WeChat Pay themselves (e.g. distribution's transfers to change)
# sign and verify through these, never through the provider modules.

WechatPayNotConfigured = wechatpay_provider.WechatPayNotConfigured


def register_balance_provider(provider: BalanceProvider | None) -> None:
    """Plug in (or, with None, remove) what pays with the customer's stored value: the membership
    domain registers it; payments only knows the interface."""
    providers.register_balance_provider(provider)
WechatPayAnswerRejected = NotificationRejected


def wechatpay_config(merchant: Merchant) -> wechatpay_provider.Config:
    """The merchant's WeChat Pay settings (raises WechatPayNotConfigured when incomplete)."""
    return wechatpay_provider.config_for(merchant)


def wechatpay_request(merchant: Merchant, method: str, path: str, payload: dict[str, Any] | None, *,
                      platform_serial: bool = False) -> tuple[int, dict[str, Any]]:
    """A signed API v3 request for the merchant: (status, body). Raises httpx.HTTPError when it could
    not be sent and WechatPayAnswerRejected when a success answer is not signed by the platform."""
    return wechatpay_provider.signed_request(wechatpay_config(merchant), method, path, payload,
                                             platform_serial=platform_serial)
