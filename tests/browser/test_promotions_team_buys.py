"""Team purchase in real browsers: a leader opens a team of three and pays in the sandbox; two friends,
each in a browser of their own, open the leader's share link, sign in, join and pay; all three see the
team complete."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import PHONE, place_order_and_pay


def _sign_in_on_login_page(page, nickname: str) -> None:
    page.fill("form[data-testid=demo-login] input[name=nickname]", nickname)
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")


def _checkout_and_pay(page, slug: str) -> None:
    """On the checkout page: a new delivery address, place the order, confirm the sandbox payment."""
    assert f"/shop/{slug}/checkout?" in page.url and "promo_kind=team_buy" in page.url, page.url
    place_order_and_pay(page, slug, amount="¥8.00")


@pytest.mark.browser
def test_a_team_of_three_forms_through_share_links(live_server, browser) -> None:
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.promotions import make_team_buy

    # given a running team buy: three people at ¥8.00 instead of ¥10.00
    _username, _password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        campaign_id = make_team_buy(session, merchant=merchant, team_size=3, team_price_cents=800,
                                    price_cents=1000, stock=20).id
    shop = f"{live_server.url}/shop/{slug}"
    contexts = [browser.new_context(viewport=PHONE, locale="zh-CN") for _ in range(3)]
    try:
        leader, amy, bob = (c.new_page() for c in contexts)
        for p in (leader, amy, bob):
            p.set_default_timeout(15_000)

        # when the leader signs in, starts a team and pays
        leader.goto(f"{shop}/me")
        _sign_in_on_login_page(leader, "团长阿花")
        leader.goto(f"{shop}/team-buy/{campaign_id}")
        assert leader.locator("[data-testid=team-price]").first.inner_text() == "¥8.00"
        with leader.expect_navigation():
            leader.click("[data-testid=start-team]")
        _checkout_and_pay(leader, slug)
        # then the paid order links to the team, which waits for two more
        with leader.expect_navigation():
            leader.click("[data-testid=go-to-team]")
        team_url = leader.url
        assert re.search(rf"/shop/{slug}/team/\d+$", team_url), team_url
        assert leader.locator("[data-testid=team-progress]").inner_text() == "1/3"
        # and the leader shares it
        with leader.expect_navigation():
            leader.click("[data-testid=share-team]")
        link = leader.locator("[data-testid=share-link]").input_value()
        assert "/s/" in link

        # when each friend opens the link, signs in when asked, joins and pays
        for friend, nickname, progress in ((amy, "小美", "2/3"), (bob, "阿博", "3/3")):
            friend.goto(link)
            assert friend.url.split("?")[0] == team_url
            with friend.expect_navigation():
                friend.click("[data-testid=join-team]")
            _sign_in_on_login_page(friend, nickname)
            _checkout_and_pay(friend, slug)
            with friend.expect_navigation():
                friend.click("[data-testid=go-to-team]")
            assert friend.url == team_url
            assert friend.locator("[data-testid=team-progress]").inner_text() == progress

        # then all three see the team complete, with its three members
        for p in (leader, amy, bob):
            p.goto(team_url)
            assert p.locator("[data-testid=team-progress]").inner_text() == "3/3"
            assert p.locator("[data-testid=team]").get_attribute("data-status") == "complete"
            assert p.locator("[data-testid=member]").count() == 3
        names = leader.locator("[data-testid=members]").inner_text()
        assert all(n in names for n in ("团长阿花", "小美", "阿博"))
        bob.screenshot(path="/tmp/siyu-browser-team-complete.png", full_page=True)
    finally:
        for c in contexts:
            c.close()
