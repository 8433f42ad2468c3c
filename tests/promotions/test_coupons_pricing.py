"""The coupon contributors in the price engine: a table of stacking cases with exact breakdowns.

Shop: product A (¥100, category 1) and product B (¥50, category 2); delivery costs ¥10 flat.
Pipeline order: campaign price (20) → member tier discount (60) → coupon (70) → shipping (80) →
member free shipping (85) → free-shipping coupon (87) → points (90)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.catalog.models import Sku
from siyu.core.errors import AppError
from siyu.orders import pricing
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.service import coupons as coupon_service  # noqa: F401 (registers the contributors)
from tests.factories.catalog import make_category, make_product
from tests.factories.customers import make_customer
from tests.factories.membership import make_member, make_tier, set_rules
from tests.factories.merchants import make_merchant
from tests.factories.orders import checkout_body, customer_principal
from tests.factories.promotions import give_coupon, make_coupon_template


@dataclasses.dataclass
class Shop:
    merchant: Any
    customer: Any
    a: Any  # SKU of product A, ¥100
    b: Any  # SKU of product B, ¥50
    product_a: Any
    product_b: Any
    cat_a: Any
    cat_b: Any


@pytest.fixture
def shop(db: Session) -> Shop:
    merchant = make_merchant(db)
    merchant.settings = {**(merchant.settings or {}), "shipping": {"flat_cents": 1000}}
    cat_a, cat_b = make_category(db, merchant=merchant), make_category(db, merchant=merchant)
    pa = make_product(db, merchant=merchant, skus=[{"spec": {}, "price_cents": 10_000}], category=cat_a, stock=50)
    pb = make_product(db, merchant=merchant, skus=[{"spec": {}, "price_cents": 5000}], category=cat_b, stock=50)
    customer = make_customer(db, merchant=merchant)
    db.flush()
    sku_a = db.scalars(select(Sku).where(Sku.product_id == pa.id)).one()
    sku_b = db.scalars(select(Sku).where(Sku.product_id == pb.id)).one()
    return Shop(merchant, customer, sku_a, sku_b, pa, pb, cat_a, cat_b)


def preview(db: Session, shop: Shop, items: list[tuple[Any, int]], **extra: Any) -> dict[str, Any]:
    request = CheckoutRequest.model_validate(checkout_body(items, **extra))
    return orders.preview(db, actor=customer_principal(shop.customer), request=request)


def summary(priced: dict[str, Any]) -> dict[str, Any]:
    return {"adjustments": [(a["kind"], a["amount_cents"]) for a in priced["adjustments"]],
            "line_discounts": [line["discount_cents"] for line in priced["lines"]],
            "shipping": priced["shipping_cents"], "total": priced["total_cents"],
            "parts": [(p["kind"], p["amount_cents"]) for p in priced["payment_parts"]],
            "payable": priced["payable_cents"]}


# Each case: template fields, the basket ("a"/"b" with quantities), and the exact breakdown.
CASES = [
    pytest.param({"kind": "fixed", "amount_cents": 1000}, [("a", 1)],
                 {"adjustments": [("coupon", -1000)], "line_discounts": [-1000], "shipping": 1000, "total": 10_000,
                  "parts": [], "payable": 10_000}, id="fixed-10-off"),
    pytest.param({"kind": "threshold", "threshold_cents": 10_000, "amount_cents": 2000}, [("a", 1), ("b", 1)],
                 {"adjustments": [("coupon", -2000)], "line_discounts": [-1333, -667], "shipping": 1000,
                  "total": 14_000, "parts": [], "payable": 14_000}, id="threshold-met-split-by-line"),
    pytest.param({"kind": "percent", "percent_bps": 2000, "cap_cents": 1500}, [("a", 1), ("b", 1)],
                 {"adjustments": [("coupon", -1500)], "line_discounts": [-1000, -500], "shipping": 1000,
                  "total": 14_500, "parts": [], "payable": 14_500}, id="percent-20-capped-at-15"),
    pytest.param({"kind": "percent", "percent_bps": 2000, "cap_cents": 1500}, [("b", 1)],
                 {"adjustments": [("coupon", -1000)], "line_discounts": [-1000], "shipping": 1000, "total": 5000,
                  "parts": [], "payable": 5000}, id="percent-20-under-cap"),
    pytest.param({"kind": "exchange", "exchange": "b"}, [("a", 1), ("b", 2)],
                 {"adjustments": [("coupon", -5000)], "line_discounts": [0, -5000], "shipping": 1000, "total": 16_000,
                  "parts": [], "payable": 16_000}, id="exchange-one-unit-of-b"),
    pytest.param({"kind": "free_shipping"}, [("a", 1)],
                 {"adjustments": [], "line_discounts": [0], "shipping": 0, "total": 10_000, "parts": [],
                  "payable": 10_000}, id="free-shipping"),
    pytest.param({"kind": "percent", "percent_bps": 1000, "excluded": "a"}, [("a", 1), ("b", 1)],
                 {"adjustments": [("coupon", -500)], "line_discounts": [0, -500], "shipping": 1000, "total": 15_500,
                  "parts": [], "payable": 15_500}, id="excluded-product-a"),
    pytest.param({"kind": "fixed", "amount_cents": 800, "scope": "categories", "category": "b"}, [("a", 1), ("b", 1)],
                 {"adjustments": [("coupon", -800)], "line_discounts": [0, -800], "shipping": 1000, "total": 15_200,
                  "parts": [], "payable": 15_200}, id="category-scope-b-only"),
    pytest.param({"kind": "fixed", "amount_cents": 9000, "scope": "products", "product": "b"}, [("a", 1), ("b", 1)],
                 {"adjustments": [("coupon", -5000)], "line_discounts": [0, -5000], "shipping": 1000, "total": 11_000,
                  "parts": [], "payable": 11_000}, id="fixed-capped-at-what-its-lines-cost"),
]


def _template_fields(shop: Shop, spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    skus = {"a": shop.a, "b": shop.b}
    products = {"a": shop.product_a, "b": shop.product_b}
    if "exchange" in spec:
        spec["exchange_sku_id"] = skus[spec.pop("exchange")].id
    if "excluded" in spec:
        spec["excluded_product_ids"] = [products[spec.pop("excluded")].id]
    if "category" in spec:
        spec["scope_category_ids"] = [(shop.cat_a if spec.pop("category") == "a" else shop.cat_b).id]
    if "product" in spec:
        spec["scope_product_ids"] = [products[spec.pop("product")].id]
    spec.setdefault("amount_cents", 0)
    return spec


@pytest.mark.parametrize(("template", "basket", "expected"), CASES)
def test_stacking_table(db: Session, shop: Shop, template: dict[str, Any], basket: list[tuple[str, int]],
                        expected: dict[str, Any]) -> None:
    # given: the customer holds one coupon of the template
    t = make_coupon_template(db, merchant=shop.merchant, **_template_fields(shop, template))
    coupon = give_coupon(db, template=t, customer=shop.customer)
    items = [({"a": shop.a, "b": shop.b}[k], q) for k, q in basket]
    # when: the checkout is priced with it
    priced = preview(db, shop, items, coupon_ids=[coupon.id])
    # then: the breakdown is exactly
    assert summary(priced) == expected


def test_threshold_unmet_is_refused_with_its_code(db: Session, shop: Shop) -> None:
    # given: 满100减20, and a basket of ¥50
    t = make_coupon_template(db, merchant=shop.merchant, kind="threshold", threshold_cents=10_000, amount_cents=2000)
    coupon = give_coupon(db, template=t, customer=shop.customer)
    # when / then
    with pytest.raises(AppError) as err:
        preview(db, shop, [(shop.b, 1)], coupon_ids=[coupon.id])
    assert (err.value.status_code, err.value.code) == (409, "coupon_threshold_not_met")
    assert err.value.details == {"coupon_id": coupon.id, "threshold_cents": 10_000}


def test_coupon_after_member_discount_then_points(db: Session, shop: Shop) -> None:
    # given: a member tier with 10% off, 500 points worth ¥5 (100 points = ¥1, no cap), and 满90减10
    set_rules(db, merchant=shop.merchant, redeem_points_per_yuan=100, redeem_cap_bps=10_000)
    make_tier(db, merchant=shop.merchant, name="金卡", growth_threshold=0, discount_bps=1000)
    make_member(db, merchant=shop.merchant, customer=shop.customer, points=500)
    t = make_coupon_template(db, merchant=shop.merchant, kind="threshold", threshold_cents=9000, amount_cents=1000)
    coupon = give_coupon(db, template=t, customer=shop.customer)
    # when
    priced = preview(db, shop, [(shop.a, 1)], coupon_ids=[coupon.id], points=500)
    # then: ¥100 − ¥10 member price = ¥90 meets the threshold; − ¥10 coupon + ¥10 shipping = ¥90; ¥5 in points
    assert summary(priced) == {"adjustments": [("tier_discount", -1000), ("coupon", -1000)],
                               "line_discounts": [-2000], "shipping": 1000, "total": 9000,
                               "parts": [("points", 500)], "payable": 8500}


def test_threshold_is_measured_after_the_member_discount(db: Session, shop: Shop) -> None:
    # given: 10% member price and 满95减10: ¥100 before, ¥90 after the member discount
    make_tier(db, merchant=shop.merchant, name="金卡", growth_threshold=0, discount_bps=1000)
    make_member(db, merchant=shop.merchant, customer=shop.customer)
    t = make_coupon_template(db, merchant=shop.merchant, kind="threshold", threshold_cents=9500, amount_cents=1000)
    coupon = give_coupon(db, template=t, customer=shop.customer)
    # when / then
    with pytest.raises(AppError) as err:
        preview(db, shop, [(shop.a, 1)], coupon_ids=[coupon.id])
    assert err.value.code == "coupon_threshold_not_met"


class _PromoMark:
    """A stand-in campaign price for one test: marks line A as a campaign line (¥80), coupons allowed
    or not, as the flash-sale contributor does."""

    name = "test.promo_mark"
    priority = 20

    def __init__(self, sku_id: int, coupons: bool) -> None:
        self.sku_id, self.coupons = sku_id, coupons

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        for line in ctx.lines:
            if line.sku_id == self.sku_id:
                ctx.add_adjustment(kind="flash_sale", label="flash", amount_cents=-2000, source=self.name,
                                   sku_ids=[line.sku_id])
                line.promo = {"kind": "flash_sale", "campaign_id": 1, "coupons": self.coupons,
                              "member_discount": False}


@pytest.mark.parametrize("coupons_allowed", [False, True])
def test_promotional_lines_exclude_coupons_unless_the_campaign_allows(db: Session, shop: Shop,
                                                                      coupons_allowed: bool) -> None:
    # given: A at a campaign price of ¥80, and a ¥10 coupon for product A only
    t = make_coupon_template(db, merchant=shop.merchant, kind="fixed", amount_cents=1000, scope="products",
                             scope_product_ids=[shop.product_a.id])
    coupon = give_coupon(db, template=t, customer=shop.customer)
    pricing.register_contributor(_PromoMark(shop.a.id, coupons_allowed))
    try:
        if not coupons_allowed:
            # when / then: the coupon has nothing it may touch
            with pytest.raises(AppError) as err:
                preview(db, shop, [(shop.a, 1)], coupon_ids=[coupon.id])
            assert err.value.code == "coupon_not_applicable"
        else:
            priced = preview(db, shop, [(shop.a, 1)], coupon_ids=[coupon.id])
            assert summary(priced) == {"adjustments": [("flash_sale", -2000), ("coupon", -1000)],
                                       "line_discounts": [-3000], "shipping": 1000, "total": 8000, "parts": [],
                                       "payable": 8000}
    finally:
        pricing.unregister_contributor("test.promo_mark")


def test_coupon_and_free_shipping_coupon_together(db: Session, shop: Shop) -> None:
    fixed = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant, amount_cents=500),
                        customer=shop.customer)
    free = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant, kind="free_shipping",
                                                         amount_cents=0), customer=shop.customer)
    priced = preview(db, shop, [(shop.b, 1)], coupon_ids=[fixed.id, free.id])
    assert summary(priced) == {"adjustments": [("coupon", -500)], "line_discounts": [-500], "shipping": 0,
                               "total": 4500, "parts": [], "payable": 4500}


def test_two_discount_coupons_are_refused(db: Session, shop: Shop) -> None:
    one = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant), customer=shop.customer)
    two = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant), customer=shop.customer)
    with pytest.raises(AppError) as err:
        preview(db, shop, [(shop.a, 1)], coupon_ids=[one.id, two.id])
    assert (err.value.status_code, err.value.code) == (422, "one_coupon_per_order")


def test_someone_elses_coupon_is_refused(db: Session, shop: Shop) -> None:
    other = make_customer(db, merchant=shop.merchant)
    coupon = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant), customer=other)
    with pytest.raises(AppError) as err:
        preview(db, shop, [(shop.a, 1)], coupon_ids=[coupon.id])
    assert (err.value.status_code, err.value.code) == (422, "coupon_not_found")


def test_preview_suggests_the_best_coupon(db: Session, shop: Shop) -> None:
    # given: three coupons: ¥10 off, 20% off capped at ¥15, and 满300减50 (unmet)
    ten = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant, amount_cents=1000,
                                                        name="十元"), customer=shop.customer)
    pct = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant, kind="percent", percent_bps=2000,
                                                        cap_cents=1500, amount_cents=0, name="八折"),
                      customer=shop.customer)
    big = give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant, kind="threshold",
                                                        threshold_cents=30_000, amount_cents=5000, name="满减"),
                      customer=shop.customer)
    # when: a preview without a chosen coupon
    priced = preview(db, shop, [(shop.a, 1)])
    # then: the best is the percent coupon (¥15), nothing applied yet
    best = next(n for n in priced["notices"] if n["kind"] == "best_coupon")
    assert (best["coupon_id"], best["saves_cents"]) == (pct.id, 1500)
    choices = next(n for n in priced["notices"] if n["kind"] == "coupon_choices")["items"]
    assert [(c["coupon_id"], c["saves_cents"], c["reason"]) for c in choices] == [
        (pct.id, 1500, None), (ten.id, 1000, None), (big.id, 0, "coupon_threshold_not_met")]
    assert priced["adjustments"] == []


def test_an_order_placement_without_coupons_runs_no_coupon_query(db: Session, shop: Shop) -> None:
    # given: the customer holds a coupon, but the order chooses none
    give_coupon(db, template=make_coupon_template(db, merchant=shop.merchant), customer=shop.customer)
    ctx = pricing.PricingContext(merchant_id=shop.merchant.id, customer_id=shop.customer.id,
                                 lines=[pricing.PricingLine(sku_id=1, product_id=1, category_id=None, title="x",
                                                            spec={}, unit_price_cents=100, quantity=1)],
                                 fulfilment=pricing.Fulfilment(type="delivery"))
    statements: list[str] = []
    from sqlalchemy import event

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        coupon_service.CouponContributor().contribute(db, ctx)
        coupon_service.FreeShippingCouponContributor().contribute(db, ctx)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
    assert ctx.adjustments == [] and ctx.notices == []
