"""The distributor centre in a real browser: a customer on a phone opens an invitation and joins, earns
a commission, withdraws; staff approve the withdrawal in the console; the customer sees it paid out."""

from __future__ import annotations

import datetime as dt

import pytest

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.browser
def test_distributor_centre(live_server, page) -> None:
    from sqlalchemy import select

    from siyu.core import clock, events
    from siyu.customers.models import Customer
    from siyu.db import use_database
    from siyu.distribution import service
    from siyu.merchants import service as merchants
    from tests.factories.customers import make_customer
    from tests.factories.distribution import make_distributor, make_rule, refer
    from tests.factories.orders import make_sku, pay, place_order

    # given a merchant paying 10% commission and a distributor (A) who invites people
    username, password, slug = live_server.seed_admin()
    database = live_server.database
    with use_database(database), database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        inviter = make_distributor(session, merchant=merchant, nickname="邀请人甲")
        make_rule(session, merchant=merchant, level=1, value=1000)
        sku_id = make_sku(session, merchant=merchant, price_cents=8800).id
        invite, merchant_id = inviter.invite_code, merchant.id
    shop = f"{live_server.url}/shop/{slug}"

    # when a customer signs in on a phone, opens A's invitation and joins
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/me")
    page.fill("form[data-testid=demo-login] input[name=nickname]", "分销新人")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    with page.expect_navigation():
        page.click("[data-testid=distributor-centre]")
    page.goto(f"{shop}/distribution?invite={invite}")
    assert "邀请人甲" in page.locator("[data-testid=dc-join]").inner_text()
    with page.expect_navigation():
        page.click("[data-testid=dc-join-button]")

    # then the centre shows empty earnings
    assert page.locator("[data-testid=dc-withdrawable]").inner_text() == "¥0.00"
    with use_database(database), database.scope() as session:
        me = session.scalars(select(Customer).where(Customer.merchant_id == merchant_id,
                                                    Customer.nickname == "分销新人")).one()
        d = service.of_customer(session, merchant_id=merchant_id, customer_id=me.id)
        assert d.upline_id == inviter.id

    # when a friend they brought buys ¥88, the order completes and the after-sales window closes
    with use_database(database), database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        from siyu.catalog.models import Sku

        order = place_order(session, customer=make_customer(session, merchant=merchant, nickname="好友乙"),
                            items=[(session.get(Sku, sku_id), 1)])
        refer(session, order, d)
        pay(session, order)
        order_id = order.id
    with use_database(database), database.scope() as session:
        service.schedule_settlement(session, merchant_id=merchant_id, order_id=order_id,
                                    closes_at=clock.now() - dt.timedelta(seconds=1))
        service.settle_due(session, clock.now())
        session.info.pop(events.PENDING_KEY, None)

    # then the customer sees ¥8.80 withdrawable, and the order in "my orders"
    page.goto(f"{shop}/distribution")
    assert page.locator("[data-testid=dc-withdrawable]").inner_text() == "¥8.80"
    page.goto(f"{shop}/distribution/orders")
    assert "¥8.80" in page.locator("[data-testid=dc-orders]").inner_text()

    # when they ask for too much, the amount stays and the error says why; then they withdraw ¥5
    page.goto(f"{shop}/distribution/withdraw")
    page.fill("form[data-testid=dc-withdraw-form] input[name=amount]", "9")
    with page.expect_navigation():
        page.click("form[data-testid=dc-withdraw-form] button[type=submit]")
    assert page.locator("[data-testid=dc-withdraw-error]").is_visible()
    assert page.locator("form[data-testid=dc-withdraw-form] input[name=amount]").input_value() == "9"
    page.fill("form[data-testid=dc-withdraw-form] input[name=amount]", "5")
    with page.expect_navigation():
        page.click("form[data-testid=dc-withdraw-form] button[type=submit]")
    assert page.locator("[data-testid=dc-withdrawable]").inner_text() == "¥3.80"
    assert "¥5.00" in page.locator("[data-testid=dc-withdrawals]").inner_text()
    page.screenshot(path="/tmp/siyu-browser-distribution.png", full_page=True)

    # when staff approve it in the console
    page.set_viewport_size(DESKTOP)
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/distribution/withdrawals")
    with page.expect_navigation():
        page.locator("[data-testid=withdrawal-table] button.primary").first.click()
    assert page.locator(".flash").inner_text() == "已通过。"
    page.goto(f"{live_server.url}/console/distribution/withdrawals?status=paid")
    assert "¥5.00" in page.locator("[data-testid=withdrawal-table]").inner_text()

    # then the customer sees it paid out
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/distribution/withdraw")
    assert "已打款" in page.locator("[data-testid=dc-withdrawals]").inner_text()
