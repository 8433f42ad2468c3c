"""Buying in a real browser: a customer on a phone signs in, buys a product with a new delivery
address and pays in the sandbox; staff ship the order in the console; the customer sees it shipped."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import fill_new_address

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.browser
def test_customer_buys_and_pays_then_staff_ship(live_server, page) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.catalog import make_product

    # given a merchant with a brand admin and a product on sale
    username, password, slug = live_server.seed_admin()
    # (the live server's database is also the one its events are dispatched on)
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        product = make_product(session, merchant=merchant, title="浏览器好茶", stock=5,
                               skus=[{"spec": {}, "price_cents": 5800}])
        product_id = product.id
    shop = f"{live_server.url}/shop/{slug}"

    # when a customer signs in on a phone (demo login)
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/me")
    page.fill("form[data-testid=demo-login] input[name=nickname]", "浏览器买家")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    assert page.url.endswith(f"/shop/{slug}/me")

    # and opens the product and buys it
    page.goto(f"{shop}/p/{product_id}")
    with page.expect_navigation():
        page.click("[data-testid=buy]")
    assert f"/shop/{slug}/checkout?" in page.url
    assert page.locator("[data-testid=checkout-items]").inner_text().count("浏览器好茶") == 1

    # with a new delivery address
    fill_new_address(page)
    page.screenshot(path="/tmp/siyu-browser-checkout.png", full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=place-order]")

    # then the sandbox pay page asks for ¥58.00
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥58.00"
    order_no = page.locator("[data-testid=order-no]").inner_text()

    # when the customer confirms the payment
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")

    # then the order page shows the order paid
    assert re.search(rf"/shop/{slug}/orders/\d+\?paid=1$", page.url), page.url
    order_url = page.url.split("?")[0]
    assert page.locator("[data-testid=order-status]").inner_text() in ("已支付", "Paid")
    assert page.locator("[data-testid=order-no]").inner_text() == order_no
    page.screenshot(path="/tmp/siyu-browser-order-paid.png", full_page=True)

    # when staff sign in to the console, open the order and ship it
    page.set_viewport_size(DESKTOP)
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/orders")
    row = page.locator("[data-testid=order-row]", has_text=order_no)
    assert row.count() == 1
    with page.expect_navigation():
        row.locator("a", has_text=order_no).click()
    assert page.locator("[data-testid=order-status]").inner_text() in ("已支付", "Paid")
    page.fill("form[data-testid=ship-form] input[name=carrier]", "顺丰")
    page.fill("form[data-testid=ship-form] input[name=tracking_no]", "SF1234567890")
    with page.expect_navigation():
        page.click("[data-testid=ship]")
    assert page.locator("[data-testid=order-status]").inner_text() in ("已发货", "Shipped")
    assert page.locator(".flash").is_visible()
    page.screenshot(path="/tmp/siyu-browser-console-order.png", full_page=True)

    # then the customer's order page shows it shipped, with the tracking number
    page.set_viewport_size(PHONE)
    page.goto(order_url)
    assert page.locator("[data-testid=order-status]").inner_text() in ("已发货", "Shipped")
    assert "SF1234567890" in page.locator("[data-testid=tracking]").inner_text()
    page.screenshot(path="/tmp/siyu-browser-order-shipped.png", full_page=True)
