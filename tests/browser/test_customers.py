"""Customers in the browser: a customer signs in to the H5 shop on a phone and edits their
profile; the brand admin then finds them in the console and opens their detail page."""

from __future__ import annotations

import pytest

PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
def test_shop_customer_edits_profile_and_admin_finds_them(live_server, page) -> None:
    # given a merchant with a brand admin
    username, password, slug = live_server.seed_admin()

    # when a customer demo-logs in to the H5 shop on a phone
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/shop/{slug}/me")
    assert f"/shop/{slug}/login" in page.url
    page.fill("form[data-testid=demo-login] input[name=nickname]", "浏览器顾客")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    assert page.url.endswith(f"/shop/{slug}/me")
    assert page.locator("[data-testid=me-nickname]").inner_text() == "浏览器顾客"

    # and changes their nickname
    page.fill("form[data-testid=me-form] input[name=nickname]", "改过名的顾客")
    page.fill("form[data-testid=me-form] input[name=region]", "上海 徐汇")
    with page.expect_navigation():
        page.click("form[data-testid=me-form] button[type=submit]")
    assert page.locator("[data-testid=me-nickname]").inner_text() == "改过名的顾客"
    assert page.locator(".flash").is_visible()
    page.screenshot(path="/tmp/siyu-browser-shop-me.png", full_page=True)

    # then the admin finds that customer in the console by the new nickname
    page.set_viewport_size({"width": 1280, "height": 800})
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/customers")
    page.fill("form[data-testid=customer-filters] input[name=q]", "改过名")
    with page.expect_navigation():
        page.click("form[data-testid=customer-filters] button[type=submit]")
    rows = page.locator("[data-testid=customer-row]")
    assert rows.count() == 1
    assert "q=" in page.url
    page.screenshot(path="/tmp/siyu-browser-customers-list.png", full_page=True)

    # and opens the detail page, which shows the profile and the timeline of the edit
    with page.expect_navigation():
        rows.first.locator("a").first.click()
    assert page.locator("[data-testid=customer-nickname]").inner_text().startswith("改过名的顾客")
    assert page.locator("form[data-testid=profile-form] input[name=region]").input_value() == "上海 徐汇"
    assert page.locator("#timeline li").count() == 2  # created, then the profile edit
    page.screenshot(path="/tmp/siyu-browser-customer-detail.png", full_page=True)
