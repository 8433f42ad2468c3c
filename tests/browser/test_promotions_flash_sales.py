"""A flash sale in real browsers: the brand admin builds and schedules one in the console (2 units);
a customer on a phone sees the countdown and progress, buys through "buy now" and pays in the sandbox;
another customer takes the last unit; the page then shows it sold out, and a late buyer who still holds
the checkout is refused — never more sold than allocated."""

from __future__ import annotations

import datetime as dt
import re

import pytest

PHONE = {"width": 390, "height": 844}
ADDRESS = {"name": "王五", "phone": "13700001234", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路 88 号"}


def _fill_address(page) -> None:  # type: ignore[no-untyped-def]
    form = page.locator("form[data-testid=checkout-form]")
    for name, value in ADDRESS.items():
        form.locator(f"input[name={name}]").fill(value)


@pytest.mark.browser
def test_a_flash_sale_sells_out_without_overselling(live_server, page) -> None:
    from sqlalchemy import select

    from siyu.core import clock
    from siyu.customers.models import Customer
    from siyu.customers.signin import issue_customer_token
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from siyu.promotions.models.flash_sales import FlashSale, FlashSaleItem
    from tests.factories.customers import make_customer
    from tests.factories.orders import make_sku, place_order
    from tests.factories.promotions import flash_promotion

    # given a ¥99 SKU with 10 in stock and three customers
    username, password, slug = live_server.seed_admin()
    database = live_server.database
    with use_database(database), database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        sku = make_sku(session, merchant=merchant, price_cents=9900, stock=10, title="浏览器保温杯")
        buyer, rival, late = (make_customer(session, merchant=merchant, nickname=n) for n in ("秒杀甲", "秒杀乙", "秒杀丙"))
        tokens = {c.nickname: issue_customer_token(session, c) for c in (buyer, rival, late)}
        sku_id, merchant_id, rival_id = sku.id, merchant.id, rival.id

    # when the admin builds a flash sale of 2 units at ¥59 in the console and schedules it
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/promotions/flash-sales/new")
    local_now = clock.local(clock.now())
    page.fill("[data-testid=title]", "浏览器秒杀")
    page.fill("[data-testid=starts-at]", (local_now - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("[data-testid=ends-at]", (local_now + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("[data-testid=item-0-sku]", str(sku_id))
    page.fill("[data-testid=item-0-price]", "59")
    page.fill("[data-testid=item-0-allocation]", "2")
    with page.expect_navigation():
        page.click("[data-testid=save]")
    assert re.search(r"/console/promotions/flash-sales/\d+\?ok=1$", page.url), page.url
    sale_id = int(re.search(r"/flash-sales/(\d+)", page.url).group(1))
    with page.expect_navigation():
        page.click("[data-testid=action-schedule]")
    assert page.locator("[data-testid=status]").inner_text() == "进行中"

    # and a customer on a phone opens the flash page, buys now and pays
    page.context.clear_cookies()
    page.set_viewport_size(PHONE)
    page.context.add_cookies([{"name": f"siyu_c_{slug}", "value": tokens["秒杀甲"], "url": live_server.url}])
    shop = f"{live_server.url}/shop/{slug}"
    page.goto(f"{shop}/flash/{sale_id}")
    assert page.locator("[data-testid=flash-state]").get_attribute("data-state") == "active"
    assert re.fullmatch(r"1:5\d:\d\d", page.locator("[data-testid=countdown]").inner_text())
    assert page.locator("[data-testid=flash-price]").inner_text() == "¥59.00"
    assert page.locator("[data-testid=normal-price]").inner_text() == "¥99.00"
    with page.expect_navigation():
        page.click("[data-testid=buy-now]")
    assert "promo_kind=flash_sale" in page.url
    checkout_url = page.url
    _fill_address(page)
    with page.expect_navigation():
        page.click("[data-testid=place-order]")
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥59.00"
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")
    assert "paid=1" in page.url

    # and a late buyer opens the checkout while one unit is left
    late_context = page.context.browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        late_page = late_context.new_page()
        late_context.add_cookies([{"name": f"siyu_c_{slug}", "value": tokens["秒杀丙"], "url": live_server.url}])
        late_page.goto(checkout_url)
        _fill_address(late_page)

        # when a rival takes the last unit first
        with use_database(database), database.scope() as session:
            sale = session.get(FlashSale, sale_id)
            place_order(session, customer=session.get(Customer, rival_id), items=[(sku_id, 1)],
                        promotion=flash_promotion(sale))

        # then the late buyer is refused with the sold-out message and no order
        late_page.click("[data-testid=place-order]")
        late_page.wait_for_load_state()
        assert "/pay/" not in late_page.url
        assert "已抢光" in late_page.content()
    finally:
        late_context.close()

    # and the flash page shows it sold out: 2 of 2, no buy button
    page.goto(f"{shop}/flash/{sale_id}")
    assert page.locator("[data-testid=sold-out]").count() == 1
    assert page.locator("[data-testid=buy-now]").count() == 0
    assert "100%" in page.locator("[data-testid=progress-text]").inner_text()
    page.screenshot(path="/tmp/siyu-browser-flash-sold-out.png", full_page=True)
    with use_database(database), database.scope() as session:
        item = session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == sale_id)).one()
        assert (item.sold, item.allocation, item.merchant_id) == (2, 2, merchant_id)
