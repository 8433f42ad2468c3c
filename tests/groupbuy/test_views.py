"""Group-buying pages: the console (leaders, map, waves with builder, cut-off lists, delivery, the
community map) and the H5 (wave page and buying, leader application, the leader centre)."""

from __future__ import annotations

import datetime as dt
import io
import re

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.deps import cookie_name
from siyu.customers.models import Customer
from siyu.customers.signin import issue_customer_token
from siyu.groupbuy.models import Compound, Leader, Wave, WaveOrder
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.groupbuy import leader_fulfilment, make_compound, make_leader, make_wave
from tests.factories.merchants import PASSWORD, make_staff
from tests.factories.orders import make_sku, pay, place_order


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def console_login(client: TestClient, db: Session, merchant: Merchant) -> str:
    staff = make_staff(db, merchant=merchant)
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/groupbuy/waves").text)


def shop_login(db: Session, client: TestClient, merchant: Merchant, customer) -> str:
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    return csrf(client.get(f"/shop/{merchant.slug}/leader").text)


def test_console_wave_builder_cutoff_lists_and_delivery(client: TestClient, db: Session, merchant: Merchant) -> None:
    token = console_login(client, db, merchant)
    sku = make_sku(db, merchant=merchant, price_cents=1500, stock=100, title="赣南脐橙")
    leader = make_leader(db, merchant=merchant, route="东线")
    # the builder re-shows what was typed with the errors
    r = client.post("/console/groupbuy/waves/new", data={
        "csrf_token": token, "title": "", "starts_at": "2026-01-01T08:00", "cutoff_at": "2026-01-01T07:00",
        "delivery_date": "2026-01-02", "items-0-sku_id": str(sku.id), "items-0-price": "9.9",
        "items-0-allocation": "50"})
    assert r.status_code == 422
    assert 'value="9.9"' in r.text and 'data-testid="error-cutoff_at"' in r.text
    start = clock.now().astimezone(clock.SHANGHAI)
    r = client.post("/console/groupbuy/waves/new", data={
        "csrf_token": token, "title": "脐橙团", "starts_at": (start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "cutoff_at": (start + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"),
        "delivery_date": (start + dt.timedelta(days=2)).date().isoformat(), "items-0-sku_id": str(sku.id),
        "items-0-price": "9.90", "items-0-allocation": "50", "items-0-limit": "5"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    wave = db.scalars(select(Wave).where(Wave.merchant_id == merchant.id)).one()
    assert client.post(f"/console/groupbuy/waves/{wave.id}/open", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    buyer = make_customer(db, merchant=merchant, nickname="小李")
    order = place_order(db, customer=buyer, items=[(sku, 2)], fulfilment=leader_fulfilment(leader))
    pay(db, order)
    db.commit()
    page = client.get(f"/console/groupbuy/waves/{wave.id}")
    assert page.status_code == 200 and "¥19.80" in page.text
    # cut off now, then the printable lists and CSV
    assert client.post(f"/console/groupbuy/waves/{wave.id}/cut-off", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    for kind in ("purchase", "sorting", "manifest"):
        r = client.get(f"/console/groupbuy/waves/{wave.id}/lists/{kind}")
        assert r.status_code == 200 and "赣南脐橙" in r.text
        assert "赣南脐橙" in client.get(f"/console/groupbuy/waves/{wave.id}/lists/{kind}.csv").text
    assert "小李" in client.get(f"/console/groupbuy/waves/{wave.id}/lists/sorting").text
    # delivery with a bad shortage is re-shown; a good one is recorded
    r = client.post(f"/console/groupbuy/waves/{wave.id}/deliver/{leader.id}",
                    data={"csrf_token": token, f"short-{_line_id(db, order.id)}": "9"})
    assert r.status_code == 422 and 'data-testid="deliver-error"' in r.text
    r = client.post(f"/console/groupbuy/waves/{wave.id}/deliver/{leader.id}", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    assert db.scalars(select(WaveOrder.status).where(WaveOrder.order_id == order.id)).one() == "delivered"


def _line_id(db: Session, order_id: int) -> int:
    from siyu.groupbuy.models import WaveOrderLine

    return db.scalars(select(WaveOrderLine.order_line_id).where(WaveOrderLine.order_id == order_id)).first()


def test_console_leaders_map_and_community(client: TestClient, db: Session, merchant: Merchant) -> None:
    token = console_login(client, db, merchant)
    applicant = make_leader(db, merchant=merchant, status="applied")
    other = make_leader(db, merchant=merchant, latitude=31.3, longitude=121.6)
    r = client.get("/console/groupbuy/leaders?status=applied")
    assert r.status_code == 200 and applicant.point_name in r.text
    r = client.post(f"/console/groupbuy/leaders/{applicant.id}/approve",
                    data={"csrf_token": token, "route": "北线", "commission_bps": "800"}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(applicant)
    assert (applicant.status, applicant.route, applicant.commission_bps) == ("active", "北线", 800)
    assert other.point_name in client.get(f"/console/groupbuy/leaders/{applicant.id}").text  # a nearby point
    r = client.get("/console/groupbuy/map")
    assert r.status_code == 200 and "<circle" in r.text
    r = client.post("/console/groupbuy/community/compounds", data={
        "csrf_token": token, "name": "阳光花园", "households": "800", "latitude": "31.2", "longitude": "121.5",
        "delivery_date": "2027-06-01"}, follow_redirects=False)
    assert r.status_code == 303
    compound = db.scalars(select(Compound).where(Compound.merchant_id == merchant.id)).one()
    assert (compound.households, compound.delivery_date) == (800, dt.date(2027, 6, 1))
    r = client.post("/console/groupbuy/community/compounds", data={"csrf_token": token, "name": "x",
                                                                   "households": "many"})
    assert r.status_code == 422
    page = client.get("/console/groupbuy/community")
    assert "阳光花园" in page.text and 'data-testid="coverage-table"' in page.text


def test_shop_wave_page_and_buying(client: TestClient, db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=100)
    near = make_leader(db, merchant=merchant, latitude=31.2301, longitude=121.4701)
    make_leader(db, merchant=merchant, latitude=35.0, longitude=110.0)  # far away
    wave = make_wave(db, merchant=merchant, items=[(sku, 700, 20, 2)])
    buyer = make_customer(db, merchant=merchant)
    token = shop_login(db, client, merchant, buyer)
    r = client.get(f"/shop/{merchant.slug}/wave/{wave.id}", params={"lat": "31.23", "lng": "121.47"})
    assert r.status_code == 200
    assert f'data-testid="point-{near.id}"' in r.text and r.text.count("o-choice") == 1
    # no point chosen: re-shown with what was typed
    r = client.post(f"/shop/{merchant.slug}/wave/{wave.id}/buy", data={"csrf_token": token, f"qty-{sku.id}": "2"})
    assert r.status_code == 422 and 'value="2"' in r.text
    r = client.post(f"/shop/{merchant.slug}/wave/{wave.id}/buy",
                    data={"csrf_token": token, f"qty-{sku.id}": "2", "leader_id": str(near.id)},
                    follow_redirects=False)
    assert r.status_code == 303 and "/orders/" in r.headers["location"]
    # the point is remembered and offered first
    r = client.get(f"/shop/{merchant.slug}/wave/{wave.id}")
    assert near.point_name in r.text
    # over the limit: refused with the reason
    r = client.post(f"/shop/{merchant.slug}/wave/{wave.id}/buy",
                    data={"csrf_token": token, f"qty-{sku.id}": "1", "leader_id": str(near.id)})
    assert r.status_code == 409
    assert client.get(f"/shop/{merchant.slug}/groupbuy").status_code == 200


def test_leader_application_with_photo_and_centre(client: TestClient, db: Session, merchant: Merchant) -> None:
    compound = make_compound(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant)
    token = shop_login(db, client, merchant, customer)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    r = client.post(f"/shop/{merchant.slug}/leader/apply", data={
        "csrf_token": token, "name": "陈阿姨", "phone": "13800001111", "point_name": "阳光超市",
        "address": "阳光路 1 号", "compound_id": str(compound.id), "latitude": "31.2", "longitude": "121.5",
        "opening_hours": "8-20"}, files={"photo": ("p.png", buffer.getvalue(), "image/png")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    leader = db.scalars(select(Leader).where(Leader.customer_id == customer.id)).one()
    assert (leader.status, leader.compound_name) == ("applied", compound.name)
    assert leader.photo_url.startswith(f"/media/{merchant.id}/")
    assert 'data-testid="application-status"' in client.get(f"/shop/{merchant.slug}/leader").text
    # a bad application keeps what was typed
    other = make_customer(db, merchant=merchant)
    token = shop_login(db, client, merchant, other)
    r = client.post(f"/shop/{merchant.slug}/leader/apply", data={"csrf_token": token, "name": "王", "phone": "1"})
    assert r.status_code == 422 and 'value="王"' in r.text


def test_leader_centre_shares_a_wave_with_the_leaders_own_link(client: TestClient, db: Session,
                                                               merchant: Merchant) -> None:
    leader = make_leader(db, merchant=merchant)
    wave = make_wave(db, merchant=merchant, items=[(make_sku(db, merchant=merchant), 500, 10)])
    shop_login(db, client, merchant, db.get(Customer, leader.customer_id))
    page = client.get(f"/shop/{merchant.slug}/leader", params={"view": "share"})
    assert page.status_code == 200 and wave.title in page.text
    code = re.search(r'/s/([0-9A-Za-z]+)"', page.text).group(1)
    from siyu.attribution.service import shares

    share = shares.share_by_code(db, merchant_id=merchant.id, code=code)
    assert (share.target_type, share.target_id, share.sharer_customer_id) == ("wave", wave.id, leader.customer_id)
    r = client.get(f"/s/{code}", follow_redirects=False)
    assert r.status_code in (302, 303, 307) and r.headers["location"].endswith(f"/shop/{merchant.slug}/wave/{wave.id}")
