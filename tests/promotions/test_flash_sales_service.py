"""Flash sales through the services: the campaign's life (transitions, tick), the flash price at checkout,
its refusals in and out of the window (frozen clock), the allocation and per-customer limit, units given
back on cancellation and expiry (not on refunds), the admission check and the Redis sold-out gate."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from siyu.config import get_settings, reset_settings
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError, NotFound, PermissionDenied, ValidationFailed
from siyu.core.events import emit
from siyu.customers import events as customer_events
from siyu.orders import service as orders
from siyu.orders.models import Order
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.models.flash_sales import FlashSale, FlashSaleBuyer, FlashSaleItem, FlashSaleOrder
from siyu.promotions.service import flash_sales as fs
from siyu.promotions.states.flash_sales import effective_status
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, principal_of
from tests.factories.orders import checkout_body, customer_principal, make_sku, pay, place_order
from tests.factories.promotions import flash_promotion, make_flash_sale

T0 = dt.datetime(2026, 6, 18, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


def _item(session: Session, sale: FlashSale) -> FlashSaleItem:
    return session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == sale.id)
                           .execution_options(populate_existing=True)).one()


def _buy(session: Session, customer, sku, sale, quantity: int = 1) -> Order:
    return place_order(session, customer=customer, items=[(sku, quantity)], promotion=flash_promotion(sale))


def _code(fn) -> str:
    with pytest.raises(AppError) as exc:
        fn()
    return exc.value.code


def test_a_flash_order_is_priced_at_the_flash_price_and_takes_from_the_allocation(db, merchant) -> None:
    # given a ¥99 SKU with 50 in stock, on flash sale at ¥59 with 5 units
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 5, None)])
    customer = make_customer(db, merchant=merchant)

    # when the customer buys 2 through the flash sale
    order = _buy(db, customer, sku, sale, 2)

    # then the line costs 2 × ¥59, the adjustment is the flash sale's, and 2 units are taken
    assert (order.subtotal_cents, order.adjustments_cents, order.total_cents) == (19800, -8000, 11800)
    assert order.adjustments == [{"kind": "flash_sale", "label": "Flash sale", "amount_cents": -8000,
                                  "source": "promotions.flash_sale",
                                  "details": {"flash_sale_id": sale.id, "item_id": _item(db, sale).id}}]
    assert _item(db, sale).sold == 2
    row = db.scalars(select(FlashSaleOrder)).one()
    assert (row.order_id, row.quantity, row.amount_cents, row.status) == (order.id, 2, 11800, "taken")
    # and the SKU's own stock is reserved too
    facts = fs.sku_facts(db, merchant_id=merchant.id, items=[_item(db, sale)])
    assert facts[sku.id].stock == 48


def test_without_the_promotion_the_sku_sells_at_its_normal_price_and_no_query_is_made(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 5, None)])
    customer = make_customer(db, merchant=merchant)
    statements: list[str] = []
    ctx_lines = orders.build_context(db, actor=customer_principal(customer),
                                     request=CheckoutRequest.model_validate(checkout_body([(sku, 1)])))[0]

    # when the contributor and the admission check run for a checkout that chose no campaign
    engine = db.get_bind().engine

    def count(*args, **kwargs) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        fs.FlashSaleContributor().contribute(db, ctx_lines)
        fs.admission_check(db, merchant.id, CheckoutRequest.model_validate(checkout_body([(sku, 1)])))
    finally:
        event.remove(engine, "before_cursor_execute", count)

    # then nothing was asked of the database and the price is the normal one
    assert statements == []
    order = place_order(db, customer=customer, items=[(sku, 1)])
    assert order.total_cents == 9900 and order.adjustments == []
    assert _item(db, sale).sold == 0


def test_the_window_decides_with_a_frozen_clock(db, merchant) -> None:
    # given a sale from 10:00 to 10:30 (Shanghai) created earlier and scheduled
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    customer = make_customer(db, merchant=merchant)
    with clock.frozen(T0 - dt.timedelta(hours=2)):
        sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)], starts_at=T0,
                               ends_at=T0 + dt.timedelta(minutes=30))
        # then before its start
        assert _code(lambda: _buy(db, customer, sku, sale)) == "flash_not_started"
        assert fs.status_at(sale) == "scheduled"
    # at its first second it sells
    with clock.frozen(T0):
        assert fs.status_at(sale) == "active"
        assert _buy(db, customer, sku, sale).total_cents == 500
    # and its last second is already over
    with clock.frozen(T0 + dt.timedelta(minutes=30)):
        assert fs.status_at(sale) == "ended"
        assert _code(lambda: _buy(db, customer, sku, sale)) == "flash_ended"
        preview = CheckoutRequest.model_validate(checkout_body([(sku, 1)], promotion=flash_promotion(sale)))
        assert _code(lambda: orders.preview(db, actor=customer_principal(customer), request=preview)) == "flash_ended"
    assert _item(db, sale).sold == 1


def test_the_tick_moves_scheduled_to_active_to_ended_and_twice_changes_nothing(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    with clock.frozen(T0 - dt.timedelta(hours=1)):
        sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)], starts_at=T0,
                               ends_at=T0 + dt.timedelta(hours=1))
    assert fs.advance(db, T0 - dt.timedelta(minutes=1)) == 0
    assert fs.advance(db, T0) == 1
    assert fs.advance(db, T0) == 0
    db.refresh(sale)
    assert sale.status == "active"
    assert fs.advance(db, T0 + dt.timedelta(hours=1)) == 1
    db.refresh(sale)
    assert (sale.status, sale.ended_at) == ("ended", T0 + dt.timedelta(hours=1))
    assert fs.advance(db, T0 + dt.timedelta(hours=2)) == 0


def test_transitions_follow_the_table(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    actor = system_principal(merchant.id)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)], status="draft")
    customer = make_customer(db, merchant=merchant)
    # a draft is invisible to customers
    assert _code(lambda: _buy(db, customer, sku, sale)) == "flash_sale_not_found"
    assert _code(lambda: fs.pause(db, sale.id, actor=actor)) == "invalid_transition"
    fs.schedule(db, sale.id, actor=actor)
    fs.pause(db, sale.id, actor=actor)
    assert _code(lambda: _buy(db, customer, sku, sale)) == "flash_paused"
    fs.resume(db, sale.id, actor=actor)
    assert _buy(db, customer, sku, sale).total_cents == 500
    fs.end(db, sale.id, actor=actor)
    assert _code(lambda: fs.resume(db, sale.id, actor=actor)) == "invalid_transition"
    assert _code(lambda: _buy(db, customer, sku, sale)) == "flash_ended"
    assert effective_status("ended", T0, T0, T0) == "ended"


def test_only_the_brand_admin_manages_campaigns(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    guide = principal_of(db, make_staff(db, merchant=merchant, role="guide"))
    with pytest.raises(PermissionDenied):
        fs.create_flash_sale(db, actor=guide, title="x", starts_at=clock.now(),
                             ends_at=clock.now() + dt.timedelta(hours=1),
                             items=[fs.FlashItemIn(sku_id=sku.id, flash_price_cents=1, allocation=1)])
    assert db.scalar(select(func.count()).select_from(FlashSale)) == 0


@pytest.mark.parametrize(("item", "field"), [
    (dict(flash_price_cents=1000, allocation=5), "items.0.flash_price_cents"),  # not below ¥10
    (dict(flash_price_cents=500, allocation=0), "items.0.allocation"),
    (dict(flash_price_cents=500, allocation=5, per_customer_limit=0), "items.0.per_customer_limit"),
])
def test_bad_items_are_refused_with_the_field(db, merchant, item, field) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    with pytest.raises(ValidationFailed) as exc:
        fs.create_flash_sale(db, actor=system_principal(merchant.id), title="秒杀", starts_at=clock.now(),
                             ends_at=clock.now() + dt.timedelta(hours=1), items=[fs.FlashItemIn(sku_id=sku.id, **item)])
    assert list(exc.value.details["fields"]) == [field]
    assert db.scalar(select(func.count()).select_from(FlashSale)) == 0


def test_another_merchants_sku_or_sale_is_not_found(db, merchant) -> None:
    other = make_merchant(db)
    their_sku = make_sku(db, merchant=other, price_cents=1000, stock=5)
    with pytest.raises(ValidationFailed) as exc:
        fs.create_flash_sale(db, actor=system_principal(merchant.id), title="秒杀", starts_at=clock.now(),
                             ends_at=clock.now() + dt.timedelta(hours=1),
                             items=[fs.FlashItemIn(sku_id=their_sku.id, flash_price_cents=1, allocation=1)])
    assert list(exc.value.details["fields"]) == ["items.0.sku_id"]
    their_sale = make_flash_sale(db, merchant=other, items=[(their_sku, 500, 5, None)])
    with pytest.raises(NotFound):
        fs.get_flash_sale(db, their_sale.id, merchant_id=merchant.id)


def test_sold_out_and_the_limit_are_refused_and_leave_no_trace(db, merchant) -> None:
    # given 3 units, at most 2 per customer
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 3, 2)])
    alice, bob = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    _buy(db, alice, sku, sale, 2)
    orders_before = db.scalar(select(func.count()).select_from(Order))

    # when Alice asks for one more, and Bob for two
    assert _code(lambda: _buy(db, alice, sku, sale, 1)) == "flash_limit_reached"
    assert _code(lambda: _buy(db, bob, sku, sale, 2)) == "flash_sold_out"

    # then nothing changed; Bob still gets the last one
    assert db.scalar(select(func.count()).select_from(Order)) == orders_before
    assert _item(db, sale).sold == 2
    _buy(db, bob, sku, sale, 1)
    item = _item(db, sale)
    assert (item.sold, item.sold_out_at is not None) == (3, True)
    assert dict(db.execute(select(FlashSaleBuyer.customer_id, FlashSaleBuyer.bought)).tuples().all()) == {alice.id: 2,
                                                                                                  bob.id: 1}


def test_the_take_itself_refuses_past_the_allocation(db, merchant) -> None:
    # given the contributor saw 1 left, but someone took it before this order's commit
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 1, None)])
    item = _item(db, sale)
    customer = make_customer(db, merchant=merchant)
    db.execute(FlashSaleItem.__table__.update().values(sold=1))

    # then the conditional UPDATE says no
    with pytest.raises(fs.FlashSoldOut):
        fs.take(db, merchant_id=merchant.id, flash_sale_id=sale.id, item_id=item.id, sku_id=sku.id,
                customer_id=customer.id, quantity=1, limit=None, order_id=123, order_no="x", amount_cents=500)
    assert db.scalar(select(func.count()).select_from(FlashSaleOrder)) == 0


def test_the_stock_must_cover_the_flash_order_too(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=1)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)])
    customer = make_customer(db, merchant=merchant)
    assert _code(lambda: _buy(db, customer, sku, sale, 2)) == "out_of_stock"
    assert _item(db, sale).sold == 0


def test_a_flash_order_holds_one_sku_of_the_sale(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    other = make_sku(db, merchant=merchant, price_cents=1000, stock=10)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 10, None)])
    customer = make_customer(db, merchant=merchant)
    assert _code(lambda: place_order(db, customer=customer, items=[(sku, 1), (other, 1)],
                                     promotion=flash_promotion(sale))) == "flash_one_item"
    assert _code(lambda: _buy(db, customer, other, sale)) == "flash_item_not_in_sale"
    assert _code(lambda: place_order(db, customer=customer, items=[(sku, 1)],
                                     promotion={"kind": "flash_sale"})) == "flash_sale_not_found"


def test_cancel_and_expiry_give_units_back_once_but_refunds_do_not(db, merchant) -> None:
    # given 2 units, 1 per customer, both taken
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 2, 1)])
    alice, bob = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    a = _buy(db, alice, sku, sale)
    b = _buy(db, bob, sku, sale)
    assert _item(db, sale).sold == 2

    # when Alice cancels
    orders.cancel_order(db, a.id, actor=customer_principal(alice))
    db.commit()  # the order.cancelled handlers run after the commit
    # then her unit and her count come back, once (the handler again changes nothing)
    item = _item(db, sale)
    db.refresh(item)
    assert (item.sold, item.sold_out_at) == (1, None)
    assert fs.release_order(db, merchant_id=merchant.id, order_id=a.id) is False
    assert _item(db, sale).sold == 1
    assert fs.bought_by(db, item_ids=[item.id], customer_id=alice.id) == {item.id: 0}
    again = _buy(db, alice, sku, sale)
    pay(db, again)
    db.commit()

    # when Bob's unpaid order expires
    with clock.frozen(clock.now() + dt.timedelta(days=1)):
        orders.expire_unpaid(db, clock.now())
        db.commit()
    db.refresh(item)
    assert item.sold == 1

    # then a paid flash order is never released: refunds give nothing back (see the service)
    row = db.scalar(select(FlashSaleOrder).where(FlashSaleOrder.order_id == again.id))
    db.refresh(row)
    assert row.status == "paid"
    assert fs.release_order(db, merchant_id=merchant.id, order_id=again.id) is False
    db.refresh(item)
    assert item.sold == 1
    statuses = dict(db.execute(select(FlashSaleOrder.order_id, FlashSaleOrder.status)).tuples().all())
    assert statuses == {a.id: "released", b.id: "released", again.id: "paid"}


def test_live_figures(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 600, 3, None)])
    alice, bob = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    with clock.frozen(clock.now()):
        pay(db, _buy(db, alice, sku, sale, 2))
        db.commit()
        _buy(db, bob, sku, sale, 1)
        sold_out = clock.now()
    figures = fs.live_figures(db, sale)
    assert figures == {"orders": 2, "paid_orders": 1, "unpaid_orders": 1, "released_orders": 0, "buyers": 2,
                       "units_allocated": 3, "units_sold": 3, "units_paid": 2, "units_left": 0, "gmv_cents": 1200,
                       "sold_out_at": sold_out, "first_sold_out_at": sold_out}


def test_customer_merge_moves_orders_and_adds_counts(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 600, 10, 3)])
    source, target = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    _buy(db, source, sku, sale, 1)
    _buy(db, target, sku, sale, 1)
    emit(db, customer_events.CUSTOMER_MERGED, customer_events.CustomerMerged(source_id=source.id, target_id=target.id),
         merchant_id=merchant.id)
    db.commit()
    item = _item(db, sale)
    db.expire_all()
    assert fs.bought_by(db, item_ids=[item.id], customer_id=target.id) == {item.id: 2}
    assert fs.bought_by(db, item_ids=[item.id], customer_id=source.id) == {}
    assert set(db.scalars(select(FlashSaleOrder.customer_id))) == {target.id}


@contextlib.contextmanager
def _statements(db) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL statements sent to the database inside the block."""
    statements: list[str] = []
    engine = db.get_bind().engine

    def count(*args, **kwargs) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_admission_refuses_a_sold_out_item_with_one_read(db, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 1, None)])
    _buy(db, make_customer(db, merchant=merchant), sku, sale)
    request = CheckoutRequest.model_validate(checkout_body([(sku, 1)], promotion=flash_promotion(sale)))
    with _statements(db) as statements, pytest.raises(fs.FlashSoldOut):
        fs.admission_check(db, merchant.id, request)
    assert len(statements) == 1 and "promotions_flash_sale_items" in statements[0]


@pytest.fixture
def redis_gate(monkeypatch):
    """The gate on the local Redis with a key prefix of our own (skipped when no Redis answers)."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
    except Exception:
        pytest.skip("no Redis at 127.0.0.1:6379")
    monkeypatch.setenv("SIYU_REDIS_URL", url)
    monkeypatch.setattr(fs.gate, "prefix", f"siyu-test-h3:{id(monkeypatch)}:")
    reset_settings()
    fs.gate.reset()
    yield redis.Redis.from_url(url)
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{fs.gate.prefix}*"):
        client.delete(key)
    monkeypatch.delenv("SIYU_REDIS_URL")
    reset_settings()
    fs.gate.reset()


def test_the_redis_gate_answers_sold_out_without_the_database_and_clears_on_cancel(db, merchant, redis_gate) -> None:
    # given the last unit taken, and a late buyer told so by the database (which sets the mark)
    assert get_settings().redis_url
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 1, None)])
    alice = make_customer(db, merchant=merchant)
    first = _buy(db, alice, sku, sale)
    request = CheckoutRequest.model_validate(checkout_body([(sku, 1)], promotion=flash_promotion(sale)))
    with pytest.raises(fs.FlashSoldOut):
        fs.admission_check(db, merchant.id, request)
    assert redis_gate.exists(fs.gate.key(merchant.id, sale.id, sku.id)) == 1

    # when the next buyer asks: no statement reaches the database
    with _statements(db) as statements, pytest.raises(fs.FlashSoldOut):
        fs.admission_check(db, merchant.id, request)
    assert statements == []

    # when the unit comes back, the mark goes and the next buyer gets it
    orders.cancel_order(db, first.id, actor=customer_principal(alice))
    db.commit()
    assert redis_gate.exists(fs.gate.key(merchant.id, sale.id, sku.id)) == 0
    assert _buy(db, make_customer(db, merchant=merchant), sku, sale).total_cents == 500


def test_a_dead_redis_means_no_gate_not_an_error(db, merchant, monkeypatch) -> None:
    monkeypatch.setenv("SIYU_REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()
    fs.gate.reset()
    try:
        sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
        sale = make_flash_sale(db, merchant=merchant, items=[(sku, 500, 1, None)])
        assert _buy(db, make_customer(db, merchant=merchant), sku, sale).total_cents == 500
        assert _code(lambda: _buy(db, make_customer(db, merchant=merchant), sku, sale)) == "flash_sold_out"
    finally:
        monkeypatch.delenv("SIYU_REDIS_URL")
        reset_settings()
        fs.gate.reset()
