"""Racing deliveries of one payment notification on a real database (committed rows, real
threads): exactly one succeeds, exactly one payment.succeeded event, no double pay."""

from __future__ import annotations

import threading

from sqlalchemy import delete, func, select

from siyu.core.models import EventHandlerRun, OutboxEvent
from siyu.customers.models import Customer, CustomerIdentity
from siyu.db import set_database
from siyu.merchants.models import Merchant
from siyu.payments import service
from siyu.payments.models import Payment, PaymentNotification, PaymentRefund
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.payments import make_payment, sandbox_notification

THREADS = 12


def _cleanup(database, merchant_id: int) -> None:
    with database.scope() as session:
        event_ids = select(OutboxEvent.id).where(OutboxEvent.merchant_id == merchant_id)
        session.execute(delete(EventHandlerRun).where(EventHandlerRun.event_id.in_(event_ids)))
        session.execute(delete(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id))
        session.execute(delete(PaymentNotification).where(PaymentNotification.merchant_id == merchant_id))
        session.execute(delete(PaymentRefund).where(PaymentRefund.merchant_id == merchant_id))
        session.execute(delete(Payment).where(Payment.merchant_id == merchant_id))
        session.execute(delete(CustomerIdentity).where(CustomerIdentity.merchant_id == merchant_id))
        session.execute(delete(Customer).where(Customer.merchant_id == merchant_id))
        session.execute(delete(Merchant).where(Merchant.id == merchant_id))


def test_racing_notifications_pay_once(database):
    set_database(database)
    with database.scope() as session:
        merchant = make_merchant(session)
        payment = make_payment(session, merchant=merchant, customer=make_customer(session, merchant=merchant))
        merchant_id, payment_id = merchant.id, payment.id
        # the same notification (one id) delivered many times, and fresh ones with new ids
        deliveries = [sandbox_notification(payment, notification_id="n-1") for _ in range(THREADS // 2)]
        deliveries += [sandbox_notification(payment) for _ in range(THREADS - len(deliveries))]
    try:
        barrier = threading.Barrier(THREADS)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def deliver(headers: dict[str, str], body: bytes) -> None:
            barrier.wait()
            try:
                with database.scope() as session:
                    m = session.get(Merchant, merchant_id)
                    outcome = service.handle_notification(session, merchant=m, provider="sandbox", headers=headers,
                                                          body=body)
                outcomes.append(outcome.outcome)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sorted(outcomes) == ["duplicate"] * (THREADS - 1) + ["paid"]
        with database.scope() as session:
            assert session.get(Payment, payment_id).status == "succeeded"
            assert session.scalar(select(func.count(OutboxEvent.id)).where(
                OutboxEvent.merchant_id == merchant_id, OutboxEvent.name == "payment.succeeded")) == 1
            assert session.scalar(select(func.count(PaymentNotification.id)).where(
                PaymentNotification.merchant_id == merchant_id)) == THREADS
    finally:
        _cleanup(database, merchant_id)
        set_database(None)
