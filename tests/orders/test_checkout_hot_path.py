"""The round trips a checkout saves: a confirm that pays its order in its own transaction writes the
payment.succeeded event processed (no event run after the commit); a live customer's paid order is
counted in one statement on PostgreSQL; stock for a new order is reserved in one statement on
PostgreSQL; an order's attribution reads the customer's bindings once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import AttributedOrder
from siyu.attribution.models.shares import FunnelEvent
from siyu.attribution.service import funnel, shares
from siyu.catalog import service as catalog
from siyu.catalog.service import OutOfStock
from siyu.core import events
from siyu.core.models import EventHandlerRun, OutboxEvent
from siyu.customers import service as customers
from siyu.customers.models import Customer
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.service.lifecycle import PAYMENT_SUCCEEDED_HANDLER
from siyu.payments import service as payments
from siyu.payments.models import Payment
from siyu.payments.providers import sandbox
from tests.factories.customers import make_customer
from tests.factories.orders import customer_principal, make_order, make_sku

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


class _Statements:
    def __init__(self, db: Session) -> None:
        self.conn = db.connection()
        self.sent: list[str] = []

    def _listener(self, _conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        self.sent.append(" ".join(statement.split()))

    def __enter__(self) -> list[str]:
        event.listen(self.conn, "before_cursor_execute", self._listener)
        return self.sent

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.conn, "before_cursor_execute", self._listener)


def _event(db: Session, name: str) -> OutboxEvent:
    [row] = db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id.desc()).limit(1))
    return row


def test_the_orders_handler_is_the_one_a_paying_confirm_settles() -> None:
    events.load_handlers()
    assert [key for key, _fn in events.handlers_for("payment.succeeded")] == [PAYMENT_SUCCEEDED_HANDLER]


def test_a_confirm_that_pays_the_order_writes_payment_succeeded_processed(db: Session, merchant: Merchant) -> None:
    # given: a pending order with a sandbox payment started
    order = make_order(db, merchant=merchant, price_cents=1290)
    customer = db.get(Customer, order.customer_id)
    started = service.pay_order(db, order.id, actor=customer_principal(customer), method="sandbox")
    # when: confirmed (not committed: what waits for the commit is still in the session)
    payments.sandbox_confirm(db, merchant=merchant, payment_id=started.payment_id, customer_id=customer.id)
    db.flush()
    # then: the order is paid, payment.succeeded is written processed and nothing runs for it after the commit;
    # order.paid waits for the commit as before
    succeeded, paid = _event(db, "payment.succeeded"), _event(db, "order.paid")
    assert succeeded.processed_at is not None and paid.processed_at is None
    assert succeeded.payload["payment_id"] == started.payment_id
    pending = [ev.name for ev in db.info.get(events.PENDING_KEY, [])]
    assert "payment.succeeded" not in pending and "order.paid" in pending
    assert db.scalar(select(EventHandlerRun.id).where(EventHandlerRun.event_id == succeeded.id)) is None


def test_a_late_payment_leaves_payment_succeeded_to_its_handler(db: Session, merchant: Merchant) -> None:
    # given: a payment started, then the order cancelled
    order = make_order(db, merchant=merchant, price_cents=500)
    customer = db.get(Customer, order.customer_id)
    started = service.pay_order(db, order.id, actor=customer_principal(customer), method="sandbox")
    service.cancel_order(db, order.id, actor=customer_principal(customer))
    payment = db.get(Payment, started.payment_id)
    # when: the provider's notification arrives anyway
    headers, body = sandbox.build_paid_notification(payment)
    payments.handle_notification(db, merchant=merchant, provider="sandbox", headers=headers, body=body)
    db.flush()
    # then: the event is pending for its handler (which refunds the money)
    assert _event(db, "payment.succeeded").processed_at is None
    assert "payment.succeeded" in [ev.name for ev in db.info.get(events.PENDING_KEY, [])]


def test_an_event_is_written_processed_only_when_every_handler_is_handled(db: Session, merchant: Merchant) -> None:
    events.load_handlers()
    keys = [key for key, _fn in events.handlers_for("order.paid")]
    assert len(keys) > 1
    written = events.emit(db, "order.paid", {"order_id": 1}, merchant_id=merchant.id, handled=keys[:1])
    db.flush()
    assert db.get(OutboxEvent, written.id).processed_at is None
    assert written.id in [ev.id for ev in db.info.get(events.PENDING_KEY, [])]
    db.info.pop(events.PENDING_KEY, None)  # nothing of this made-up event may run
    # with every handler named, the event is written processed and nothing runs after the commit
    settled = events.emit(db, "order.paid", {"order_id": 2}, merchant_id=merchant.id, handled=keys)
    db.flush()
    assert db.get(OutboxEvent, settled.id).processed_at is not None
    assert not db.info.get(events.PENDING_KEY)


def test_a_live_customers_paid_order_is_counted_in_one_statement_on_postgresql(db: Session, merchant: Merchant,
                                                                                backend: str) -> None:
    c = make_customer(db, merchant=merchant)
    db.flush()
    with _Statements(db) as sent:
        assert customers.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=31,
                                           amount_cents=700, paid_at=T0) is True
    assert len(sent) == (1 if backend == "postgresql" else 2)
    with _Statements(db) as sent:
        assert customers.record_paid_order(db, merchant_id=merchant.id, customer_id=c.id, order_id=31,
                                           amount_cents=700, paid_at=T0) is False
    db.refresh(c)
    assert (c.paid_orders, c.total_spent_cents, c.last_order_cents, c.max_order_cents) == (1, 700, 700, 700)
    assert c.first_purchase_at == T0 and c.last_purchase_at == T0


def test_stock_for_a_new_order_is_reserved_in_one_statement_on_postgresql(db: Session, merchant: Merchant,
                                                                         backend: str) -> None:
    sku = make_sku(db, merchant=merchant, stock=3)
    db.flush()
    with _Statements(db) as sent:
        left = catalog.reserve_new(db, merchant_id=merchant.id, sku_id=sku.id, quantity=2,
                                   idempotency_key="order:991:reserve", ref_type="order", ref_id=991)
    assert left == 1
    assert len(sent) == (1 if backend == "postgresql" else 2)
    with pytest.raises(OutOfStock):
        catalog.reserve_new(db, merchant_id=merchant.id, sku_id=sku.id, quantity=2,
                            idempotency_key="order:992:reserve", ref_type="order", ref_id=992)
    assert catalog.reserve_new(db, merchant_id=merchant.id, sku_id=sku.id, quantity=1,
                               idempotency_key="order:993:reserve", ref_type="order", ref_id=993) == 0


def test_attribution_handles_order_created_in_the_orders_transaction(db: Session, merchant: Merchant) -> None:
    events.load_handlers()
    assert {key for key, _fn in events.handlers_for("order.created")} == set(funnel.ORDER_CREATED_HANDLERS)
    # given: one customer who came through a touch, one who did not
    touched = make_customer(db, merchant=merchant)
    plain = make_customer(db, merchant=merchant)
    db.flush()
    touch = shares.record_touch(db, merchant_id=merchant.id, channel="moments", customer_id=touched.id,
                                at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    for customer, touch_id, channel in ((touched, touch.id, "moments"), (plain, None, None)):
        # when: each places an order (not committed)
        order = make_order(db, merchant=merchant, customer=customer)
        db.flush()
        # then: order.created is written processed, and its handlers' rows are already there
        created = db.scalar(select(OutboxEvent).where(OutboxEvent.name == "order.created",
                                                      OutboxEvent.payload["order_id"].as_integer() == order.id))
        assert created is not None and created.processed_at is not None
        assert created.id not in [ev.id for ev in db.info.get(events.PENDING_KEY, [])]
        copy = db.scalar(select(AttributedOrder).where(AttributedOrder.order_id == order.id))
        assert copy is not None and copy.total_cents == order.total_cents and copy.channel == channel
        row = db.scalar(select(FunnelEvent).where(FunnelEvent.order_id == order.id))
        assert row is not None and row.kind == funnel.FUNNEL_KINDS["order"]
        assert (row.touch_id, row.channel, row.amount_cents) == (touch_id, channel, order.total_cents)
        assert row.customer_id == customer.id and row.at == order.created_at
