"""Membership in a real browser: a customer activates a member card in the member centre and checks
in; staff find the card at the counter and add points; the customer pays part of an order with points."""

from __future__ import annotations

import re

import pytest

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.browser
def test_member_centre_counter_lookup_and_checkout_with_points(live_server, page) -> None:
    from siyu.db import use_database
    from siyu.membership.models.members import Tier
    from siyu.merchants import service as merchants
    from tests.factories.catalog import make_product

    # given: a merchant with two tiers and a ¥80 product
    username, password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        session.add_all([Tier(merchant_id=merchant.id, name="普通会员", growth_threshold=0),
                         Tier(merchant_id=merchant.id, name="金卡会员", growth_threshold=500, discount_bps=500)])
        product = make_product(session, merchant=merchant, title="会员好茶", stock=5,
                               skus=[{"spec": {}, "price_cents": 8000}])
        product_id = product.id
    shop = f"{live_server.url}/shop/{slug}"

    # when: a customer signs in on a phone and opens the member centre from "me"
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/me")
    page.fill("form[data-testid=demo-login] input[name=nickname]", "会员买家")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    with page.expect_navigation():
        page.click("[data-testid=member-centre]")
    assert page.url.endswith(f"/shop/{slug}/member")

    # and activates a card with phone, name and birthday
    form = page.locator("form[data-testid=activate-form]")
    form.locator("input[name=phone]").fill("13755556666")
    form.locator("input[name=name]").fill("林会员")
    form.locator("input[name=birthday]").fill("1991-04-05")
    with page.expect_navigation():
        page.click("[data-testid=activate-submit]")

    # then: the card shows its number, QR code, tier and progress; the profile reward is in
    card_no = page.locator("[data-testid=member-card-no]").inner_text().strip()
    assert re.fullmatch(r"8\d{11}", card_no)
    assert page.locator("[data-testid=member-card] svg").count() == 1
    assert page.locator("[data-testid=member-tier]").inner_text().startswith("普通会员")
    assert "金卡会员" in page.locator("[data-testid=tier-progress]").inner_text()
    assert page.locator("[data-testid=points-balance]").inner_text() == "50"

    # when: checking in
    with page.expect_navigation():
        page.click("[data-testid=check-in]")
    assert page.locator("[data-testid=points-balance]").inner_text() == "55"
    assert page.locator("[data-testid=checked-in]").is_disabled()
    page.screenshot(path="/tmp/siyu-browser-member-centre.png", full_page=True)

    # when: staff find the card at the counter by its number and add 1,000 points
    staff_page = page.context.new_page()
    staff_page.set_viewport_size(DESKTOP)
    live_server.login(staff_page, username, password)
    staff_page.goto(f"{live_server.url}/console/membership/lookup")
    staff_page.fill("form[data-testid=lookup-form] input[name=code]", card_no)
    with staff_page.expect_navigation():
        staff_page.click("[data-testid=lookup]")
    assert staff_page.locator("[data-testid=card-no]").inner_text() == card_no
    staff_page.fill("form[data-testid=adjust-form] input[name=delta]", "1000")
    staff_page.fill("form[data-testid=adjust-form] input[name=reason]", "到店开卡礼")
    with staff_page.expect_navigation():
        staff_page.click("[data-testid=adjust]")
    assert staff_page.locator("[data-testid=member-points]").inner_text() == "1055"
    assert "到店开卡礼" in staff_page.locator("[data-testid=points-ledger]").inner_text()
    staff_page.screenshot(path="/tmp/siyu-browser-console-member.png", full_page=True)
    staff_page.close()

    # when: the customer buys the tea paying 500 points (¥5)
    page.goto(f"{shop}/p/{product_id}")
    with page.expect_navigation():
        page.click("[data-testid=buy]")
    form = page.locator("form[data-testid=checkout-form]")
    form.locator("input[name=name]").fill("林会员")
    form.locator("input[name=phone]").fill("13755556666")
    form.locator("input[name=province]").fill("上海市")
    form.locator("input[name=city]").fill("上海市")
    form.locator("input[name=district]").fill("静安区")
    form.locator("input[name=detail]").fill("南京西路 1 号")
    page.fill("[data-testid=use-points]", "500")
    with page.expect_navigation():
        page.click("[data-testid=apply-points]")
    breakdown = page.locator("[data-testid=breakdown]").inner_text()
    assert "-¥5.00" in breakdown
    assert page.locator("[data-testid=payable]").inner_text() == "¥75.00"
    page.screenshot(path="/tmp/siyu-browser-checkout-points.png", full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=place-order]")

    # then: the sandbox asks for ¥75.00 and the points are spent
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥75.00"
    page.goto(f"{shop}/member")
    assert page.locator("[data-testid=points-balance]").inner_text() == "555"
