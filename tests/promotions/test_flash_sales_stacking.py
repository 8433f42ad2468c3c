"""How a flash sale stacks with coupons, the member discount and points: one table of exact breakdowns.

Given a ¥100 SKU on flash sale at ¥60, a member whose tier takes 10% off, a ¥5 no-threshold coupon and
1,000 points (100 points = ¥1, at most half the order): the flash price always applies first (priority
20); the member discount (60) and the coupon (70) touch the flash line only when the campaign allows
them; points (90) pay part of whatever is left."""

from __future__ import annotations

import pytest

from siyu.customers.models import Customer
from tests.factories.membership import make_member, make_tier
from tests.factories.merchants import make_merchant
from tests.factories.orders import checkout_body, customer_headers, make_sku
from tests.factories.promotions import flash_promotion, give_coupon, make_coupon_template, make_flash_sale

FLASH = ("flash_sale", -4000)

CASES = [
    # allow coupons, allow member discount, use coupon, use points → adjustments, total, payment parts, payable
    pytest.param(False, False, False, 0, [FLASH], 6000, [], 6000, id="flash alone"),
    pytest.param(False, False, False, 1000, [FLASH], 6000, [("points", 1000)], 5000, id="flash + points"),
    pytest.param(False, False, True, 0, "coupon_not_applicable", None, None, None, id="flash + coupon not allowed"),
    pytest.param(True, False, True, 0, [FLASH, ("coupon", -500)], 5500, [], 5500, id="flash + coupon allowed"),
    pytest.param(False, True, False, 0, [FLASH, ("tier_discount", -600)], 5400, [], 5400, id="flash + member allowed"),
    pytest.param(True, True, True, 0, [FLASH, ("tier_discount", -600), ("coupon", -500)], 4900, [], 4900,
                 id="flash + member + coupon allowed"),
    pytest.param(True, True, True, 1000, [FLASH, ("tier_discount", -600), ("coupon", -500)], 4900,
                 [("points", 1000)], 3900, id="everything allowed + points"),
    pytest.param(False, False, False, 4000, [FLASH], 6000, [("points", 3000)], 3000, id="points capped at half"),
]


@pytest.mark.parametrize(("allow_coupons", "allow_member", "use_coupon", "points", "adjustments", "total",
                          "parts", "payable"), CASES)
def test_flash_sale_stacking(client, db, allow_coupons, allow_member, use_coupon, points, adjustments, total, parts,
                             payable) -> None:
    # given
    merchant = make_merchant(db)
    make_tier(db, merchant=merchant, name="会员", growth_threshold=0, discount_bps=1000)
    member = make_member(db, merchant=merchant, points=5000)
    customer = db.get(Customer, member.customer_id)
    sku = make_sku(db, merchant=merchant, price_cents=10000, stock=10)
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 6000, 5, None)], allow_coupons=allow_coupons,
                           allow_member_discount=allow_member)
    extra = {"promotion": flash_promotion(sale), "points": points}
    if use_coupon:
        template = make_coupon_template(db, merchant=merchant, kind="fixed", amount_cents=500)
        extra["coupon_ids"] = [give_coupon(db, template=template, customer=customer).id]

    # when
    r = client.post(f"/api/v1/shop/{merchant.slug}/checkout/preview", json=checkout_body([(sku, 1)], **extra),
                    headers=customer_headers(db, customer))

    # then
    if isinstance(adjustments, str):
        assert (r.status_code, r.json()["error"]["code"]) == (409, adjustments), r.text
        return
    assert r.status_code == 200, r.text
    got = r.json()
    assert [(a["kind"], a["amount_cents"]) for a in got["adjustments"]] == adjustments
    assert (got["subtotal_cents"], got["shipping_cents"], got["total_cents"]) == (10000, 0, total)
    assert [(p["kind"], p["amount_cents"]) for p in got["payment_parts"]] == parts
    assert got["payable_cents"] == payable
    assert got["lines"][0]["paid_cents"] == total
