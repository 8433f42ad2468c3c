"""The analytics dashboard in a browser: sales of the last days drawn by Plotly (served from the installed
package) with the tables beside, the date-range form, then the GMV page and a CSV export link."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.mark.browser
def test_analytics_dashboard_charts(live_server, page) -> None:
    from siyu.core import clock
    from siyu.core.auth import Role
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from tests.factories.customers import make_customer
    from tests.factories.merchants import make_staff, make_store
    from tests.factories.orders import make_order, make_sku

    # given a merchant whose customers paid three orders yesterday and the day before (Shanghai)
    username, password, slug = live_server.seed_admin()
    today = clock.today_local()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        guide = make_staff(session, merchant=merchant, role=Role.GUIDE,
                           store=make_store(session, merchant=merchant, name="看板门店"), name="看板导购")
        for days_ago, price in ((1, 12000), (1, 8000), (2, 5000)):
            day = today - dt.timedelta(days=days_ago)
            when = dt.datetime.combine(day, dt.time(11), tzinfo=clock.SHANGHAI)
            with clock.frozen(when):
                customer = make_customer(session, merchant=merchant, nickname=f"看板顾客{price}", owner=guide)
                make_order(session, merchant=merchant, customer=customer, status="paid",
                           items=[(make_sku(session, merchant=merchant, price_cents=price), 1)])
    live_server.login(page, username, password)

    # when the admin opens the analytics dashboard (in English)
    page.goto(f"{live_server.url}/lang/en")
    page.goto(f"{live_server.url}/console/analytics")

    # then the figures and every chart are drawn
    assert page.locator("[data-testid=stat-gmv] .value").inner_text() == "¥250.00"
    for chart in ("#gmv-chart", "#channel-mix-chart", "#funnel-chart", "#rfm-chart"):
        page.wait_for_selector(f"{chart} .main-svg")
    assert page.locator("#gmv-chart .bars path").count() >= 1
    assert page.locator("[data-testid=analytics-tabs] a").count() == 8
    page.screenshot(path="/tmp/siyu-browser-analytics.png", full_page=True)

    # when they narrow the period to yesterday with the date-range form
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    page.fill("[data-testid=filter-start]", yesterday)
    page.fill("[data-testid=filter-end]", yesterday)
    with page.expect_navigation():
        page.click("[data-testid=analytics-filters] button[type=submit]")
    assert f"start={yesterday}" in page.url
    assert page.locator("[data-testid=stat-gmv] .value").inner_text() == "¥200.00"

    # and open the GMV page from the tabs, which keeps the period
    with page.expect_navigation():
        page.click("[data-testid=analytics-tabs] a[href^='/console/analytics/gmv']")
    page.wait_for_selector("#gmv-contributions-chart .main-svg")
    assert page.locator("[data-testid=gmv-days] tbody tr").count() == 1
    assert page.locator("[data-testid=export-csv]").get_attribute("href").startswith("/console/analytics/gmv.csv?")

    # when the RFM page is read on a phone
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/console/analytics/rfm")
    page.wait_for_selector(".chart-with-table .chart .main-svg")
    # then nothing is wider than the screen, and each chart stands above its table, the screen's width
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    chart = page.locator(".chart-with-table .chart").first.bounding_box()
    table = page.locator(".chart-with-table .chart-table").first.bounding_box()
    assert chart is not None and table is not None
    assert chart["width"] > 300 and table["y"] >= chart["y"] + chart["height"]

    # when the guide leaderboard (seven columns) is read on a laptop's screen
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/console/analytics/leaderboard")
    page.wait_for_selector(".chart-with-table .chart .main-svg")
    # then its table stands below the chart, every column in view without scrolling inside its card
    board = page.locator("[data-testid=leaderboard]")
    holder = page.locator(".chart-with-table .chart-table").first
    assert board.evaluate("t => t.scrollWidth") <= holder.evaluate("d => d.clientWidth")
    assert holder.bounding_box()["y"] >= page.locator(".chart-with-table .chart").first.bounding_box()["y"] + 100
