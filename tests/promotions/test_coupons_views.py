"""Coupon pages: the console builder (errors re-shown, create, publish), the detail's figures, share
link and sending to customers, the marketing overview, and the H5 coupon centre and my coupons."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import Share
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.promotions.models.coupons import Coupon, CouponTemplate
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.promotions import give_coupon, make_coupon_template
from tests.promotions.conftest import csrf, staff_sign_in

BASE = "/console/promotions/coupons"


def console_login(client: TestClient, db: Session, merchant) -> str:  # type: ignore[no-untyped-def]
    return staff_sign_in(client, db, merchant, f"{BASE}/new")


FORM = {"name": "满100减20", "description": "", "kind": "threshold", "amount": "20", "threshold": "100", "percent": "",
        "cap": "", "exchange_sku_id": "", "scope": "all", "scope_product_ids": "", "scope_category_ids": "",
        "excluded_product_ids": "", "validity": "relative", "starts_at": "", "ends_at": "", "valid_days": "7",
        "total_stock": "100", "per_customer_limit": "2", "channels": ["centre", "guide"], "publish": "1"}


def test_console_builder_detail_share_and_issue(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    token = console_login(client, db, merchant)
    # when: the form is sent with an amount not below the threshold
    r = client.post(f"{BASE}/new", data={**FORM, "csrf_token": token, "amount": "100"})
    # then: it is shown again with the error beside the field, nothing saved
    assert r.status_code == 422
    assert 'data-testid="error-amount"' in r.text and 'value="满100减20"' in r.text
    assert db.scalars(select(CouponTemplate)).all() == []
    # when: corrected
    r = client.post(f"{BASE}/new", data={**FORM, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    template = db.scalars(select(CouponTemplate)).one()
    assert (template.status, template.amount_cents, template.threshold_cents, template.total_stock,
            template.per_customer_limit, template.channels) == ("active", 2000, 10_000, 100, 2, ["centre", "guide"])
    # the list and the detail show the figures
    customer = make_customer(db, merchant=merchant)
    give_coupon(db, template=template, customer=customer)
    assert f'data-testid="coupon-claimed-{template.id}">1<' in client.get(BASE).text
    page = client.get(f"{BASE}/{template.id}").text
    assert 'data-testid="fig-claimed">1<' in page and 'data-testid="fig-used">0<' in page
    # when: a share link is made
    r = client.post(f"{BASE}/{template.id}/share", data={"csrf_token": token}, follow_redirects=False)
    share = db.scalars(select(Share).where(Share.target_type == "coupon")).one()
    assert (r.headers["location"], share.target_id) == (f"{BASE}/{template.id}?share={share.code}", template.id)
    assert f"/s/{share.code}/qr.png" in client.get(r.headers["location"]).text
    # when: sent to two customers (one already holds one: the limit is two)
    other = make_customer(db, merchant=merchant)
    r = client.post(f"{BASE}/{template.id}/issue", data={"csrf_token": token, "customer_ids": f"{customer.id}, {other.id}",
                                                          "channel": "guide"}, follow_redirects=False)
    assert r.headers["location"] == f"{BASE}/{template.id}?issued=2"
    assert sorted(c.customer_id for c in db.scalars(select(Coupon))) == sorted([customer.id, customer.id, other.id])
    # when: paused from the detail page
    client.post(f"{BASE}/{template.id}/pause", data={"csrf_token": token})
    db.refresh(template)
    assert template.status == "paused"


def test_marketing_overview_counts_running_coupon_campaigns(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    make_coupon_template(db, merchant=merchant)
    make_coupon_template(db, merchant=merchant, status="draft")
    console_login(client, db, merchant)
    page = client.get("/console/promotions").text
    assert 'data-testid="running-coupons">1<' in page
    for path in ("coupons", "split-coupons", "flash-sales", "team-buys", "bargains", "ladders", "payment-offers",
                 "popups"):
        assert f'href="/console/promotions/{path}"' in page


def test_h5_centre_claim_and_my_coupons(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    template = make_coupon_template(db, merchant=merchant, name="十元无门槛", per_customer_limit=1)
    customer = make_customer(db, merchant=merchant)
    # signed out: the centre shows it with a sign-in link
    page = client.get(f"/shop/{merchant.slug}/coupons?tab=centre").text
    assert f'data-testid="centre-{template.id}"' in page and "/login?next=" in page
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    page = client.get(f"/shop/{merchant.slug}/coupons?tab=centre")
    r = client.post(f"/shop/{merchant.slug}/coupons/claim/{template.id}", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/coupons?tab=centre&ok=claimed"
    coupon = db.scalars(select(Coupon)).one()
    assert (coupon.customer_id, coupon.channel) == (customer.id, "centre")
    # a second claim: refused, said on the page
    r = client.post(f"/shop/{merchant.slug}/coupons/claim/{template.id}", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.headers["location"].endswith("&error=coupon_limit_reached")
    assert f'data-testid="claimed-{template.id}"' in client.get(r.headers["location"]).text
    page = client.get(f"/shop/{merchant.slug}/coupons?tab=mine").text
    assert f'data-testid="my-coupon-{coupon.id}"' in page and "十元无门槛" in page
    # the member centre links to them with the count
    assert 'data-testid="my-coupons-count">1 ›<' in client.get(f"/shop/{merchant.slug}/member").text


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def test_h5_checkout_preselects_the_best_coupon_and_places_with_it(client: TestClient, db: Session) -> None:
    from siyu.orders import service as orders
    from siyu.orders.models import Order
    from tests.factories.orders import customer_principal, make_sku

    # given: a customer with an address, a ¥5 and a ¥8 coupon, and a ¥30 item
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    orders.create_address(db, actor=customer_principal(customer), name="张三", phone="13812345678", province="上海市",
                          city="上海市", district="黄浦区", detail="南京东路 1 号")
    five = give_coupon(db, template=make_coupon_template(db, merchant=merchant, amount_cents=500, name="五元券"),
                       customer=customer)
    eight = give_coupon(db, template=make_coupon_template(db, merchant=merchant, amount_cents=800, name="八元券"),
                        customer=customer)
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    # when: the checkout page opens
    page = client.get(f"/shop/{merchant.slug}/checkout?sku_id={sku.id}&quantity=1").text
    # then: the picker lists both, the ¥8 one chosen, and the price takes it off
    assert 'data-testid="coupon-picker"' in page
    assert re.search(rf'name="coupon_id" value="{eight.id}" checked', page)
    assert re.search(rf'name="coupon_id" value="{five.id}" +data', page)
    assert 'data-testid="payable">¥22.00<' in page
    # when: the customer picks the ¥5 one and places the order
    r = client.post(f"/shop/{merchant.slug}/checkout", data={
        "csrf_token": csrf(page), "idem_key": _hidden(page, "idem_key"), "type": "delivery", "sku_id": str(sku.id),
        "quantity": "1", "address_id": _hidden(page, "address_id") if 'name="address_id" value=' in page else "",
        "coupon_pick": "1", "coupon_id": str(five.id), "action": "place"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    db.expire_all()
    order = db.scalars(select(Order)).one()
    assert (order.total_cents, db.get(Coupon, five.id).order_id, db.get(Coupon, eight.id).status) == (
        2500, order.id, "available")


def test_product_page_shows_coupons_that_apply(client: TestClient, db: Session) -> None:
    from tests.factories.orders import make_sku

    merchant = make_merchant(db)
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    other = make_sku(db, merchant=merchant, price_cents=3000)
    make_coupon_template(db, merchant=merchant, amount_cents=500, name="五元券", channels=["centre"])
    make_coupon_template(db, merchant=merchant, amount_cents=700, name="别的商品券", channels=["centre"],
                         scope="products", scope_product_ids=[other.product_id])
    page = client.get(f"/shop/{merchant.slug}/p/{sku.product_id}").text
    assert 'data-testid="product-coupons"' in page and "立减 ¥5.00" in page and "¥7.00" not in page


def test_marketing_overview_counts_running_campaigns_of_every_play(client: TestClient, db: Session) -> None:
    from tests.factories.orders import make_sku
    from tests.factories.promotions import (
        make_bargain_campaign,
        make_flash_sale,
        make_ladder,
        make_offer_rule,
        make_popup_rule,
        make_split_campaign,
        make_team_buy,
    )

    # given one running campaign of each play, and a draft flash sale and a draft team buy
    merchant = make_merchant(db)
    sku = make_sku(db, merchant=merchant, price_cents=5000, stock=100)
    make_flash_sale(db, merchant=merchant, items=[(sku, 3000, 10, None)])
    make_flash_sale(db, merchant=merchant, items=[(sku, 3000, 10, None)], status="draft")
    make_team_buy(db, merchant=merchant)
    make_team_buy(db, merchant=merchant, status="draft")
    make_bargain_campaign(db, merchant=merchant)
    make_ladder(db, merchant=merchant)
    make_split_campaign(db, merchant=merchant)
    make_offer_rule(db, merchant=merchant)
    make_popup_rule(db, merchant=merchant)
    console_login(client, db, merchant)
    # when the marketing overview opens
    page = client.get("/console/promotions").text
    # then each play counts its running campaigns only
    for area in ("flash_sales", "team_buys", "bargains", "ladders", "split_coupons", "payment_offers", "popups"):
        assert f'data-testid="running-{area}">1<' in page, area
