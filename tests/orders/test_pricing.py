"""The pricing pipeline: shipping rules, the contributor protocol, exact breakdowns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from siyu.core.errors import AppError
from siyu.merchants import service as merchants
from siyu.merchants.models import Merchant
from siyu.orders import pricing, service
from siyu.orders.schemas import CheckoutRequest
from tests.factories.customers import make_customer
from tests.factories.groupbuy import leader_fulfilment, make_leader, make_wave
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of
from tests.factories.orders import ADDRESS, checkout_body, customer_principal, delivery, make_sku, pickup


def _preview(db: Session, merchant: Merchant, body: dict) -> dict:
    customer = make_customer(db, merchant=merchant)
    return service.preview(db, actor=customer_principal(customer), request=CheckoutRequest.model_validate(body))


def _set_shipping(db: Session, merchant: Merchant, shipping: dict) -> None:
    merchant.settings = {**(merchant.settings or {}), "shipping": shipping}
    db.flush()


def test_default_is_free_shipping_and_exact_totals(db: Session, merchant: Merchant) -> None:
    # given
    a = make_sku(db, merchant=merchant, price_cents=1999)
    b = make_sku(db, merchant=merchant, price_cents=350)
    # when
    result = _preview(db, merchant, checkout_body([(a, 2), (b, 3)]))
    # then
    assert [(ln["sku_id"], ln["quantity"], ln["subtotal_cents"]) for ln in result["lines"]] == [
        (a.id, 2, 3998), (b.id, 3, 1050)]
    assert result["adjustments"] == []
    assert result["shipping_cents"] == 0
    assert result["total_cents"] == 5048
    assert result["payable_cents"] == 5048


def test_flat_fee_free_over_threshold_and_province_override(db: Session, merchant: Merchant) -> None:
    # given
    _set_shipping(db, merchant, {"flat_cents": 800, "free_over_cents": 9900,
                                 "provinces": {"新疆": {"flat_cents": 2500, "free_over_cents": None}}})
    cheap = make_sku(db, merchant=merchant, price_cents=5000)
    # when / then: flat fee under the threshold
    assert _preview(db, merchant, checkout_body([(cheap, 1)]))["shipping_cents"] == 800
    # free at the threshold
    result = _preview(db, merchant, checkout_body([(cheap, 2)]))
    assert (result["shipping_cents"], result["total_cents"]) == (0, 10000)
    # the province's own rule, never free
    far = {**ADDRESS, "province": "新疆维吾尔自治区"}
    result = _preview(db, merchant, checkout_body([(cheap, 2)], fulfilment=delivery(far)))
    assert (result["shipping_cents"], result["total_cents"], result["payable_cents"]) == (2500, 12500, 12500)


def test_pickup_and_leader_pay_no_shipping(db: Session, merchant: Merchant) -> None:
    _set_shipping(db, merchant, {"flat_cents": 800})
    store = make_store(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, price_cents=1000)
    assert _preview(db, merchant, checkout_body([(sku, 1)], fulfilment=pickup(store)))["shipping_cents"] == 0
    # (group buying validates the leader and the wave; a wave at the list price adds nothing)
    leader = make_leader(db, merchant=merchant)
    make_wave(db, merchant=merchant, items=[(sku, 1000, 10)])
    assert _preview(db, merchant, checkout_body([(sku, 1)], fulfilment=leader_fulfilment(leader)))["total_cents"] == 1000


class TenPercentOff:
    """A stand-in for a promotions contributor: 10% off, and 2 yuan of points."""

    name = "test.ten_percent"
    priority = 20

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        ctx.add_adjustment(kind="percent", label="九折", amount_cents=-(ctx.goods_cents // 10), source=self.name)


class PointsPart:
    name = "test.points"
    priority = 90

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.points:
            ctx.add_payment_part(kind="points", amount_cents=ctx.points, source=self.name)


@pytest.fixture
def contributors():
    pricing.register_contributor(TenPercentOff())
    pricing.register_contributor(PointsPart())
    yield
    pricing.unregister_contributor(TenPercentOff.name)
    pricing.unregister_contributor(PointsPart.name)


def test_registered_contributors_adjust_and_allocate_exactly(db: Session, merchant: Merchant, contributors) -> None:
    # given: 10% off 3333 + 1 cents, shipping 800 under a 9900 threshold, 200 cents of points
    _set_shipping(db, merchant, {"flat_cents": 800, "free_over_cents": 9900})
    a = make_sku(db, merchant=merchant, price_cents=3333)
    b = make_sku(db, merchant=merchant, price_cents=1)
    # when
    result = _preview(db, merchant, checkout_body([(a, 1), (b, 1)], points=200))
    # then: the discount is allocated by largest remainder and sums exactly
    assert result["adjustments"] == [{"kind": "percent", "label": "九折", "amount_cents": -333}]
    assert [ln["discount_cents"] for ln in result["lines"]] == [-333, 0]
    assert [ln["paid_cents"] for ln in result["lines"]] == [3000, 1]
    assert result["shipping_cents"] == 800
    assert result["total_cents"] == 3001 + 800
    assert result["payment_parts"] == [{"kind": "points", "amount_cents": 200}]
    assert result["payable_cents"] == 3801 - 200


def test_discounts_never_take_lines_below_zero() -> None:
    ctx = pricing.PricingContext(merchant_id=1, customer_id=1, fulfilment=pricing.Fulfilment(type="pickup"),
                                 lines=[pricing.PricingLine(sku_id=1, product_id=1, category_id=None, title="a",
                                                            spec={}, unit_price_cents=500, quantity=1),
                                        pricing.PricingLine(sku_id=2, product_id=2, category_id=None, title="b",
                                                            spec={}, unit_price_cents=300, quantity=1)])
    adj = ctx.add_adjustment(kind="coupon", label="券", amount_cents=-10_000, source="t")
    assert adj is not None and adj.amount_cents == -800
    assert [ln.amount_cents for ln in ctx.lines] == [0, 0]
    assert ctx.total_cents == 0 and ctx.payable_cents == 0
    assert ctx.add_adjustment(kind="coupon", label="券", amount_cents=-1, source="t") is None


def test_only_sellable_skus(db: Session, merchant: Merchant) -> None:
    draft = make_sku(db, merchant=merchant, status="draft")
    other = make_sku(db, merchant=make_merchant(db))
    for sku in (draft, other):
        with pytest.raises(AppError) as exc:
            _preview(db, merchant, checkout_body([(sku, 1)]))
        assert exc.value.code == "sku_unavailable"
        assert exc.value.details == {"sku_id": sku.id}


def test_shipping_rules_round_trip(db: Session, merchant: Merchant) -> None:
    admin = principal_of(db, make_staff(db, merchant=merchant))
    got = service.update_order_settings(db, actor=admin, order_expiry_minutes=30,
                                        shipping={"flat_cents": 600, "provinces": {"西藏": {"flat_cents": 3000}}})
    assert got == {"order_expiry_minutes": 30, "auto_complete_days": 7, "after_sales_days": 7,
                   "shipping": {"flat_cents": 600, "free_over_cents": None,
                                "provinces": {"西藏": {"flat_cents": 3000, "free_over_cents": None}}}}
    assert merchants.get_merchant(db, merchant.id).settings["order_expiry_minutes"] == 30


@given(paid=st.integers(min_value=0, max_value=10**7), quantity=st.integers(min_value=1, max_value=999),
       data=st.data())
def test_unit_refunds_always_sum_to_what_was_paid(paid: int, quantity: int, data: st.DataObject) -> None:
    # refunding a line in any number of steps gives back exactly its paid amount, each step
    # within one cent of its fair share
    steps = data.draw(st.lists(st.integers(min_value=1, max_value=quantity), max_size=20))
    done, parts = 0, []
    for step in steps:
        step = min(step, quantity - done)
        if step <= 0:
            break
        parts.append(service.unit_prefix(paid, quantity, done + step) - service.unit_prefix(paid, quantity, done))
        done += step
    if done < quantity:
        parts.append(service.unit_prefix(paid, quantity, quantity) - service.unit_prefix(paid, quantity, done))
    assert sum(parts) == paid
    assert all(p >= 0 for p in parts)
