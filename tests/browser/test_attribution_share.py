"""Sharing in a real browser: a customer on a phone taps Share on a product, gets the link, the QR code and the
poster; a friend in another browser opens the link, lands on the product, signs in, and the sharer's "who I
brought" lists the friend; staff see the share and the printable QR sheet in the console."""

from __future__ import annotations

import pytest

PHONE = {"width": 390, "height": 844}


def _sign_in(page, shop: str, nickname: str) -> None:
    page.goto(f"{shop}/me")
    page.fill("form[data-testid=demo-login] input[name=nickname]", nickname)
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")


@pytest.mark.browser
def test_share_button_poster_and_a_friend_brought(live_server, page, browser) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.catalog import make_product

    # given a product on sale
    username, password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        product_id = make_product(session, merchant=merchant, title="分享好茶",
                                  skus=[{"spec": {}, "price_cents": 3900}]).id
    shop = f"{live_server.url}/shop/{slug}"

    # when a customer on a phone opens it and taps Share
    page.set_viewport_size(PHONE)
    _sign_in(page, shop, "分享达人")
    page.goto(f"{shop}/p/{product_id}")
    with page.expect_navigation():
        page.click("[data-testid=share-button]")

    # then the share page shows the link, the QR code and a poster image that loaded
    link = page.locator("[data-testid=share-link]").input_value()
    assert f"{live_server.url}/s/" in link
    assert page.locator("[data-testid=share-qr] svg").count() == 1
    poster = page.locator("[data-testid=share-poster]")
    poster.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('[data-testid=share-poster]').naturalWidth > 0")
    assert poster.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [750, 1200]
    page.click("[data-testid=copy-link]")
    assert page.locator("#copied").is_visible()
    page.screenshot(path="/tmp/siyu-browser-share.png", full_page=True)

    # when a friend, in their own browser, opens the link and signs in
    friend_context = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        friend = friend_context.new_page()
        friend.goto(link)
        assert friend.url == f"{shop}/p/{product_id}"
        assert any(c["name"] == "siyu_vid" for c in friend_context.cookies())
        _sign_in(friend, shop, "新朋友")
    finally:
        friend_context.close()

    # then the sharer's "who I brought" lists the friend
    page.goto(f"{shop}/me")
    with page.expect_navigation():
        page.click("[data-testid=my-brought]")
    assert "新朋友" in page.locator("[data-testid=brought-list]").inner_text()

    # and staff see the share with its visit and the printable QR sheet
    page.set_viewport_size({"width": 1280, "height": 800})
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/attribution")
    table = page.locator("[data-testid=share-table]")
    assert "分享好茶" in table.inner_text() and "分享达人" in table.inner_text()
    page.goto(f"{live_server.url}/console/attribution/fission")
    assert "分享达人" in page.locator("[data-testid=board-customer]").inner_text()
    page.goto(f"{live_server.url}/console/attribution/qr-sheet")
    assert page.locator("[data-testid=print]").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("[data-testid=print]").is_visible()
