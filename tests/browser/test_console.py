"""The console in a browser: sign in, the overview and its chart, English labels, then a store and
a guide created through the settings forms, and the guide disabled after the confirmation step."""

from __future__ import annotations

import pytest


@pytest.mark.browser
def test_console_settings_flow(live_server, page) -> None:
    # given a merchant with a brand admin, signed in
    username, password, slug = live_server.seed_admin()
    live_server.login(page, username, password)

    # then the overview shows its figures, and Plotly (served from the installed package) draws the chart
    assert page.url == f"{live_server.url}/console/"
    assert page.locator("[data-testid=overview-stats]").is_visible()
    assert page.locator("[data-testid=stat-new-customers] .value").inner_text() == "0"
    page.wait_for_selector("#new-customers-chart .main-svg")
    assert page.locator("[data-testid=new-customers-table] tbody tr").count() == 30
    assert page.locator("h1").first.inner_text().startswith("概览")

    # when they switch the language to English
    with page.expect_navigation():
        page.click("a[href='/lang/en']")
    assert page.url == f"{live_server.url}/console/"
    assert page.locator("h1").first.inner_text().startswith("Overview")
    assert page.locator("[data-testid=stat-new-customers] .label").inner_text() == "New customers today"
    page.screenshot(path="/tmp/siyu-browser-console-overview.png", full_page=True)

    # and create a store through the settings form
    page.goto(f"{live_server.url}/console/settings")
    with page.expect_navigation():
        page.click("[data-testid=settings-nav-stores]")
    with page.expect_navigation():
        page.click("[data-testid=new-store]")
    page.fill("input[name=name]", "上海徐汇店")
    page.fill("input[name=address]", "上海市徐汇区衡山路10号")
    page.fill("input[name=latitude]", "31.2049")
    page.fill("input[name=longitude]", "121.4432")
    page.fill("input[name=opening_hours]", "10:00-22:00")
    page.fill("input[name=phone]", "021-64370000")
    with page.expect_navigation():
        page.click("form.settings-form button[type=submit]")
    assert page.locator(".flash").inner_text() == "Store created."
    assert page.locator("h1").inner_text().startswith("上海徐汇店")

    # and a guide in that store, after a first try with a too-short password
    page.goto(f"{live_server.url}/console/settings/staff/new")
    page.select_option("select[name=role]", "guide")
    page.select_option("select[name=store_id]", label="上海徐汇店")
    page.fill("input[name=name]", "徐汇导购")
    page.fill("input[name=phone]", "13900001111")
    page.fill("input[name=username]", f"g-{slug}")
    page.fill("input[name=password]", "short")
    page.evaluate("document.querySelector('form.settings-form').noValidate = true")
    with page.expect_navigation():
        page.click("form.settings-form button[type=submit]")
    assert page.locator("[data-testid=error-password]").inner_text() == "Use at least 8 characters."
    assert page.locator("input[name=name]").input_value() == "徐汇导购"
    page.fill("input[name=password]", "guide-pass-123")
    with page.expect_navigation():
        page.click("form.settings-form button[type=submit]")
    assert page.locator(".flash").inner_text() == "Staff member created."
    assert page.locator("h1").inner_text().startswith("徐汇导购")

    # when they disable the guide, the page says what will happen first
    with page.expect_navigation():
        page.click("[data-testid=disable-staff]")
    consequences = page.locator("[data-testid=disable-consequences]").inner_text()
    assert "their sessions and tokens end now; their customers will be transferred" in consequences
    page.screenshot(path="/tmp/siyu-browser-console-disable.png", full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=confirm-disable]")

    # then the guide is disabled
    assert page.locator("[data-testid=staff-disabled]").is_visible()
    assert "Staff member disabled" in page.locator(".flash").inner_text()
    page.goto(f"{live_server.url}/console/settings/staff?active=0")
    assert page.locator("table[data-testid=staff]").inner_text().count("徐汇导购") == 1
    page.screenshot(path="/tmp/siyu-browser-console-staff.png", full_page=True)
