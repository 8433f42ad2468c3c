"""Split coupons, pop-ups and payment offers in real browsers.

1. A customer opens a split pool of three and shares it; two friends, each in a browser of their own, open the
   link, sign in when asked and join; the pool splits and all three see their coupon.
2. A new visitor sees the welcome pop-up on the home page and closes it; after signing in and paying an order,
   the payment result page offers a coupon, which they claim.
"""

from __future__ import annotations

import re

import pytest

PHONE = {"width": 390, "height": 844}


def _sign_in_on_login_page(page, nickname: str) -> None:
    page.fill("form[data-testid=demo-login] input[name=nickname]", nickname)
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")


@pytest.mark.browser
def test_a_split_pool_of_three_fills_through_share_links(live_server, browser) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.promotions import make_split_campaign

    # given a live campaign: ¥10.00 split equally by three
    username, password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        campaign_id = make_split_campaign(session, merchant=merchant, pool_amount_cents=1000, team_size=3).id
    shop = f"{live_server.url}/shop/{slug}"
    contexts = [browser.new_context(viewport=PHONE, locale="zh-CN") for _ in range(3)]
    try:
        opener, amy, bob = (c.new_page() for c in contexts)
        for p in (opener, amy, bob):
            p.set_default_timeout(15_000)

        # when the opener signs in from the campaign page and opens a pool
        opener.goto(f"{shop}/split-campaigns/{campaign_id}")
        with opener.expect_navigation():
            opener.click("[data-testid=login-to-open]")
        _sign_in_on_login_page(opener, "开团阿花")
        assert opener.url.endswith(f"/split-campaigns/{campaign_id}"), opener.url
        with opener.expect_navigation():
            opener.click("[data-testid=open-pool]")
        pool_url = opener.url
        assert re.search(rf"/shop/{slug}/split/\d+$", pool_url), pool_url
        assert opener.locator("[data-testid=split-progress]").inner_text().startswith("1/3")
        link = opener.locator("[data-testid=share-url]").input_value()
        assert "/s/" in link

        # when each friend opens the link, signs in when asked and joins
        for friend, nickname, progress in ((amy, "小美", "2/3"), (bob, "阿博", "3/3")):
            friend.goto(link)
            assert friend.url == pool_url, friend.url
            with friend.expect_navigation():
                friend.click("[data-testid=login-to-join]")
            _sign_in_on_login_page(friend, nickname)
            assert friend.url == pool_url, friend.url
            with friend.expect_navigation():
                friend.click("[data-testid=join-pool]")
            assert friend.locator("[data-testid=split-progress]").inner_text().startswith(progress)

        # then the pool is split and everyone sees their part
        parts = []
        for p in (opener, amy, bob):
            p.goto(pool_url)
            assert p.locator("[data-testid=split-pool]").get_attribute("data-status") == "filled"
            parts.append(p.locator("[data-testid=my-part]").inner_text())
        assert parts == ["¥3.34", "¥3.33", "¥3.33"]
        names = opener.locator("[data-testid=split-members]").inner_text()
        assert all(n in names for n in ("开团阿花", "小美", "阿博"))
        bob.screenshot(path="/tmp/siyu-browser-split-filled.png", full_page=True)

        # and the console's figures count the split pool
        admin = contexts[0].new_page()
        live_server.login(admin, username, password)
        admin.goto(f"{live_server.url}/console/promotions/split-coupons")
        assert admin.locator(f"[data-testid=split-filled-{campaign_id}]").inner_text() == "1"
        admin.screenshot(path="/tmp/siyu-browser-split-console.png", full_page=True)
    finally:
        for c in contexts:
            c.close()


@pytest.mark.browser
def test_popup_for_a_new_visitor_and_an_offer_after_paying(live_server, page) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.orders import make_sku
    from tests.factories.promotions import make_coupon_template, make_offer_rule, make_popup_rule

    # given a welcome pop-up for new visitors and a coupon offered after every payment
    _username, _password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        make_popup_rule(session, merchant=merchant, audience="new_visitor", pages="home", title="欢迎新朋友",
                        link_url=f"/shop/{slug}/login", cap_per_day=2)
        template = make_coupon_template(session, merchant=merchant, name="支付返券", amount_cents=500,
                                        channels=["payment"])
        make_offer_rule(session, merchant=merchant, templates=[template], title="支付成功，送你一张券")
        sku_id = make_sku(session, merchant=merchant, price_cents=1200, stock=10, title="测试好物").id
    shop = f"{live_server.url}/shop/{slug}"
    page.set_viewport_size(PHONE)

    # when a new visitor opens the home page: the pop-up shows, and closing it hides it
    page.goto(f"{shop}/")
    popup = page.locator("[data-testid=popup]")
    assert popup.is_visible()
    assert "欢迎新朋友" in popup.inner_text()
    page.click("[data-testid=popup-close]")
    assert page.locator("[data-testid=popup]").count() == 0

    # when they sign in, buy and pay in the sandbox
    page.goto(f"{shop}/login")
    _sign_in_on_login_page(page, "新朋友")
    page.goto(f"{shop}/checkout?sku_id={sku_id}&quantity=1")
    form = page.locator("form[data-testid=checkout-form]")
    for name, value in (("name", "王五"), ("phone", "13700001234"), ("province", "上海市"), ("city", "上海市"),
                        ("district", "徐汇区"), ("detail", "漕溪北路 88 号")):
        form.locator(f"input[name={name}]").fill(value)
    with page.expect_navigation():
        page.click("[data-testid=place-order]")
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")
    assert re.search(rf"/shop/{slug}/orders/\d+\?paid=1$", page.url), page.url

    # then the payment result page offers the coupon, and claiming it puts it in their coupons
    offer = page.locator("[data-testid=payment-offer]")
    assert "支付成功，送你一张券" in offer.inner_text()
    with page.expect_navigation():
        page.click("[data-testid=offer-claim]")
    assert page.locator("[data-testid=offer-claimed]").is_visible()
