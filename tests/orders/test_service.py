"""Orders as a service: creation and stock, expiry, the lifecycle, late payments, refunds."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.core.models import OutboxEvent
from siyu.customers.models import Customer
from siyu.ledger import service as ledger
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.models import Order, OrderHistory, OrderLine, RefundRequest
from siyu.orders.states import assert_transition
from siyu.payments.models import Payment, PaymentRefund
from tests.factories.customers import make_customer
from tests.factories.merchants import make_staff, make_store, principal_of
from tests.factories.orders import customer_principal, make_order, make_sku, pay, pickup, place_order
from tests.factories.payments import make_payment


def stock(db: Session, sku) -> int:
    return catalog.stock_of(db, merchant_id=sku.merchant_id, sku_ids=[sku.id])[sku.id]


def events(db: Session, name: str) -> list[dict]:
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id))]


def history(db: Session, order: Order) -> list[tuple]:
    return [(h.from_status, h.to_status) for h in
            db.scalars(select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id))]


# ---------------------------------------------------------------- creation and stock


def test_create_order_snapshots_and_reserves_stock(db: Session, merchant: Merchant) -> None:
    # given
    guide_store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role="guide", store=guide_store)
    customer = make_customer(db, merchant=merchant, owner=guide)
    a = make_sku(db, merchant=merchant, price_cents=1250, stock=5)
    b = make_sku(db, merchant=merchant, price_cents=99, stock=3)
    # when
    with clock.frozen(dt.datetime(2024, 11, 23, 2, 0, tzinfo=dt.UTC)):
        order = place_order(db, customer=customer, items=[(a, 2), (b, 1), (a, 1)])
    # then
    assert order.status == "pending_payment"
    assert order.order_no.startswith("241123") and len(order.order_no) == 20
    assert (order.subtotal_cents, order.total_cents, order.payable_cents) == (3849, 3849, 3849)
    assert (order.owner_id, order.store_id) == (guide.id, guide_store.id)
    # no touch yet: the attribution snapshot names only the customer's guide and store
    assert order.attribution == {"share_code": None, "touch_id": None, "channel": None, "sharer_staff_id": None,
                                 "sharer_customer_id": None, "guide_id": guide.id, "store_id": guide_store.id,
                                 "referrer_customer_id": None, "campaign": None, "live_id": None}
    assert order.expires_at == dt.datetime(2024, 11, 23, 2, 15, tzinfo=dt.UTC)
    lines = service.order_lines(db, order.id)
    assert [(ln.sku_id, ln.quantity, ln.unit_price_cents, ln.line_total_cents, ln.paid_cents) for ln in lines] == [
        (a.id, 3, 1250, 3750, 3750), (b.id, 1, 99, 99, 99)]
    assert (stock(db, a), stock(db, b)) == (2, 2)
    assert history(db, order) == [(None, "pending_payment")]
    created = events(db, "order.created")
    assert created[-1]["order_id"] == order.id and created[-1]["total_cents"] == 3849
    assert ledger.verify(db, merchant.id, kind="stock") == []


def test_out_of_stock_keeps_nothing(db: Session, merchant: Merchant) -> None:
    # given
    customer = make_customer(db, merchant=merchant)
    a = make_sku(db, merchant=merchant, stock=5)
    b = make_sku(db, merchant=merchant, stock=1)
    before = db.scalar(select(func.count()).select_from(Order))
    # when
    with pytest.raises(AppError) as exc, db.begin_nested():
        place_order(db, customer=customer, items=[(a, 1), (b, 2)])
    # then
    assert (exc.value.status_code, exc.value.code, exc.value.details["sku_id"]) == (409, "out_of_stock", b.id)
    assert db.scalar(select(func.count()).select_from(Order)) == before
    assert (stock(db, a), stock(db, b)) == (5, 1)


def test_stock_taken_between_read_and_decrement_is_refused(db: Session, merchant: Merchant) -> None:
    # given: the preview saw 2 units, but only 1 is left when the decrement runs
    customer = make_customer(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, stock=2)
    catalog.post_stock(db, merchant_id=merchant.id, sku_id=sku.id, delta=-1, reason="damage", idempotency_key="x1")
    # when
    with pytest.raises(AppError) as exc, db.begin_nested():
        place_order(db, customer=customer, items=[(sku, 2)])
    # then
    assert exc.value.code == "out_of_stock"
    assert stock(db, sku) == 1


def test_order_with_nothing_to_pay_is_paid_at_once(db: Session, merchant: Merchant) -> None:
    from siyu.orders import pricing

    class AllFree:
        name = "test.free"
        priority = 10

        def contribute(self, session, ctx):
            ctx.add_adjustment(kind="gift", label="赠品", amount_cents=-ctx.goods_cents, source=self.name)

    pricing.register_contributor(AllFree())
    try:
        order = make_order(db, merchant=merchant)
    finally:
        pricing.unregister_contributor("test.free")
    assert (order.status, order.total_cents, order.payable_cents) == ("paid", 0, 0)
    assert history(db, order) == [(None, "pending_payment"), ("pending_payment", "paid")]


# ---------------------------------------------------------------- expiry


def test_expiry_tick_cancels_releases_and_is_idempotent(db: Session, merchant: Merchant) -> None:
    # given
    sku = make_sku(db, merchant=merchant, stock=4)
    start = dt.datetime(2024, 11, 23, 2, 0, tzinfo=dt.UTC)
    with clock.frozen(start):
        order = make_order(db, merchant=merchant, items=[(sku, 3)])
        fresh = make_order(db, merchant=merchant, items=[(sku, 1)])
    fresh.expires_at = start + dt.timedelta(minutes=30)
    payment = make_payment(db, merchant=merchant, customer=db.get(Customer, order.customer_id), order_id=order.id,
                           amount_cents=order.payable_cents)
    db.flush()
    assert stock(db, sku) == 0
    # when: before the expiry, then after it, twice
    assert service.expire_unpaid(db, start + dt.timedelta(minutes=14)) == []
    with clock.frozen(start + dt.timedelta(minutes=16)):
        first = service.expire_unpaid(db, start + dt.timedelta(minutes=16))
        second = service.expire_unpaid(db, start + dt.timedelta(minutes=16))
    # then
    assert first == [order.id] and second == []
    db.refresh(order)
    assert (order.status, order.cancel_reason) == ("cancelled", "expired")
    assert fresh.status == "pending_payment"
    assert stock(db, sku) == 3
    db.refresh(payment)
    assert payment.status == "closed"
    assert history(db, order)[-1] == ("pending_payment", "cancelled")
    assert len([e for e in events(db, "order.cancelled") if e["order_id"] == order.id]) == 1
    assert ledger.verify(db, merchant.id, kind="stock") == []


def test_expiry_uses_the_merchant_setting(db: Session, merchant: Merchant) -> None:
    merchant.settings = {"order_expiry_minutes": 60}
    start = dt.datetime(2024, 11, 23, 2, 0, tzinfo=dt.UTC)
    with clock.frozen(start):
        order = make_order(db, merchant=merchant)
    assert order.expires_at == start + dt.timedelta(hours=1)
    assert service.expire_unpaid(db, start + dt.timedelta(minutes=59)) == []


# ---------------------------------------------------------------- lifecycle


def test_transition_table_refuses_illegal_moves() -> None:
    for old, new in [("pending_payment", "shipped"), ("cancelled", "paid"), ("refunded", "paid"),
                     ("completed", "shipped"), ("shipped", "ready_for_pickup"), ("paid", "pending_payment")]:
        with pytest.raises(AppError) as exc:
            assert_transition(old, new)
        assert (exc.value.status_code, exc.value.code) == (409, "invalid_transition")
    assert_transition("pending_payment", "paid")


def test_illegal_ship_changes_nothing(db: Session, merchant: Merchant) -> None:
    order = make_order(db, merchant=merchant)
    admin = system_principal(merchant.id)
    with pytest.raises(AppError) as exc:
        service.ship_order(db, order.id, actor=admin, carrier="顺丰", tracking_no="SF123456")
    assert exc.value.code == "invalid_transition"
    db.refresh(order)
    assert (order.status, order.carrier, order.shipped_at) == ("pending_payment", "", None)
    assert history(db, order) == [(None, "pending_payment")]


def test_paid_counts_customer_stats_once(db: Session, merchant: Merchant) -> None:
    order = make_order(db, merchant=merchant, price_cents=2590)
    pay(db, order)
    again = service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=order.payment_id,
                                   amount_cents=order.payable_cents, paid_at=clock.now())
    assert again == "already_paid"
    customer = db.get(Customer, order.customer_id)
    db.refresh(customer)
    assert (customer.paid_orders, customer.total_spent_cents) == (1, 2590)
    assert len([e for e in events(db, "order.paid") if e["order_id"] == order.id]) == 1


def test_pickup_order_gets_a_code_and_only_its_store_verifies(db: Session, merchant: Merchant) -> None:
    # given
    store, other = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    order = make_order(db, merchant=merchant, fulfilment=pickup(store), status="paid")
    assert order.status == "ready_for_pickup"
    assert order.pickup_code is not None and len(order.pickup_code) == 6 and order.pickup_code.isdigit()
    wrong_guide = principal_of(db, make_staff(db, merchant=merchant, role="guide", store=other))
    wrong_manager = principal_of(db, make_staff(db, merchant=merchant, role="store_manager", store=other))
    right_guide = principal_of(db, make_staff(db, merchant=merchant, role="guide", store=store))
    # when / then: other stores do not find it, a wrong code is refused
    for actor in (wrong_guide, wrong_manager):
        with pytest.raises(AppError) as exc:
            service.verify_pickup(db, order.id, actor=actor, code=order.pickup_code)
        assert exc.value.status_code == 404
    wrong = "000000" if order.pickup_code != "000000" else "111111"
    with pytest.raises(AppError) as exc:
        service.verify_pickup(db, order.id, actor=right_guide, code=wrong)
    assert exc.value.code == "wrong_pickup_code"
    db.refresh(order)
    assert order.status == "ready_for_pickup"
    # the right store's guide verifies
    service.verify_pickup(db, order.id, actor=right_guide, code=order.pickup_code)
    assert order.status == "completed"
    assert history(db, order)[-1] == ("ready_for_pickup", "completed")
    svg = service.pickup_qr_svg(order)
    assert svg.startswith("<svg")


def test_auto_complete_after_the_setting(db: Session, merchant: Merchant) -> None:
    start = dt.datetime(2024, 11, 1, 2, 0, tzinfo=dt.UTC)
    with clock.frozen(start):
        order = make_order(db, merchant=merchant, status="shipped")
    assert service.auto_complete(db, start + dt.timedelta(days=6, hours=23)) == []
    with clock.frozen(start + dt.timedelta(days=7)):
        assert service.auto_complete(db, start + dt.timedelta(days=7)) == [order.id]
        assert service.auto_complete(db, start + dt.timedelta(days=7)) == []
    db.refresh(order)
    assert order.status == "completed"
    closes = service.after_sales_closes_at(order, session=db)
    assert closes == start + dt.timedelta(days=14)


def test_bulk_ship_reports_each_row(db: Session, merchant: Merchant) -> None:
    a = make_order(db, merchant=merchant, status="paid")
    b = make_order(db, merchant=merchant)
    admin = principal_of(db, make_staff(db, merchant=merchant))
    text = (f"order_no,carrier,tracking_no\n{a.order_no},顺丰,SF0001\n{b.order_no},圆通,YT0002\n"
            f"nope,顺丰,SF0003\n{a.order_no},顺丰\n")
    report = service.bulk_ship_csv(db, actor=admin, text=text)
    assert [(r.row, r.ok, r.code) for r in report] == [(2, True, ""), (3, False, "invalid_transition"),
                                                       (4, False, "not_found"), (5, False, "bad_row")]
    db.refresh(a), db.refresh(b)
    assert (a.status, a.tracking_no, b.status) == ("shipped", "SF0001", "pending_payment")


# ---------------------------------------------------------------- late payment


def test_late_payment_after_expiry_is_refunded_automatically(db: Session, merchant: Merchant) -> None:
    # given: an order that expired
    order = make_order(db, merchant=merchant, price_cents=1500)
    payment = make_payment(db, merchant=merchant, customer=db.get(Customer, order.customer_id), order_id=order.id,
                           amount_cents=1500)
    service.expire_unpaid(db, order.expires_at + dt.timedelta(seconds=1))
    payment.status = "succeeded"
    payment.paid_at = clock.now()
    db.flush()
    # when: the money arrives anyway
    outcome = service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=payment.id,
                                     amount_cents=1500, paid_at=clock.now())
    again = service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=payment.id,
                                   amount_cents=1500, paid_at=clock.now())
    # then
    assert (outcome, again) == ("refunded", "refunded")
    db.refresh(order), db.refresh(payment)
    assert order.status == "cancelled"
    refunds = list(db.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == payment.id)))
    assert [(r.amount_cents, r.status, r.reason) for r in refunds] == [(1500, "succeeded", "order_expired")]
    assert payment.refunded_cents == 1500
    notes = [h.note for h in db.scalars(select(OrderHistory).where(OrderHistory.order_id == order.id))]
    assert any("order_expired" in n for n in notes)
    customer = db.get(Customer, order.customer_id)
    assert customer.paid_orders == 0


# ---------------------------------------------------------------- refunds


def _staff(db: Session, merchant: Merchant):
    return principal_of(db, make_staff(db, merchant=merchant))


def test_partial_refund_splits_by_largest_remainder(db: Session, merchant: Merchant) -> None:
    # given: 3 units paid 1000 cents in all (333.33 each), delivered
    from siyu.orders import pricing

    class Off:
        name = "test.off"
        priority = 10

        def contribute(self, session, ctx):
            ctx.add_adjustment(kind="coupon", label="券", amount_cents=-200, source=self.name)

    sku = make_sku(db, merchant=merchant, price_cents=400, stock=5)
    pricing.register_contributor(Off())
    try:
        order = make_order(db, merchant=merchant, items=[(sku, 3)], status="shipped")
    finally:
        pricing.unregister_contributor("test.off")
    line = service.order_lines(db, order.id)[0]
    assert (order.total_cents, line.paid_cents, line.discount_cents) == (1000, 1000, -200)
    customer = customer_principal(db.get(Customer, order.customer_id))
    staff = _staff(db, merchant)
    # when: refund 1 unit, then 2
    first = service.request_refund(db, order.id, actor=customer, reason="坏了", lines=[(line.id, 1)])
    assert order.status == "shipped"
    service.approve_refund(db, first.id, actor=staff, restock=True)
    second = service.request_refund(db, order.id, actor=customer, reason="也坏了", lines=[(line.id, 2)])
    assert order.status == "refunding"  # the rest of the order is asked for
    service.approve_refund(db, second.id, actor=staff)
    # then
    assert (first.amount_cents, second.amount_cents) == (334, 666)
    assert (first.status, second.status) == ("refunded", "refunded")
    db.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 1000)
    assert stock(db, sku) == 3  # 5 - 3 + 1 restocked
    payment = db.get(Payment, order.payment_id)
    assert payment.refunded_cents == 1000
    refunded = events(db, "order.refunded")
    assert [(e["amount_cents"], e["fully_refunded"]) for e in refunded if e["order_id"] == order.id] == [
        (334, False), (666, True)]
    assert refunded[-1]["lines"] == [{"order_line_id": line.id, "sku_id": sku.id, "product_id": line.product_id,
                                      "quantity": 2, "amount_cents": 666}]
    c = db.get(Customer, order.customer_id)
    db.refresh(c)
    assert (c.total_spent_cents, c.refunded_cents) == (0, 1000)


def test_refund_beyond_what_is_left_is_refused(db: Session, merchant: Merchant) -> None:
    order = make_order(db, merchant=merchant, status="paid", items=[(make_sku(db, merchant=merchant), 2)])
    line = service.order_lines(db, order.id)[0]
    customer = customer_principal(db.get(Customer, order.customer_id))
    service.request_refund(db, order.id, actor=customer, reason="不要了", lines=[(line.id, 1)])
    before = db.scalar(select(func.count()).select_from(RefundRequest))
    with pytest.raises(AppError) as exc:
        service.request_refund(db, order.id, actor=customer, reason="再退", lines=[(line.id, 2)])
    assert (exc.value.status_code, exc.value.code) == (409, "refund_exceeds_paid")
    assert db.scalar(select(func.count()).select_from(RefundRequest)) == before


def test_whole_order_refund_holds_refunding_and_reject_returns(db: Session, merchant: Merchant) -> None:
    merchant.settings = {"shipping": {"flat_cents": 800}}
    order = make_order(db, merchant=merchant, status="paid", price_cents=1200)
    customer = customer_principal(db.get(Customer, order.customer_id))
    staff = _staff(db, merchant)
    refund = service.request_refund(db, order.id, actor=customer, reason="不想要了")
    assert (refund.whole_order, refund.amount_cents, refund.shipping_cents) == (True, 2000, 800)
    assert order.status == "refunding"
    service.reject_refund(db, refund.id, actor=staff, reason="已发货")
    assert (refund.status, order.status) == ("rejected", "paid")
    again = service.request_refund(db, order.id, actor=customer, reason="还是不要")
    service.approve_refund(db, again.id, actor=staff)
    assert (order.status, order.refunded_cents) == ("refunded", 2000)
    assert [t for _, t in history(db, order)][-4:] == ["refunding", "paid", "refunding", "refunded"]


def test_after_sales_window_closes(db: Session, merchant: Merchant) -> None:
    start = dt.datetime(2024, 11, 1, 2, 0, tzinfo=dt.UTC)
    with clock.frozen(start):
        order = make_order(db, merchant=merchant, status="completed")
    customer = customer_principal(db.get(Customer, order.customer_id))
    with clock.frozen(start + dt.timedelta(days=8)), pytest.raises(AppError) as exc:
        service.request_refund(db, order.id, actor=customer, reason="晚了")
    assert exc.value.code == "after_sales_closed"
    with clock.frozen(start + dt.timedelta(days=6)):
        refund = service.request_refund(db, order.id, actor=customer, reason="还来得及")
    assert refund.amount_cents == order.total_cents


def test_refund_for_unpaid_order_is_refused(db: Session, merchant: Merchant) -> None:
    order = make_order(db, merchant=merchant)
    customer = customer_principal(db.get(Customer, order.customer_id))
    with pytest.raises(AppError) as exc:
        service.request_refund(db, order.id, actor=customer, reason="x")
    assert exc.value.code == "not_refundable"


def test_lines_keep_their_snapshot(db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, title="老标题")
    order = make_order(db, merchant=merchant, items=[(sku, 1)])
    admin = principal_of(db, make_staff(db, merchant=merchant))
    catalog.update_sku(db, sku.id, actor=admin, price_cents=2000)
    line = db.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    assert (line.title, line.unit_price_cents) == ("老标题", 1000)


def test_second_payment_of_a_paid_order_is_refunded(db: Session, merchant: Merchant) -> None:
    order = make_order(db, merchant=merchant, status="paid", price_cents=800)
    extra = make_payment(db, merchant=merchant, customer=db.get(Customer, order.customer_id), order_id=order.id,
                         amount_cents=800, status="succeeded")
    outcome = service.record_payment(db, merchant_id=merchant.id, order_id=order.id, payment_id=extra.id,
                                     amount_cents=800, paid_at=clock.now())
    assert outcome == "refunded"
    db.refresh(extra), db.refresh(order)
    assert (extra.refunded_cents, order.status, order.paid_cents) == (800, "paid", 800)


def test_provider_refund_finishes_a_processing_request(db: Session, merchant: Merchant) -> None:
    # given: an approved request whose provider refund is still pending (as WeChat Pay may leave it)
    order = make_order(db, merchant=merchant, status="paid", price_cents=700)
    customer = customer_principal(db.get(Customer, order.customer_id))
    refund = service.request_refund(db, order.id, actor=customer, reason="不要了")
    refund.status = "processing"
    refund.payment_refund_id = 424242
    db.flush()
    # when: the provider confirms, twice
    first = service.record_provider_refund(db, merchant_id=merchant.id, payment_refund_id=424242)
    second = service.record_provider_refund(db, merchant_id=merchant.id, payment_refund_id=424242)
    unknown = service.record_provider_refund(db, merchant_id=merchant.id, payment_refund_id=1)
    # then
    assert (first, second, unknown) == ("refunded", "already", "unknown")
    db.refresh(order)
    assert (refund.status, order.status, order.refunded_cents) == ("refunded", "refunded", 700)


def test_today_figures(db: Session, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant)
    make_order(db, merchant=merchant)
    make_order(db, merchant=merchant, status="paid", price_cents=1500)
    make_order(db, merchant=merchant, status="paid", price_cents=2500, fulfilment=pickup(store))
    refunded = make_order(db, merchant=merchant, status="paid", price_cents=100)
    service.request_refund(db, refunded.id, actor=customer_principal(db.get(Customer, refunded.customer_id)),
                           reason="x", lines=None)
    figures = service.today_figures(db, merchant_id=merchant.id)
    assert figures == {"orders_today": 4, "paid_orders_today": 3, "gmv_today_cents": 4100, "pending_shipments": 1,
                       "pending_pickups": 1, "refunds_waiting": 1}
    manager = principal_of(db, make_staff(db, merchant=merchant, role="store_manager", store=store))
    scoped = service.today_figures(db, merchant_id=merchant.id, principal=manager)
    assert (scoped["orders_today"], scoped["gmv_today_cents"], scoped["pending_pickups"]) == (1, 2500, 1)
