"""A bargain in real browsers: a customer starts one on a phone and shares it; two friends, each in a
browser of their own, open the share link, sign in and help cut until the floor; the starter buys at
the floor and pays in the sandbox; the bargain is bought."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.helpers import PHONE, place_order_and_pay


def _sign_in_and_help(browser, share_link: str, nickname: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(share_link)
        assert "/bargain/" in page.url, page.url
        # not signed in: "help cut" leads to the shop's sign-in, which comes back to the bargain
        with page.expect_navigation():
            page.click("[data-testid=help-cut]")
        assert "/login" in page.url, page.url
        page.fill("form[data-testid=demo-login] input[name=nickname]", nickname)
        with page.expect_navigation():
            page.click("form[data-testid=demo-login] button[type=submit]")
        assert "/bargain/" in page.url, page.url
        with page.expect_navigation():
            page.click("[data-testid=help-cut]")
        assert "ok=helped" in page.url
        assert page.locator("[data-testid=helped]").count() == 1
    finally:
        context.close()


@pytest.mark.browser
def test_friends_cut_a_bargain_to_the_floor_and_the_starter_buys(live_server, page) -> None:
    from sqlalchemy import select

    from siyu.customers.models import Customer
    from siyu.customers.signin import issue_customer_token
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from siyu.promotions.models.bargains import Bargain
    from tests.factories.customers import make_customer
    from tests.factories.orders import make_sku
    from tests.factories.promotions import make_bargain_campaign

    # given a running campaign: 99.00 down to 9.90 with 2 friends' help
    _, _, slug = live_server.seed_admin()
    database = live_server.database
    with use_database(database), database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        sku = make_sku(session, merchant=merchant, price_cents=9900, stock=10, title="浏览器电饭煲")
        campaign = make_bargain_campaign(session, merchant=merchant, sku=sku, start_price_cents=9900,
                                         floor_price_cents=990, expected_assists=2, title="砍到 9.9 元")
        starter = make_customer(session, merchant=merchant, nickname="砍价发起人")
        token, campaign_id = issue_customer_token(session, starter), campaign.id
    shop = f"{live_server.url}/shop/{slug}"

    # when the starter starts a bargain on a phone
    page.set_viewport_size(PHONE)
    page.context.add_cookies([{"name": f"siyu_c_{slug}", "value": token, "url": live_server.url}])
    page.goto(f"{shop}/bargain-campaign/{campaign_id}")
    with page.expect_navigation():
        page.click("[data-testid=start-bargain]")
    assert re.search(rf"/shop/{slug}/bargain/\d+$", page.url), page.url
    bargain_url = page.url
    assert page.locator("[data-testid=current-price]").inner_text() == "¥99.00"
    # and makes a share link
    with page.expect_navigation():
        page.click("[data-testid=share-bargain]")
    share_link = page.locator("[data-testid=share-link]").input_value()
    assert "/s/" in share_link

    # when two friends help through the link, each in a browser of their own
    for nickname in ("帮砍好友甲", "帮砍好友乙"):
        _sign_in_and_help(page.context.browser, share_link, nickname)

    # then the starter sees the floor and both friends
    page.goto(bargain_url)
    assert page.locator("[data-testid=current-price]").inner_text() == "¥9.90"
    assert page.locator("[data-testid=progress]").get_attribute("style") == "width: 100%"
    assert page.locator("[data-testid=assist]").count() == 2
    page.screenshot(path="/tmp/siyu-browser-bargain-floor.png", full_page=True)

    # when the starter buys at the floor and pays in the sandbox
    with page.expect_navigation():
        page.click("[data-testid=buy-bargain]")
    assert f"/shop/{slug}/checkout?" in page.url and "promo_kind=bargain" in page.url
    place_order_and_pay(page, slug, amount="¥9.90")

    # then the bargain is bought (order.paid is handled after the commit)
    with use_database(database):
        deadline = time.monotonic() + 10
        while True:
            with database.scope() as session:
                bargain = session.scalars(select(Bargain).where(Bargain.campaign_id == campaign_id)).one()
                helpers = session.scalars(select(Customer.nickname).where(Customer.merchant_id == merchant.id))
                state = (bargain.status, bargain.current_price_cents, bargain.assists_count, bargain.paid_cents)
                names = set(helpers)
            if state[0] == "bought" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert state == ("bought", 990, 2, 990)
    assert {"帮砍好友甲", "帮砍好友乙"} <= names
