"""Customer ownership in the browser: a brand admin moves a guide's customer to a colleague with the transfer
tool, then reads the customer's source page (touches, bindings, the transfer in the history)."""

from __future__ import annotations

import pytest


def _seed(live_server, slug: str) -> dict:
    from siyu.attribution.service import shares
    from siyu.core.auth import Role
    from siyu.db import use_database
    from siyu.merchants import service as merchants
    from siyu.merchants.models import Staff, Store

    with use_database(live_server.database), live_server.database.scope() as session:
        merchant = merchants.get_merchant_by_slug(session, slug)
        store = Store(merchant_id=merchant.id, name="浏览器门店")
        session.add(store)
        session.flush()
        guides = []
        for name in ("王导购", "李导购"):
            staff = Staff(merchant_id=merchant.id, username=f"{slug}-{len(guides)}", password_hash="x", name=name,
                          role=Role.GUIDE.value, store_id=store.id, active=True)
            session.add(staff)
            session.flush()
            guides.append(staff.id)
        from siyu.customers.models import Customer

        customer = Customer(merchant_id=merchant.id, nickname="被转移的顾客")
        session.add(customer)
        session.flush()
        shares.record_touch(session, merchant_id=merchant.id, channel="guide_qr", customer_id=customer.id,
                            sharer_staff_id=guides[0])
        return {"customer_id": customer.id, "from": guides[0], "to": guides[1]}


@pytest.mark.browser
def test_transfer_tool_and_customer_source(live_server, page) -> None:
    # given: a customer bound to 王导购 by a guide QR code
    username, password, slug = live_server.seed_admin()
    seeded = _seed(live_server, slug)
    live_server.login(page, username, password)

    # when: the admin filters the transfer tool by 王导购, ticks the customer and moves them to 李导购
    page.goto(f"{live_server.url}/console/attribution/transfer")
    page.select_option("form[data-testid=transfer-filters] select[name=owner]", str(seeded["from"]))
    with page.expect_navigation():
        page.click("form[data-testid=transfer-filters] button[type=submit]")
    rows = page.locator("[data-testid=transfer-row]")
    assert rows.count() == 1
    rows.first.locator("input[type=checkbox]").check()
    page.select_option("[data-testid=to-guide]", str(seeded["to"]))
    page.fill("form[data-testid=transfer-form] input[name=reason]", "调店")
    page.screenshot(path="/tmp/siyu-browser-transfer.png", full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=transfer-submit]")

    # then: the flash says one customer moved, and the source page shows the touch, the binding and the transfer
    assert page.locator(".flash").is_visible()
    page.goto(f"{live_server.url}/console/attribution/source/customers/{seeded['customer_id']}")
    assert page.locator("[data-testid=touch-row]").count() == 1
    assert "李导购" in page.locator("[data-testid=binding-guide]").inner_text()
    history = page.locator("[data-testid=history-row]")
    assert history.count() == 2
    assert "调店" in history.nth(1).inner_text()
    page.screenshot(path="/tmp/siyu-browser-customer-source.png", full_page=True)
