"""A sandbox confirm (like any verified payment notification) marks its order paid in the same
transaction (orders' payment recorder), so a checkout needs no second transaction; the payment.succeeded
handler afterwards finds it done. Anything but the plain case is still left to that handler."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from siyu.core.auth import system_principal
from siyu.core.models import OutboxEvent
from siyu.customers.models import Customer
from siyu.db import use_database
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.models import Order, OrderHistory
from siyu.payments import service as payments
from siyu.payments.models import Payment
from tests.conftest import committed
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal, make_order


def _events(db: Session, name: str) -> list[dict]:
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id))]


def test_confirm_marks_the_order_paid_in_its_own_transaction(db: Session, merchant: Merchant) -> None:
    # given: a pending order with a sandbox payment started
    order = make_order(db, merchant=merchant, price_cents=1290)
    customer = db.get(Customer, order.customer_id)
    started = service.pay_order(db, order.id, actor=customer_principal(customer), method="sandbox")
    sent: list[str] = []
    conn = db.connection()
    listener = lambda _c, _cur, statement, *_a: sent.append(statement)  # noqa: E731
    event.listen(conn, "before_cursor_execute", listener)
    # when: confirmed (no commit, so no handler has run)
    payment = payments.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    event.remove(conn, "before_cursor_execute", listener)
    # then: the notification it built itself (a new random id) was not looked up as a possible duplicate
    assert [s for s in sent if s.lstrip().startswith("SELECT") and "payment_notifications" in s] == []
    # and the order is paid already, with its history, its order.paid event and the customer's stats
    db.expire_all()
    order = db.get(Order, order.id)
    assert (order.status, order.paid_cents, order.payment_id) == ("paid", 1290, payment.id)
    history = [(h.from_status, h.to_status, h.actor_type) for h in
               db.scalars(select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id))]
    assert history == [(None, "pending_payment", "customer"), ("pending_payment", "paid", "system")]
    paid = _events(db, "order.paid")
    assert [(p["order_id"], p["paid_cents"], p["payment_id"], len(p["lines"])) for p in paid] == \
        [(order.id, 1290, payment.id, 1)]
    assert [p["payment_id"] for p in _events(db, "payment.succeeded")] == [payment.id]
    assert db.get(Customer, customer.id).paid_orders == 1


def test_the_handler_afterwards_finds_it_done_with_one_plain_read(db: Session, merchant: Merchant) -> None:
    # given: confirmed, so paid in the confirming transaction
    order = make_order(db, merchant=merchant, price_cents=990)
    customer = db.get(Customer, order.customer_id)
    started = service.pay_order(db, order.id, actor=customer_principal(customer), method="sandbox")
    payment = payments.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    db.flush()
    sent: list[str] = []
    conn = db.connection()
    listener = lambda _c, _cur, statement, *_a: sent.append(statement)  # noqa: E731
    event.listen(conn, "before_cursor_execute", listener)
    # when: the payment.succeeded handler's work runs
    outcome = service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=payment.id,
                                     amount_cents=990, paid_at=payment.paid_at)
    event.remove(conn, "before_cursor_execute", listener)
    # then: nothing more happened
    assert outcome == "already_paid"
    assert len(sent) == 1 and "FOR UPDATE" not in sent[0]
    assert len(_events(db, "order.paid")) == 1
    assert db.get(Customer, customer.id).paid_orders == 1


def test_a_cancelled_orders_late_payment_is_left_to_the_handler(db: Session, merchant: Merchant) -> None:
    # given: a payment started, then the order cancelled (its payment closed)
    order = make_order(db, merchant=merchant, price_cents=500)
    customer = db.get(Customer, order.customer_id)
    started = service.pay_order(db, order.id, actor=customer_principal(customer), method="sandbox")
    service.cancel_order(db, order.id, actor=system_principal(merchant.id))
    payment = db.get(Payment, started.payment_id)
    # when: the provider's notification arrives anyway
    from siyu.payments.providers import sandbox

    headers, body = sandbox.build_paid_notification(payment)
    outcome = payments.handle_notification(db, merchant=merchant, provider="sandbox", headers=headers, body=body)
    # then: the money is recorded, the order is untouched in this transaction (the handler refunds it)
    assert outcome.outcome == "paid_late"
    db.expire_all()
    assert db.get(Order, order.id).status == "cancelled"
    assert _events(db, "order.paid") == []
    assert service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=payment.id,
                                  amount_cents=500, paid_at=payment.paid_at) == "refunded"


def test_confirm_does_not_wait_for_an_order_another_transaction_holds(backend: str) -> None:
    """PostgreSQL: the order's row is taken without waiting (SKIP LOCKED), so a confirm never waits on,
    or deadlocks with, a cancel that holds the order and waits for the payment."""
    if backend != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    with committed("postgresql", "paid_in_confirm") as database, use_database(database):
        with Session(database.engine, expire_on_commit=False) as s:
            merchant = make_merchant(s)
            order = make_order(s, merchant=merchant, price_cents=700)
            customer = s.get(Customer, order.customer_id)
            started = service.pay_order(s, order.id, actor=customer_principal(customer), method="sandbox")
            s.commit()
        holder = Session(database.engine)
        confirming = Session(database.engine)
        try:
            # given: another transaction holds the order's row
            holder.scalars(select(Order).where(Order.id == order.id).with_for_update()).one()
            # when: the payment is confirmed meanwhile (a wait would fail after 3 s instead of hanging)
            confirming.execute(text("SET LOCAL lock_timeout = '3s'"))
            payment = payments.sandbox_confirm(confirming, merchant=confirming.get(Merchant, merchant.id),
                                               payment_id=started.payment_id, customer_id=customer.id)
            # then: it answered at once, the order left for the handler
            assert payment.status == "succeeded"
            assert confirming.scalar(select(Order.status).where(Order.id == order.id)) == "pending_payment"
            holder.rollback()
            confirming.commit()  # the payment.succeeded handler runs after the commit and pays the order
        finally:
            holder.close()
            confirming.close()
        with Session(database.engine) as s:
            assert s.scalar(select(Order.status).where(Order.id == order.id)) == "paid"
            assert len(list(s.scalars(select(OutboxEvent.id).where(OutboxEvent.name == "order.paid")))) == 1
