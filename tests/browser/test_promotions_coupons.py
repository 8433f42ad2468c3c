"""Coupons in a real browser: a customer claims a coupon in the coupon centre, finds it preselected at
checkout, pays in the sandbox, and the order shows the coupon's discount."""

from __future__ import annotations

import re

import pytest

PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
def test_claim_in_the_centre_then_pay_with_it(live_server, page) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.orders import make_sku
    from tests.factories.promotions import make_coupon_template

    # given: a ¥99 item and a 满50减12 coupon in the coupon centre
    _username, _password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        sku_id = make_sku(session, merchant=merchant, price_cents=9900, stock=10, title="浏览器帆布包").id
        template_id = make_coupon_template(session, merchant=merchant, kind="threshold", threshold_cents=5000,
                                           amount_cents=1200, name="满50减12", channels=["centre"]).id
    shop = f"{live_server.url}/shop/{slug}"
    page.set_viewport_size(PHONE)
    page.set_default_timeout(15_000)
    # when: the customer signs in and claims it in the coupon centre
    page.goto(f"{shop}/coupons?tab=centre")
    with page.expect_navigation():
        page.click(f"[data-testid=claim-{template_id}]")
    page.fill("form[data-testid=demo-login] input[name=nickname]", "领券小王")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    assert "/coupons" in page.url, page.url
    with page.expect_navigation():
        page.click(f"[data-testid=claim-{template_id}]")
    assert page.locator(f"[data-testid=claimed-{template_id}]").is_visible()
    page.screenshot(path="/tmp/siyu-browser-coupon-centre.png", full_page=True)
    page.click("[data-testid=tab-mine]")
    assert "满50减12" in page.locator("main").inner_text()
    # and checks out the item with a new address
    page.goto(f"{shop}/checkout?sku_id={sku_id}&quantity=1")
    form = page.locator("form[data-testid=checkout-form]")
    for name, value in (("name", "王小二"), ("phone", "13700001234"), ("province", "上海市"), ("city", "上海市"),
                        ("district", "徐汇区"), ("detail", "漕溪北路 88 号")):
        form.locator(f"input[name={name}]").fill(value)
    with page.expect_navigation():
        page.click("[data-testid=update-total]")
    # then: the coupon is preselected and taken off
    picker = page.locator("[data-testid=coupon-picker]")
    assert picker.locator("input[name=coupon_id]:checked").get_attribute("value") != ""
    assert page.locator("[data-testid=payable]").inner_text() == "¥87.00"
    page.screenshot(path="/tmp/siyu-browser-coupon-checkout.png", full_page=True)
    # when: the order is placed and paid in the sandbox
    with page.expect_navigation():
        page.click("[data-testid=place-order]")
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥87.00"
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")
    assert re.search(rf"/shop/{slug}/orders/\d+\?paid=1$", page.url), page.url
    # then: the order shows the coupon's discount
    text = page.locator("main").inner_text()
    assert "满50减12" in text and "-¥12.00" in text
    page.screenshot(path="/tmp/siyu-browser-coupon-order.png", full_page=True)
