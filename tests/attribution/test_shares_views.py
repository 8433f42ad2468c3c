"""Shares pages: the console's share links, QR sheet and fission boards; the H5 share page, store page and
"who I brought"."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import Share
from siyu.core.auth import Role
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.merchants.models import Merchant
from tests.factories.attribution import make_share, make_touch
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, make_merchant, make_staff, make_store


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/console/attribution")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_console_share_links_create_and_detail(db: Session, client: TestClient, merchant: Merchant) -> None:
    # given
    admin = make_staff(db, merchant=merchant)
    product = make_product(db, merchant=merchant, title="龙井")
    token = console_login(client, admin)
    empty = client.get("/console/attribution")
    assert 'data-testid="empty"' in empty.text
    # when
    r = client.post("/console/attribution/shares", data={"csrf_token": token, "target_type": "product",
                                                         "target_id": str(product.id), "channel": "moments",
                                                         "campaign": "春茶"}, follow_redirects=False)
    # then
    share = db.scalars(select(Share).where(Share.merchant_id == merchant.id)).one()
    assert r.headers["location"] == f"/console/attribution/shares/{share.id}"
    assert (share.sharer_staff_id, share.channel, share.campaign) == (admin.id, "moments", "春茶")
    detail = client.get(r.headers["location"])
    assert detail.status_code == 200 and share.code in detail.text and "<svg" in detail.text
    listing = client.get("/console/attribution")
    assert 'data-testid="share-table"' in listing.text and "龙井" in listing.text
    assert f'<option value="{product.id}">龙井</option>' in listing.text
    # and a visit shows on the detail page
    make_touch(db, merchant=merchant, share=share, customer=make_customer(db, merchant=merchant, nickname="访客甲"))
    visits = client.get(r.headers["location"])
    assert 'data-testid="share-visits"' in visits.text and "访客甲" in visits.text


def test_console_refuses_a_bad_target_and_keeps_nothing(db: Session, client: TestClient, merchant: Merchant) -> None:
    token = console_login(client, make_staff(db, merchant=merchant))
    r = client.post("/console/attribution/shares", data={"csrf_token": token, "target_type": "product",
                                                         "target_id": "abc"}, follow_redirects=True)
    assert r.status_code == 200 and 'class="flash error"' in r.text
    assert db.scalar(select(func.count()).select_from(Share).where(Share.merchant_id == merchant.id)) == 0


def test_qr_sheet_has_a_card_per_store_and_guide(db: Session, client: TestClient, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant, name="静安店")
    make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, name="小王")
    console_login(client, make_staff(db, merchant=merchant))
    page = client.get("/console/attribution/qr-sheet")
    assert page.status_code == 200
    assert "静安店" in page.text and "小王" in page.text and "@media print" in page.text
    assert page.text.count("<svg") == 2


def test_fission_page_shows_boards_and_a_tree(db: Session, client: TestClient, merchant: Merchant) -> None:
    alice, bob = make_customer(db, merchant=merchant, nickname="阿丽"), make_customer(db, merchant=merchant,
                                                                                   nickname="阿博")
    make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=alice), customer=bob)
    console_login(client, make_staff(db, merchant=merchant))
    page = client.get(f"/console/attribution/fission?customer_id={alice.id}")
    assert page.status_code == 200
    assert 'data-testid="board-customer"' in page.text and 'data-testid="fission-tree"' in page.text
    assert "阿博" in page.text
    assert client.get("/console/attribution/fission?start=nonsense&campaign=page:0").status_code == 200


def test_h5_share_page_store_page_and_brought(db: Session, client: TestClient, merchant: Merchant) -> None:
    product = make_product(db, merchant=merchant, title="桂花糕")
    store = make_store(db, merchant=merchant, name="南京路店")
    me = make_customer(db, merchant=merchant, nickname="我")
    friend = make_customer(db, merchant=merchant, nickname="好友")
    # a visitor is sent to sign in first
    r = client.get(f"/shop/{merchant.slug}/share?target_type=product&target_id={product.id}", follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, me))
    product_page = client.get(f"/shop/{merchant.slug}/p/{product.id}")
    assert f"/shop/{merchant.slug}/share?target_type=product&amp;target_id={product.id}" in product_page.text
    page = client.get(f"/shop/{merchant.slug}/share?target_type=product&target_id={product.id}")
    share = db.scalars(select(Share).where(Share.merchant_id == merchant.id)).one()
    assert page.status_code == 200 and f"/s/{share.code}" in page.text and "桂花糕" in page.text
    assert f"/s/{share.code}/poster.png" in page.text and share.sharer_customer_id == me.id
    store_page = client.get(f"/shop/{merchant.slug}/store/{store.id}")
    assert store_page.status_code == 200 and "南京路店" in store_page.text and 'data-testid="share-button"' in store_page.text
    assert client.get(f"/shop/{merchant.slug}/share?target_type=product&target_id=999999").status_code == 404
    make_touch(db, merchant=merchant, share=share, customer=friend)
    brought = client.get(f"/shop/{merchant.slug}/me/brought")
    assert brought.status_code == 200 and "好友" in brought.text
    assert f"/shop/{merchant.slug}/me/brought" in client.get(f"/shop/{merchant.slug}/me").text
