"""Shares over HTTP: creating shares (customer, staff), /s/{code} (touch, visitor cookie, redirect, friendly 404),
QR codes and posters, the funnel beacon, stitching at sign-in, and orders and payments in the funnel and the
figures (API.md, Sharing and attribution)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service.funnel import FUNNEL_KINDS
from siyu.core.auth import Role
from siyu.customers.deps import VISITOR_COOKIE, cookie_name
from siyu.customers.models import Customer
from siyu.merchants.models import Merchant
from tests.factories.attribution import make_share
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store
from tests.factories.orders import checkout_body, customer_headers, make_sku


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


def count(db: Session, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def test_a_customer_creates_a_share_and_gets_its_links(db: Session, client: TestClient, merchant: Merchant) -> None:
    # given
    product = make_product(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant)
    headers = customer_headers(db, customer)
    # when
    r = client.post(f"/api/v1/shop/{merchant.slug}/shares", json={"target_type": "product", "target_id": product.id},
                    headers=headers)
    again = client.post(f"/api/v1/shop/{merchant.slug}/shares", json={"target_type": "product", "target_id": product.id},
                        headers=headers)
    # then
    assert r.status_code == 200, r.text
    body = r.json()
    code = body["code"]
    assert body["url"] == f"http://testserver/s/{code}"
    assert (body["qr_png_url"], body["poster_png_url"]) == (f"/s/{code}/qr.png", f"/s/{code}/poster.png")
    assert (body["sharer_customer_id"], body["channel"], body["target_type"]) == (customer.id, "chat", "product")
    assert again.json()["code"] == code
    assert count(db, Share, Share.merchant_id == merchant.id) == 1


def test_sharing_needs_a_signed_in_customer(client: TestClient, merchant: Merchant) -> None:
    r = client.post(f"/api/v1/shop/{merchant.slug}/shares", json={"target_type": "page"})
    assert r.status_code == 401


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"target_type": "spaceship", "target_id": 1}, 422, "validation_error"),
    ({"target_type": "product", "target_id": -1}, 422, "validation_error"),
    ({"target_type": "product", "target_id": 999999}, 404, "not_found"),
    ({"target_type": "product", "target_id": 1, "channel": "pigeon"}, 422, "validation_error"),
])
def test_bad_share_requests_are_clear_4xx(db: Session, client: TestClient, merchant: Merchant, body, status,
                                          code) -> None:
    staff = make_staff(db, merchant=merchant)
    r = client.post("/api/v1/admin/shares", json=body, headers=auth_headers(db, staff))
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert count(db, Share, Share.merchant_id == merchant.id) == 0


def test_another_merchants_product_is_not_found(db: Session, client: TestClient, merchant: Merchant) -> None:
    foreign = make_product(db, merchant=make_merchant(db))
    staff = make_staff(db, merchant=merchant)
    r = client.post("/api/v1/admin/shares", json={"target_type": "product", "target_id": foreign.id},
                    headers=auth_headers(db, staff))
    assert r.status_code == 404


def test_opening_a_share_records_a_touch_sets_the_cookie_and_redirects(db: Session, client: TestClient,
                                                                        merchant: Merchant) -> None:
    # given: a guide's share of a product
    product = make_product(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant))
    r = client.post("/api/v1/admin/shares", json={"target_type": "product", "target_id": product.id},
                    headers=auth_headers(db, guide))
    code = r.json()["code"]
    # when: a new visitor opens it from Moments, then again with a channel we do not know
    first = client.get(f"/s/{code}?ch=moments", follow_redirects=False)
    second = client.get(f"/s/{code}?ch=pigeon", follow_redirects=False)
    # then
    assert first.status_code == 303
    assert first.headers["location"] == f"/shop/{merchant.slug}/p/{product.id}"
    visitor = first.cookies.get(VISITOR_COOKIE)
    assert visitor and "Max-Age" in first.headers["set-cookie"]
    assert VISITOR_COOKIE not in second.cookies  # the browser already has one
    touches = list(db.scalars(select(Touch).where(Touch.merchant_id == merchant.id).order_by(Touch.id)))
    assert [(t.channel, t.visitor_id, t.sharer_staff_id, t.target_id, t.customer_id) for t in touches] == [
        ("moments", visitor, guide.id, product.id, None), ("chat", visitor, guide.id, product.id, None)]


def test_a_signed_in_customer_opening_a_share_is_known_at_once(db: Session, client: TestClient,
                                                                merchant: Merchant) -> None:
    sharer, friend = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    share = make_share(db, merchant=merchant, customer=sharer)
    client.cookies.set(cookie_name(merchant.slug), customer_headers(db, friend)["Authorization"][7:])
    r = client.get(f"/s/{share.code}", follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/"
    touch = db.scalars(select(Touch).where(Touch.merchant_id == merchant.id)).one()
    assert touch.customer_id == friend.id
    edge = db.scalars(select(FissionEdge).where(FissionEdge.merchant_id == merchant.id)).one()
    assert (edge.customer_id, edge.by_customer_id) == (friend.id, sharer.id)


def test_an_unknown_code_gets_a_friendly_page(db: Session, client: TestClient) -> None:
    r = client.get("/s/nosuchcode1", follow_redirects=False)
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"] and 'data-testid="share-missing"' in r.text
    assert count(db, Touch) == 0
    assert client.get("/s/nosuchcode1/qr.png").status_code == 404


def test_qr_codes_and_poster(db: Session, client: TestClient, merchant: Merchant) -> None:
    product = make_product(db, merchant=merchant, title="桂花乌龙茶礼盒")
    share = make_share(db, merchant=merchant, target_type="product", target_id=product.id,
                       customer=make_customer(db, merchant=merchant, nickname="小美"))
    png = client.get(f"/s/{share.code}/qr.png")
    svg = client.get(f"/s/{share.code}/qr.svg")
    poster = client.get(f"/s/{share.code}/poster.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(poster.content))
    assert image.size == (750, 1200)
    # the QR corner of the poster is not blank
    assert image.convert("L").crop((500, 940, 720, 1160)).getextrema() == (0, 255)


def test_the_beacon_records_views_with_the_visitors_touch(db: Session, client: TestClient, merchant: Merchant) -> None:
    product = make_product(db, merchant=merchant)
    share = make_share(db, merchant=merchant, target_type="product", target_id=product.id,
                       customer=make_customer(db, merchant=merchant))
    client.get(f"/s/{share.code}", follow_redirects=False)
    r = client.post(f"/api/v1/shop/{merchant.slug}/funnel-events", json={"kind": "view", "product_ids": [product.id]})
    assert r.status_code == 202 and r.json() == {"recorded": 1}
    row = db.scalars(select(FunnelEvent).where(FunnelEvent.merchant_id == merchant.id)).one()
    touch = db.scalars(select(Touch).where(Touch.merchant_id == merchant.id)).one()
    assert (row.kind, row.product_id, row.touch_id, row.share_id, row.channel, row.visitor_id) == (
        FUNNEL_KINDS["view"], product.id, touch.id, share.id, "chat", touch.visitor_id)
    bad = client.post(f"/api/v1/shop/{merchant.slug}/funnel-events", json={"kind": "pay", "product_ids": [1]})
    assert bad.status_code == 422
    too_many = client.post(f"/api/v1/shop/{merchant.slug}/funnel-events",
                           json={"kind": "exposure", "product_ids": list(range(1, 60))})
    assert too_many.status_code == 422
    assert count(db, FunnelEvent, FunnelEvent.merchant_id == merchant.id) == 1


def test_e2e_a_visitor_opens_a_share_signs_in_buys_and_pays(db: Session, client: TestClient,
                                                            merchant: Merchant) -> None:
    # given: a customer's share of a product
    sku = make_sku(db, merchant=merchant, price_cents=2000)
    sharer = make_customer(db, merchant=merchant, nickname="分享人")
    share = make_share(db, merchant=merchant, target_type="product", target_id=sku.product_id, customer=sharer)
    # when: an anonymous visitor opens it, signs in through the H5 login form, adds to cart, orders and pays
    client.get(f"/s/{share.code}?ch=moments", follow_redirects=False)
    r = client.post(f"/shop/{merchant.slug}/login", data={"nickname": "新朋友", "openid": "friend-openid-1",
                                                          "next": f"/shop/{merchant.slug}/"}, follow_redirects=False)
    assert r.status_code == 303
    friend = db.scalars(select(Customer).where(Customer.merchant_id == merchant.id,
                                               Customer.nickname == "新朋友")).one()
    headers = customer_headers(db, friend)
    assert client.post(f"/api/v1/shop/{merchant.slug}/cart/lines", json={"sku_id": sku.id, "quantity": 1},
                       headers=headers).status_code in (200, 201)
    order = client.post(f"/api/v1/shop/{merchant.slug}/orders", json=checkout_body([(sku, 1)]),
                        headers={**headers, "Idempotency-Key": "e2e-share-1"})
    assert order.status_code in (200, 201), order.text
    pay = client.post(f"/api/v1/shop/{merchant.slug}/orders/{order.json()['id']}/pay", json={"method": "sandbox"},
                      headers=headers)
    confirm = client.post(f"/api/v1/shop/{merchant.slug}/payments/{pay.json()['payment_id']}/sandbox-confirm",
                          headers=headers)
    assert confirm.status_code == 200, confirm.text
    # then: the touch is the friend's, the sharer brought them, and the funnel knows the share at every step
    touch = db.scalars(select(Touch).where(Touch.merchant_id == merchant.id)).one()
    assert (touch.customer_id, touch.channel) == (friend.id, "moments")
    edge = db.scalars(select(FissionEdge).where(FissionEdge.customer_id == friend.id)).one()
    assert edge.by_customer_id == sharer.id
    rows = list(db.scalars(select(FunnelEvent).where(FunnelEvent.merchant_id == merchant.id).order_by(FunnelEvent.id)))
    assert [(r.kind, r.customer_id, r.share_id, r.channel) for r in rows] == [
        (FUNNEL_KINDS["add_to_cart"], friend.id, share.id, "moments"),
        (FUNNEL_KINDS["order"], friend.id, share.id, "moments"),
        (FUNNEL_KINDS["pay"], friend.id, share.id, "moments")]
    assert rows[2].amount_cents == order.json()["payable_cents"]
    # and the console's figures count it
    admin = make_staff(db, merchant=merchant)
    board = client.get("/api/v1/admin/attribution/leaderboard?sharer=customer", headers=auth_headers(db, admin)).json()
    assert [(i["id"], i["visits"], i["new_customers"], i["orders"], i["gmv_cents"]) for i in board["items"]] == [
        (sharer.id, 1, 1, 1, order.json()["payable_cents"])]
    brought = client.get(f"/api/v1/shop/{merchant.slug}/me/brought", headers=customer_headers(db, sharer)).json()
    assert [(i["customer_id"], i["nickname"]) for i in brought["items"]] == [(friend.id, "新朋友")]


def test_admin_figures_endpoints(db: Session, client: TestClient, merchant: Merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    headers = auth_headers(db, admin)
    alice, bob = make_customer(db, merchant=merchant, nickname="alice"), make_customer(db, merchant=merchant)
    share = client.post(f"/api/v1/shop/{merchant.slug}/shares", json={"target_type": "page"},
                        headers=customer_headers(db, alice)).json()
    client.cookies.set(cookie_name(merchant.slug), customer_headers(db, bob)["Authorization"][7:])
    client.get(f"/s/{share['code']}", follow_redirects=False)
    client.cookies.clear()
    tree = client.get(f"/api/v1/admin/attribution/fission-tree?customer_id={alice.id}", headers=headers).json()
    assert (tree["depth"], tree["width"], tree["size"]) == (1, 1, 1)
    assert tree["roots"][0]["children"][0]["id"] == bob.id
    campaign = client.get("/api/v1/admin/attribution/fission-tree?campaign=page:0", headers=headers).json()
    assert campaign["size"] == 1
    k = client.get("/api/v1/admin/attribution/k-factor", headers=headers).json()
    assert (k["new_customers"], k["sharing_customers"], k["k_bps"]) == (1, 1, 10000)
    listed = client.get("/api/v1/admin/shares?sharer=customer", headers=headers).json()
    assert [(i["code"], i["stats"]["visits"], i["stats"]["new_customers"]) for i in listed["items"]] == [
        (share["code"], 1, 1)]
    assert client.get("/api/v1/admin/attribution/fission-tree", headers=headers).status_code == 422
    assert client.get("/api/v1/admin/attribution/leaderboard?sharer=robots", headers=headers).status_code == 422


def test_a_guide_lists_only_their_own_shares_and_qr_codes(db: Session, client: TestClient, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant)
    other_store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    make_staff(db, merchant=merchant, role=Role.GUIDE, store=other_store)
    make_share(db, merchant=merchant, staff=guide)
    make_share(db, merchant=merchant, customer=make_customer(db, merchant=merchant))
    headers = auth_headers(db, guide)
    listed = client.get("/api/v1/admin/shares", headers=headers).json()
    assert [i["sharer_staff_id"] for i in listed["items"]] == [guide.id]
    codes = client.get("/api/v1/admin/attribution/qr-codes", headers=headers).json()
    assert [s["store_id"] for s in codes["stores"]] == [store.id]
    assert [(g["staff_id"], g["channel"], g["target_id"]) for g in codes["guides"]] == [(guide.id, "guide_qr", store.id)]


def test_figures_refuse_dates_out_of_range(db: Session, client: TestClient, merchant: Merchant) -> None:
    headers = auth_headers(db, make_staff(db, merchant=merchant))
    for query in ("start=0001-01-01", "end=9999-12-31", "start=2026-02-30"):
        r = client.get(f"/api/v1/admin/attribution/leaderboard?{query}", headers=headers)
        assert r.status_code == 422, query


def test_a_share_of_a_product_taken_off_sale_still_counts_and_lands_in_the_shop(db: Session, client: TestClient,
                                                                                 merchant: Merchant) -> None:
    from siyu.catalog import service as catalog
    from siyu.core.auth import system_principal

    product = make_product(db, merchant=merchant)
    share = make_share(db, merchant=merchant, target_type="product", target_id=product.id,
                       customer=make_customer(db, merchant=merchant))
    catalog.change_status(db, product.id, actor=system_principal(merchant.id), status="off_sale")
    r = client.get(f"/s/{share.code}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/shop/{merchant.slug}/"
    assert count(db, Touch, Touch.share_id == share.id) == 1


def test_the_poster_shows_the_products_uploaded_image(db: Session, client: TestClient, merchant: Merchant) -> None:
    from siyu.config import get_settings

    folder = get_settings().media_dir / str(merchant.id)
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 300), (0, 128, 255)).save(folder / "poster-test.png")
    product = make_product(db, merchant=merchant, images=[f"/media/{merchant.id}/poster-test.png"])
    outside = make_product(db, merchant=merchant, images=["/media/../../../etc/hostname"])
    share = make_share(db, merchant=merchant, target_type="product", target_id=product.id)
    other = make_share(db, merchant=merchant, target_type="product", target_id=outside.id)
    poster = Image.open(io.BytesIO(client.get(f"/s/{share.code}/poster.png").content)).convert("RGB")
    assert poster.getpixel((10, 10)) == (0, 128, 255) and poster.getpixel((740, 740)) == (0, 128, 255)
    # an image path outside the media folder is never read: the poster gets the plain panel
    plain = Image.open(io.BytesIO(client.get(f"/s/{other.code}/poster.png").content)).convert("RGB")
    assert plain.getpixel((10, 10)) == (250, 236, 230)


def test_a_mini_program_login_with_the_visitor_header_stitches(db: Session, client: TestClient,
                                                               merchant: Merchant) -> None:
    sharer = make_customer(db, merchant=merchant)
    share = make_share(db, merchant=merchant, customer=sharer)
    opened = client.get(f"/s/{share.code}", follow_redirects=False)
    visitor = opened.cookies.get(VISITOR_COOKIE)
    client.cookies.clear()
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/dev-login", json={"openid": "mp-openid-77"},
                    headers={"X-Siyu-Visitor": visitor})
    assert r.status_code == 200
    touch = db.scalars(select(Touch).where(Touch.share_id == share.id)).one()
    assert touch.customer_id == r.json()["customer"]["id"]
    assert db.scalars(select(FissionEdge).where(FissionEdge.customer_id == touch.customer_id)).one().by_customer_id \
        == sharer.id
