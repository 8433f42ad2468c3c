"""Stored value in a real browser: staff add a recharge plan in the console; a customer on a phone
opens their balance, recharges (the normal sandbox pay page), sees principal and bonus credited,
then pays part of an order with the balance at checkout; staff see the ledger."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import fill_new_address

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.mark.browser
def test_balance_page_recharge_and_checkout_with_balance(live_server, page) -> None:
    from siyu.db import use_database
    from siyu.membership.service import stored_value as sv
    from siyu.merchants import service as merchants
    from tests.factories.catalog import make_product

    sv.install()
    # given a merchant with a product, and a recharge plan added in the console
    username, password, slug = live_server.seed_admin()
    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        product = make_product(session, merchant=merchant, title="储值好茶", stock=5, skus=[{"spec": {}, "price_cents": 80000}])
        product_id = product.id
    page.set_viewport_size(DESKTOP)
    live_server.login(page, username, password)
    page.goto(f"{live_server.url}/console/membership/stored-value")
    form = page.locator("form[data-testid=plan-form]")
    form.locator("input[name=name]").fill("充500送50")
    form.locator("input[name=price]").fill("500")
    form.locator("input[name=bonus]").fill("50")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator("[data-testid=plan-row]", has_text="充500送50").count() == 1

    # when a customer signs in on a phone and opens their balance from the member centre
    shop = f"{live_server.url}/shop/{slug}"
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/me")
    page.fill("form[data-testid=demo-login] input[name=nickname]", "储值顾客")
    with page.expect_navigation():
        page.click("form[data-testid=demo-login] button[type=submit]")
    with page.expect_navigation():
        page.click("[data-testid=my-balance]")
    assert page.locator("[data-testid=balance-total]").inner_text() == "¥0.00"
    assert page.locator("[data-testid=balance-empty]").is_visible()

    # and recharges with the plan: the normal sandbox pay page asks for ¥500.00
    with page.expect_navigation():
        page.locator("[data-testid=recharge-plan]", has_text="充500送50").locator("button").click()
    assert re.search(rf"/shop/{slug}/pay/\d+$", page.url), page.url
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥500.00"
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")

    # then the balance shows principal and bonus credited, with the history
    page.goto(f"{shop}/me/balance")
    assert page.locator("[data-testid=balance-total]").inner_text() == "¥550.00"
    assert page.locator("[data-testid=balance-principal]").inner_text() == "¥500.00"
    assert page.locator("[data-testid=balance-bonus]").inner_text() == "¥50.00"
    assert page.locator("[data-testid=balance-entry]").count() == 2
    page.screenshot(path="/tmp/siyu-browser-balance.png", full_page=True)

    # when the customer buys an ¥800 item, using the balance at checkout
    page.goto(f"{shop}/p/{product_id}")
    with page.expect_navigation():
        page.click("[data-testid=buy]")
    fill_new_address(page)
    with page.expect_navigation():
        page.click("[data-testid=update-total]")
    # the price breakdown says how much stored value can pay
    assert "¥550.00" in page.locator("[data-testid=breakdown]").inner_text()
    page.check("[data-testid=use-balance]", no_wait_after=True)
    page.wait_for_selector("[data-testid=payment-part]")
    assert page.locator("[data-testid=payable]").inner_text() == "¥250.00"
    with page.expect_navigation():
        page.click("[data-testid=place-order]")

    # then the rest (¥250.00) is paid in the sandbox, and the balance is spent
    assert page.locator("[data-testid=pay-amount]").inner_text() == "¥250.00"
    with page.expect_navigation():
        page.click("[data-testid=confirm-pay]")
    page.goto(f"{shop}/me/balance")
    assert page.locator("[data-testid=balance-total]").inner_text() == "¥0.00"

    # and staff see the customer's stored-value ledger in the console
    with use_database(live_server.database), live_server.database.scope() as session:
        from sqlalchemy import select

        from siyu.membership.models.stored_value import Recharge

        customer_id = session.scalars(select(Recharge.customer_id).where(Recharge.merchant_id == merchant.id)).one()
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/console/membership/stored-value/customers/{customer_id}")
    assert page.locator("[data-testid=sv-entry]").count() == 4
    assert page.locator("[data-testid=sv-total]").inner_text() == "¥0.00"
    page.screenshot(path="/tmp/siyu-browser-sv-ledger.png", full_page=True)
