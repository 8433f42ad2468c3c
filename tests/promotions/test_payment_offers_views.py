"""Payment-offer pages: the offer on the paid order page (claimed through its form), the link route, the console
builder with figures, and the API."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.payment_offers import PaymentOfferRule, PaymentOfferShow
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, auth_headers, make_merchant, make_staff
from tests.factories.orders import customer_headers, make_order
from tests.factories.promotions import make_coupon_template, make_offer_rule


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_paid_order_page_shows_the_offer_and_claims_it(client: TestClient, db: Session) -> None:
    # given: a coupon offer for every paid order
    merchant = make_merchant(db)
    template = make_coupon_template(db, merchant=merchant, name="下单返券", amount_cents=500, channels=["payment"])
    rule = make_offer_rule(db, merchant=merchant, templates=[template], title="支付成功，送你一张券")
    customer = make_customer(db, merchant=merchant)
    order = make_order(db, merchant=merchant, customer=customer, status="paid")
    unpaid = make_order(db, merchant=merchant, customer=customer)
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    # when
    page = client.get(f"/shop/{merchant.slug}/orders/{order.id}?paid=1")
    # then
    assert 'data-testid="payment-offer"' in page.text and "支付成功，送你一张券" in page.text
    assert 'data-testid="payment-offer"' not in client.get(f"/shop/{merchant.slug}/orders/{unpaid.id}").text
    show = db.scalars(select(PaymentOfferShow)).one()
    token = re.search(r'offers/\d+/claim">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(f"/shop/{merchant.slug}/offers/{show.id}/claim", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert 'data-testid="offer-claimed"' in page.text
    assert [(c.customer_id, c.template_id, c.channel) for c in db.scalars(select(Coupon))] == \
        [(customer.id, template.id, "payment")]
    # the console shows the figures
    staff = make_staff(db, merchant=merchant)
    client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    listing = client.get("/console/promotions/payment-offers")
    assert f'data-testid="offer-shown-{rule.id}">1<' in listing.text


def test_link_offer_redirects_and_counts(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    make_offer_rule(db, merchant=merchant, offer_kind="link", link_url=f"/shop/{merchant.slug}/search?q=tea")
    customer = make_customer(db, merchant=merchant)
    order = make_order(db, merchant=merchant, customer=customer, status="paid")
    r = client.get(f"/api/v1/shop/{merchant.slug}/orders/{order.id}/offers", headers=customer_headers(db, customer))
    item = r.json()["items"][0]
    assert item["offer_kind"] == "link"
    r = client.get(item["link_url"], follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/search?q=tea"
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    client.get(item["link_url"], follow_redirects=False)
    assert db.scalars(select(PaymentOfferShow)).one().clicked_at is not None


def test_console_builder_and_api(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    staff = make_staff(db, merchant=merchant)
    template = make_coupon_template(db, merchant=merchant, channels=["payment"])
    client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    token = csrf(client.get("/console/promotions/payment-offers/new").text)
    now = clock.now().astimezone(clock.SHANGHAI)
    form = {"csrf_token": token, "name": "满百送券", "priority": "10", "min_paid": "200", "max_paid": "100",
            "customer_type": "any", "offer_kind": "coupon", "template_ids": [str(template.id)], "title": "",
            "conversion_days": "7", "starts_at": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")}
    r = client.post("/console/promotions/payment-offers/new", data=form)
    assert r.status_code == 422 and 'data-testid="error-max_paid"' in r.text and 'value="满百送券"' in r.text
    r = client.post("/console/promotions/payment-offers/new", data={**form, "max_paid": ""}, follow_redirects=False)
    assert r.status_code == 303, r.text
    rule = db.scalars(select(PaymentOfferRule)).one()
    assert (rule.min_paid_cents, rule.max_paid_cents, rule.template_ids) == (20_000, None, [template.id])
    assert client.post(f"/console/promotions/payment-offers/{rule.id}/publish", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    assert client.get(f"/console/promotions/payment-offers/{rule.id}").status_code == 200
    headers = auth_headers(db, staff)
    r = client.get(f"/api/v1/admin/payment-offer-rules/{rule.id}", headers=headers)
    assert r.json()["status"] == "live" and r.json()["figures"] == {"shown": 0, "claimed": 0, "clicked": 0,
                                                                    "converted": 0}
    body = {"name": "API", "offer_kind": "gift_pack", "template_ids": [template.id],
            "starts_at": now.isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat()}
    assert client.post("/api/v1/admin/payment-offer-rules", json=body, headers=headers).status_code == 201
    assert client.post("/api/v1/admin/payment-offer-rules", json={**body, "template_ids": [2**50]},
                       headers=headers).status_code == 422
    other = make_offer_rule(db, merchant=make_merchant(db), offer_kind="link", link_url="/x")
    assert client.get(f"/api/v1/admin/payment-offer-rules/{other.id}", headers=headers).status_code == 404
