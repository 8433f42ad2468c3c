"""The leader centre in a real browser: a leader on a phone verifies a customer's pickup code (核销)
and hands the order over; the order is completed."""

from __future__ import annotations

import pytest

PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
def test_leader_verifies_a_pickup_code(live_server, page) -> None:
    import datetime as dt

    from sqlalchemy import select

    from siyu.core import clock
    from siyu.core.auth import system_principal
    from siyu.customers.signin import issue_customer_token
    from siyu.db import use_database
    from siyu.groupbuy import service
    from siyu.groupbuy.models import WaveOrder
    from siyu.merchants import service as merchants
    from siyu.orders.models import Order
    from tests.factories.customers import make_customer
    from tests.factories.groupbuy import leader_fulfilment, make_leader, make_wave
    from tests.factories.orders import make_sku, pay, place_order

    # given a leader whose point received a paid order of a closed wave
    _, _, slug = live_server.seed_admin()
    database = live_server.database
    with use_database(database):
        with database.scope() as session:
            merchant = merchants.get_merchant_by_slug(session, slug)
            leader_customer = make_customer(session, merchant=merchant, nickname="团长小王")
            leader = make_leader(session, merchant=merchant, customer=leader_customer, name="小王")
            sku = make_sku(session, merchant=merchant, price_cents=1200, stock=20, title="浏览器土鸡蛋")
            wave = make_wave(session, merchant=merchant, items=[(sku, 990, 10)])
            buyer = make_customer(session, merchant=merchant, nickname="邻居老张")
            order = place_order(session, customer=buyer, items=[(sku, 2)], fulfilment=leader_fulfilment(leader))
            pay(session, order)
            ids = {"merchant": merchant.id, "wave": wave.id, "leader": leader.id, "order": order.id}
            token = issue_customer_token(session, leader_customer)
        with database.scope() as session:
            service.cutoff.close_wave(session, ids["wave"], now=clock.now() + dt.timedelta(days=2), early=True)
        with database.scope() as session:
            service.delivery.mark_delivered(session, actor=system_principal(ids["merchant"]), wave_id=ids["wave"],
                                            leader_id=ids["leader"])
        with database.scope() as session:
            code = session.scalars(select(WaveOrder.pickup_code).where(WaveOrder.order_id == ids["order"])).one()

    # when the leader opens the leader centre on a phone
    page.set_viewport_size(PHONE)
    page.context.add_cookies([{"name": f"siyu_c_{slug}", "value": token, "url": live_server.url}])
    page.goto(f"{live_server.url}/shop/{slug}/leader")
    assert page.locator("[data-testid=point-order]").count() == 1
    # a wrong code is refused with a message
    page.fill("[data-testid=code]", "000000" if code != "000000" else "111111")
    with page.expect_navigation():
        page.click("[data-testid=find-code]")
    assert page.locator("[data-testid=code-error]").count() == 1
    # the right code finds the order; handing it over completes it
    page.fill("[data-testid=code]", code)
    with page.expect_navigation():
        page.click("[data-testid=find-code]")
    found = page.locator("[data-testid=found-order]")
    assert "浏览器土鸡蛋" in found.inner_text() and "邻居老张" in found.inner_text()
    page.screenshot(path="/tmp/siyu-browser-leader-verify.png", full_page=True)
    with page.expect_navigation():
        page.click("[data-testid=confirm-handout]")
    assert page.url.endswith("/leader?ok=verified")
    assert page.locator("[data-testid=point-order]").count() == 0

    # then the order is completed and the wave order picked up
    with use_database(database), database.scope() as session:
        assert session.get(Order, ids["order"]).status == "completed"
        assert session.scalars(select(WaveOrder.status).where(WaveOrder.order_id == ids["order"])).one() == "picked_up"
