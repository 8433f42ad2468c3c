"""The catalogue's main path in a real browser: create a product with two SKUs in the console, put it
on sale, find it in the H5 shop on a phone and open it."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_create_product_and_see_it_in_the_shop(live_server, page):
    # given a brand admin signed in
    username, password, slug = live_server.seed_admin()
    live_server.login(page, username, password)

    # when they create a product with two SKUs through the form (no JS needed)
    page.goto(f"{live_server.url}/console/catalog/new")
    page.fill("input[name=title]", "浏览器测试卫衣")
    page.fill("input[name=subtitle]", "两种颜色")
    page.fill("textarea[name=specs]", "颜色: 红, 蓝")
    with page.expect_navigation():
        page.click("[data-testid=generate-rows]")
    assert page.locator("input[name^=sku_price_]").count() == 2
    page.fill("input[name=sku_price_0]", "99")
    page.fill("input[name=sku_list_price_0]", "129")
    page.fill("input[name=sku_stock_0]", "5")
    page.fill("input[name=sku_price_1]", "109.50")
    page.fill("input[name=sku_stock_1]", "0")
    with page.expect_navigation():
        page.click("[data-testid=save-product]")
    assert re.search(r"/console/catalog/\d+\?ok=created$", page.url), page.url
    product_id = int(re.search(r"/console/catalog/(\d+)", page.url).group(1))
    assert page.locator("[data-testid=product-status]").inner_text() in ("草稿", "Draft")

    # and put it on sale
    with page.expect_navigation():
        page.click("[data-testid=status-on_sale]")
    assert page.locator("[data-testid=product-status]").inner_text() in ("在售", "On sale")

    # then the list shows it with its stock
    page.goto(f"{live_server.url}/console/catalog")
    row = page.locator("[data-testid=product-table] tr", has_text="浏览器测试卫衣")
    assert row.count() == 1 and "5" in row.inner_text()

    # and on a phone the shop's home shows it
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/shop/{slug}/")
    card = page.locator(".product-card", has_text="浏览器测试卫衣")
    assert card.is_visible()
    assert "¥99.00" in card.inner_text()
    with page.expect_navigation():
        card.click()
    assert page.url.endswith(f"/shop/{slug}/p/{product_id}")
    assert page.locator("h1.product-title").inner_text() == "浏览器测试卫衣"
    assert page.locator("[data-testid=price]").inner_text() == "¥99.00"
    radios = page.locator("input[name=sku_id]")
    assert radios.count() == 2
    assert radios.nth(0).is_checked() and radios.nth(1).is_disabled()  # the blue one is sold out
    assert page.locator("[data-testid=buy]").is_visible()
    # the page fits the phone: nothing wider than the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
