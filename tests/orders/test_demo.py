"""The demo's year of orders: consistent with the customers' stats, the payments, the refunds and
the order state machine; deterministic; no stock moved and no events written for history."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from sqlalchemy import func, select

from siyu.core.models import OutboxEvent
from siyu.customers import service as customers
from siyu.customers.models import Customer, CustomerStatChange
from siyu.demo import demo_now, seed_demo
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerEntry
from siyu.orders.models import CustomerAddress, Order, OrderHistory, OrderLine, RefundLine, RefundRequest
from siyu.orders.states import OrderStatus, can_transition
from siyu.payments.models import Payment, PaymentRefund
from tests.conftest import BACKENDS, fresh_database

SCALE = 0.03
NOW = demo_now(dt.date(2026, 5, 20))
EVER_PAID = {"paid", "shipped", "ready_for_pickup", "completed", "refunding", "refunded"}
ORDER_TABLES = (Order, OrderLine, OrderHistory, RefundRequest, RefundLine, Payment, PaymentRefund, CustomerAddress,
                CustomerStatChange, Customer)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest):
    database = fresh_database(request.param, name="orders_demo")
    ctx = seed_demo(database, scale=SCALE, now=NOW)
    yield database, ctx
    database.dispose()


def _rows(session, model):
    return list(session.scalars(select(model).order_by(model.id)))


def _own_orders(session, ctx):
    """The orders of the orders demo (later domains' demos, e.g. group buying, place their own
    orders through the services; those follow the live flow, not this history)."""
    own = set(ctx.data["order_ids"])
    return [o for o in _rows(session, Order) if o.id in own]


def test_the_demo_has_a_lively_year_of_orders(seeded) -> None:
    database, ctx = seeded
    with database.scope() as session:
        orders = _own_orders(session, ctx)
        n_customers = session.scalar(select(func.count()).select_from(Customer))

    # then there are orders over the whole year, for most but not all customers
    assert len(orders) > n_customers
    assert min(o.created_at for o in orders) < NOW - dt.timedelta(days=300)
    assert max(o.created_at for o in orders) > NOW - dt.timedelta(days=3)
    assert all(o.created_at < NOW for o in orders)
    buyers = Counter(o.customer_id for o in orders)
    assert len(buyers) < n_customers
    assert max(buyers.values()) >= 5  # some loyal ones
    statuses = Counter(o.status for o in orders)
    assert statuses["completed"] > len(orders) / 2
    assert statuses["cancelled"] > 0 and statuses["refunded"] > 0
    assert {o.fulfilment_type for o in orders} == {"delivery", "pickup"}
    assert ctx.data["order_ids"] == [o.id for o in orders]


def test_every_order_follows_the_state_machine(seeded) -> None:
    database, ctx = seeded
    with database.scope() as session:
        orders = _own_orders(session, ctx)
        history: dict[int, list[OrderHistory]] = defaultdict(list)
        for row in _rows(session, OrderHistory):
            history[row.order_id].append(row)
        customer_of = {c.id: c for c in _rows(session, Customer)}

    legal = {s.value for s in OrderStatus}
    for o in orders:
        assert o.status in legal and o.status != "pending_payment", o.order_no
        rows = history[o.id]
        assert rows[0].from_status is None and rows[0].to_status == "pending_payment"
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.from_status == before.to_status, o.order_no
            assert after.created_at >= before.created_at, o.order_no
            assert after.from_status == after.to_status or can_transition(after.from_status, after.to_status), \
                (o.order_no, after.from_status, after.to_status)
        assert rows[-1].to_status == o.status
        # the guide owner is copied from the customer
        assert o.owner_id == customer_of[o.customer_id].owner_id
        # times agree with the status
        assert (o.paid_at is not None) == (o.status in EVER_PAID)
        assert (o.cancelled_at is not None) == (o.status == "cancelled")
        if o.status == "shipped":
            assert o.shipped_at and o.carrier and o.tracking_no
        if o.fulfilment_type == "pickup":
            assert o.pickup_store_id and o.fulfilment["store"]["name"] and o.shipping_cents == 0
            assert o.store_id == o.pickup_store_id
            if o.status == "ready_for_pickup":
                assert o.pickup_code and len(o.pickup_code) == 6
        else:
            assert o.fulfilment["address"]["detail"]
    codes = [o.pickup_code for o in orders if o.status == "ready_for_pickup"]
    assert len(codes) == len(set(codes))


def test_payments_and_refunds_match_the_orders(seeded) -> None:
    database, ctx = seeded
    with database.scope() as session:
        orders = _own_orders(session, ctx)
        own = {o.id for o in orders}
        lines: dict[int, list[OrderLine]] = defaultdict(list)
        for line in _rows(session, OrderLine):
            lines[line.order_id].append(line)
        payments = [p for p in _rows(session, Payment) if p.order_id in own]
        refunds = [r for r in _rows(session, RefundRequest) if r.order_id in own]
        refund_lines: dict[int, list[RefundLine]] = defaultdict(list)
        for rl in _rows(session, RefundLine):
            refund_lines[rl.refund_id].append(rl)
        provider_refunds = {r.id: r for r in _rows(session, PaymentRefund)}

    paid = [o for o in orders if o.status in EVER_PAID]
    # one succeeded sandbox payment per paid order, for exactly its payable amount
    assert sum(p.amount_cents for p in payments) == sum(o.payable_cents for o in paid)
    by_order = {p.order_id: p for p in payments}
    assert len(by_order) == len(payments) == len(paid)
    for o in orders:
        assert o.subtotal_cents == sum(line.line_total_cents for line in lines[o.id])
        assert o.total_cents == o.subtotal_cents + o.shipping_cents == o.payable_cents
        if o.status in EVER_PAID:
            p = by_order[o.id]
            assert (p.status, p.method, o.payment_id, o.paid_cents) == ("succeeded", "sandbox", p.id, o.payable_cents)
        else:
            assert o.id not in by_order and o.paid_cents == 0 and o.payment_id is None

    # refunds: what the orders, their lines and the payments say was given back
    done: dict[int, int] = defaultdict(int)
    for r in refunds:
        parts = refund_lines[r.id]
        assert sum(rl.amount_cents for rl in parts) + r.shipping_cents == r.amount_cents == r.money_cents
        if r.status == "refunded":
            done[r.order_id] += r.amount_cents
            pr = provider_refunds[r.payment_refund_id]
            assert (pr.status, pr.amount_cents, pr.refund_key) == ("succeeded", r.amount_cents, f"after_sale:{r.id}")
        else:
            assert r.status == "pending" and r.payment_refund_id is None
    assert any(r.status == "refunded" and not r.whole_order for r in refunds)
    for o in orders:
        assert o.refunded_cents == done[o.id] <= o.paid_cents
        assert sum(line.refunded_cents for line in lines[o.id]) + (o.shipping_cents if o.status == "refunded"
                                                                    and o.shipped_at is None else 0) == done[o.id]
        if o.status == "refunded":
            assert all(line.refunded_quantity == line.quantity for line in lines[o.id])
        if o.id in by_order:
            assert by_order[o.id].refunded_cents == done[o.id]


def test_customer_stats_are_exactly_the_orders(seeded) -> None:
    database, ctx = seeded
    with database.scope() as session:
        orders = _rows(session, Order)
        refunds = [r for r in _rows(session, RefundRequest) if r.status == "refunded"]
        people = _rows(session, Customer)

    expected: dict[int, dict] = defaultdict(lambda: {"paid_orders": 0, "total_spent_cents": 0, "refunded_cents": 0,
                                                     "first_purchase_at": None, "last_purchase_at": None,
                                                     "last_order_cents": 0, "max_order_cents": 0})
    for o in sorted((o for o in orders if o.paid_at), key=lambda o: o.paid_at):
        e = expected[o.customer_id]
        e["paid_orders"] += 1
        e["total_spent_cents"] += o.total_cents
        e["first_purchase_at"] = e["first_purchase_at"] or o.paid_at
        e["last_purchase_at"], e["last_order_cents"] = o.paid_at, o.total_cents
        e["max_order_cents"] = max(e["max_order_cents"], o.total_cents)
    customer_of = {o.id: o.customer_id for o in orders}
    for r in refunds:
        e = expected[customer_of[r.order_id]]
        e["total_spent_cents"] -= r.amount_cents
        e["refunded_cents"] += r.amount_cents
    for c in people:
        e = expected[c.id]
        assert {k: getattr(c, k) for k in e} == e, c.id
    assert sum(1 for c in people if c.paid_orders) == len({o.customer_id for o in orders if o.paid_at})

    # and the stats functions know these orders are counted already
    o = next(o for o in orders if o.paid_at)
    with database.scope() as session:
        assert customers.record_paid_order(session, merchant_id=ctx.merchant_id, customer_id=o.customer_id,
                                           order_id=o.id, amount_cents=o.total_cents, paid_at=o.paid_at) is False


def test_history_moves_no_stock_and_emits_nothing(seeded) -> None:
    database, ctx = seeded
    with database.scope() as session:
        own = set(ctx.data["order_ids"])
        own_refunds = {r.id for r in _rows(session, RefundRequest) if r.order_id in own}
        order_entries = sum(1 for e in session.scalars(select(LedgerEntry).where(
            LedgerEntry.ref_type.in_(("order", "refund"))))
            if (e.ref_type == "order" and e.ref_id in own) or (e.ref_type == "refund" and e.ref_id in own_refunds))
        events = [e.name for e in session.scalars(select(OutboxEvent).where(
            OutboxEvent.name.like("order.%") | OutboxEvent.name.like("payment.%")))
            if e.payload.get("order_id") in own]
        assert ledger.verify(session, ctx.merchant_id) == []
    assert order_entries == 0
    assert events == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_runs_build_the_same_orders(backend: str) -> None:
    from tests.test_demo import table_digests

    digests = []
    for _ in range(2):
        database = fresh_database(backend, name="orders_demo_twice")
        try:
            seed_demo(database, scale=0.01, now=NOW)
            all_tables = table_digests(database)
            digests.append({m.__tablename__: all_tables[m.__tablename__] for m in ORDER_TABLES})
        finally:
            database.dispose()
    assert digests[0] == digests[1]
