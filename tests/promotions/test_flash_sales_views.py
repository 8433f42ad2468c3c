"""Flash-sale pages: the console builder (errors re-shown, create, edit, schedule, pause, end with live
figures) and the H5 list and detail (countdown as text, flash vs normal price, progress, buy-now link into
the checkout with the campaign, sold-out state)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.promotions.models.flash_sales import FlashSale, FlashSaleItem
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, make_staff
from tests.factories.orders import make_sku, place_order
from tests.factories.promotions import flash_promotion, make_flash_sale

CONSOLE = "/console/promotions/flash-sales"
T0 = dt.datetime(2026, 6, 18, 2, 0, tzinfo=dt.UTC)  # 10:00 Beijing time


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf token on the page"
    return found.group(1)


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get(f"{CONSOLE}/new").text)


def test_console_builds_schedules_pauses_and_ends_a_flash_sale(client: TestClient, db: Session, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100, title="保温杯")
    token = console_login(client, make_staff(db, merchant=merchant))
    with clock.frozen(T0):
        # a bad form: the typed values come back with the errors beside them
        form = {"csrf_token": token, "title": "端午秒杀", "starts_at": "2026-06-18T11:00", "ends_at": "2026-06-18T10:00",
                "items-0-sku_id": str(sku.id), "items-0-price": "abc", "items-0-allocation": "30",
                "items-0-limit": "2"}
        r = client.post(CONSOLE, data=form)
        assert r.status_code == 422
        assert 'value="端午秒杀"' in r.text and 'data-testid="item-0-error"' in r.text
        assert db.scalar(select(FlashSale.id)) is None
        # fixed: a draft, 11:00–12:00 Beijing time
        r = client.post(CONSOLE, data={**form, "ends_at": "2026-06-18T12:00", "items-0-price": "59.90"},
                        follow_redirects=False)
        assert r.status_code == 303
        sale = db.scalars(select(FlashSale)).one()
        assert (sale.title, sale.status, sale.starts_at, sale.ends_at) == ("端午秒杀", "draft", T0 + dt.timedelta(hours=1),
                                                                          T0 + dt.timedelta(hours=2))
        item = db.scalars(select(FlashSaleItem)).one()
        assert (item.sku_id, item.flash_price_cents, item.allocation, item.per_customer_limit) == (sku.id, 5990, 30, 2)
        # edit the allocation
        r = client.get(f"{CONSOLE}/{sale.id}/edit")
        assert r.status_code == 200 and 'value="59.90"' in r.text
        r = client.post(f"{CONSOLE}/{sale.id}/edit", data={**form, "ends_at": "2026-06-18T12:00", "items-0-price": "59.90",
                                                            "items-0-allocation": "20"}, follow_redirects=False)
        assert r.status_code == 303
        # schedule, pause, end
        for action, status in (("schedule", "scheduled"), ("pause", "paused"), ("resume", "scheduled")):
            r = client.post(f"{CONSOLE}/{sale.id}/{action}", data={"csrf_token": token}, follow_redirects=False)
            assert r.status_code == 303
            db.refresh(sale)
            assert sale.status == status
        page = client.get(f"{CONSOLE}/{sale.id}")
        assert page.status_code == 200
        assert 'data-testid="action-pause"' in page.text and f"/shop/{merchant.slug}/flash/{sale.id}" in page.text
        assert "0 / 20" in page.text
    # later, it runs and sells; the detail shows the live figures
    with clock.frozen(T0 + dt.timedelta(hours=1, minutes=5)):
        customer = make_customer(db, merchant=merchant)
        place_order(db, customer=customer, items=[(sku, 2)], promotion=flash_promotion(sale))
        page = client.get(f"{CONSOLE}/{sale.id}")
        assert re.search(r'data-testid="fig-units">2 / 20<', page.text)
        assert re.search(r'data-testid="fig-orders">1<', page.text)
        r = client.post(f"{CONSOLE}/{sale.id}/end", data={"csrf_token": token}, follow_redirects=False)
        db.refresh(sale)
        assert sale.status == "ended"
        # a refused move says why, nothing changes
        r = client.post(f"{CONSOLE}/{sale.id}/pause", data={"csrf_token": token}, follow_redirects=True)
        assert r.status_code == 200 and '<div class="flash error" role="status">' in r.text
        db.refresh(sale)
        assert sale.status == "ended"
        listing = client.get(CONSOLE, params={"status": "ended"})
        assert listing.status_code == 200 and "端午秒杀" in listing.text


def test_a_guide_cannot_open_the_builder(client: TestClient, db: Session, merchant) -> None:
    guide = make_staff(db, merchant=merchant, role="guide")
    client.post("/console/login", data={"username": guide.username, "password": PASSWORD}, follow_redirects=False)
    assert client.get(CONSOLE).status_code == 403


def test_shop_pages_count_down_and_show_sold_out(client: TestClient, db: Session, merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100, title="保温杯")
    other = make_sku(db, merchant=merchant, price_cents=5000, stock=100, title="茶叶")
    with clock.frozen(T0):
        running = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 2, None), (other, 2500, 10, None)],
                                  title="正在秒杀", ends_at=T0 + dt.timedelta(hours=1, minutes=2, seconds=3))
        coming = make_flash_sale(db, merchant=merchant, items=[(sku, 4900, 5, None)], title="晚场秒杀",
                                 starts_at=T0 + dt.timedelta(hours=10), ends_at=T0 + dt.timedelta(hours=11))
        place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 2)], promotion=flash_promotion(running))

        listing = client.get(f"/shop/{merchant.slug}/flash")
        assert listing.status_code == 200
        assert listing.text.index("正在秒杀") < listing.text.index("晚场秒杀")
        # the shop home's banner shows the running one
        home = client.get(f"/shop/{merchant.slug}/")
        banner = re.search(r'data-testid="flash-banner".*?</div>', home.text, re.S)
        assert banner and f"/shop/{merchant.slug}/flash/{running.id}" in banner.group(0) and "正在秒杀" in banner.group(0)

        page = client.get(f"/shop/{merchant.slug}/flash/{running.id}")
        assert page.status_code == 200
        # the countdown reads without JavaScript
        assert re.search(r'data-testid="countdown" data-seconds="3723">1:02:03<', page.text)
        assert "¥59.00" in page.text and "¥99.00" in page.text
        # the first item is sold out, the second can be bought through the campaign
        assert page.text.count('data-testid="sold-out"') == 1
        assert (f'href="/shop/{merchant.slug}/checkout?sku_id={other.id}&amp;quantity=1&amp;promo_kind=flash_sale'
                f'&amp;promo_campaign_id={running.id}"') in page.text
        assert "100%" in page.text

        page = client.get(f"/shop/{merchant.slug}/flash/{coming.id}")
        assert 'data-state="scheduled"' in page.text and 'data-seconds="36000">10:00:00<' in page.text
        assert 'data-testid="buy-now"' not in page.text

    draft = make_flash_sale(db, merchant=merchant, items=[(sku, 5900, 2, None)], status="draft")
    assert client.get(f"/shop/{merchant.slug}/flash/{draft.id}").status_code == 404


def test_checkout_shows_the_flash_price_before_an_address_is_known(client: TestClient, db: Session, merchant) -> None:
    from tests.factories.merchants import make_store
    from tests.orders.test_views import shop_login

    # given a running flash sale at ¥59.90 instead of ¥99.00, a store, and a customer without addresses
    make_store(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant, price_cents=9900, stock=100, title="保温杯")
    sale = make_flash_sale(db, merchant=merchant, items=[(sku, 5990, 10, 2)])
    shop_login(db, client, merchant, make_customer(db, merchant=merchant))
    # when they open the checkout from the flash-sale page
    page = client.get(f"/shop/{merchant.slug}/checkout?sku_id={sku.id}&quantity=1&promo_kind=flash_sale"
                      f"&promo_campaign_id={sale.id}").text
    # then the flash discount and the goods total show at once (shipping waits for the address)
    assert 'data-testid="adjustment-flash_sale">-¥39.10<' in page
    assert 'data-testid="goods-total">¥59.90<' in page
    assert f'name="promo_campaign_id" value="{sale.id}"' in page
