"""Split-coupon pages and API: the console builder and figures, the H5 campaign and pool pages (open, share, join,
the coupons once split), and the REST routes."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.merchants.models import Merchant
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.split_coupons import SplitCampaign, SplitPool
from siyu.promotions.service import split_coupons as service
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, auth_headers, make_merchant, make_staff
from tests.factories.orders import customer_headers, customer_principal
from tests.factories.promotions import make_coupon_template, make_split_campaign


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def console_login(client: TestClient, db: Session, merchant: Merchant) -> str:
    staff = make_staff(db, merchant=merchant)
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/promotions/split-coupons/new").text)


def local(value: dt.datetime) -> str:
    return value.astimezone(clock.SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def test_console_builder_publish_and_figures(client: TestClient, db: Session) -> None:
    # given
    merchant = make_merchant(db)
    template = make_coupon_template(db, merchant=merchant, name="瓜分券", channels=["split"], per_customer_limit=10)
    token = console_login(client, db, merchant)
    now = clock.now()
    form = {"csrf_token": token, "name": "三人瓜分 30 元", "template_id": str(template.id), "pool_amount": "30",
            "team_size": "3", "split_mode": "random", "floor": "12", "fill_minutes": "60",
            "max_opens_per_customer": "1", "max_joins_per_customer": "0",
            "starts_at": local(now - dt.timedelta(hours=1)), "ends_at": local(now + dt.timedelta(days=3))}
    # when: the floor is too high, the form comes back with what was typed
    r = client.post("/console/promotions/split-coupons/new", data=form)
    assert r.status_code == 422
    assert 'data-testid="error-floor"' in r.text
    assert 'value="三人瓜分 30 元"' in r.text
    assert db.scalar(select(SplitCampaign.id)) is None
    # when: fixed, saved and published
    r = client.post("/console/promotions/split-coupons/new", data={**form, "floor": "5"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    campaign = db.scalars(select(SplitCampaign)).one()
    assert (campaign.pool_amount_cents, campaign.floor_cents, campaign.split_mode, campaign.status) == \
        (3000, 500, "random", "draft")
    r = client.post(f"/console/promotions/split-coupons/{campaign.id}/publish", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(campaign)
    assert campaign.status == "live"
    # then: a filled pool shows in the figures
    a, b, c = (make_customer(db, merchant=merchant) for _ in range(3))
    pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    for x in (b, c):
        service.join_pool(db, actor=customer_principal(x), pool_id=pool.id)
    page = client.get("/console/promotions/split-coupons")
    assert f'data-testid="split-filled-{campaign.id}">1<' in page.text
    detail = client.get(f"/console/promotions/split-coupons/{campaign.id}")
    assert detail.status_code == 200 and "¥30.00" in detail.text
    assert f"/shop/{merchant.slug}/split-campaigns/{campaign.id}" in detail.text
    # another merchant's campaign is not found
    other = make_split_campaign(db, merchant=make_merchant(db))
    assert client.get(f"/console/promotions/split-coupons/{other.id}").status_code == 404


def test_h5_open_share_join_and_see_coupons(client: TestClient, db: Session) -> None:
    # given: a live campaign of ¥9.00 for 2
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, pool_amount_cents=900, team_size=2)
    opener, friend = make_customer(db, merchant=merchant, nickname="开团人"), make_customer(db, merchant=merchant,
                                                                                          nickname="好友")
    # when: the opener opens a pool from the campaign page
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, opener))
    page = client.get(f"/shop/{merchant.slug}/split-campaigns/{campaign.id}")
    assert 'data-testid="open-pool"' in page.text
    r = client.post(f"/shop/{merchant.slug}/split-campaigns/{campaign.id}/open", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    pool = db.scalars(select(SplitPool)).one()
    assert r.headers["location"] == f"/shop/{merchant.slug}/split/{pool.id}"
    page = client.get(r.headers["location"])
    share = re.search(r'data-testid="share-url"', page.text)
    assert share and "1/2" in page.text
    code = re.search(r"/s/([0-9A-Za-z]+)", page.text).group(1)
    # then: the friend follows the share link and joins
    client.cookies.clear()
    r = client.get(f"/s/{code}", follow_redirects=False)
    assert r.headers["location"].endswith(f"/shop/{merchant.slug}/split/{pool.id}")
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, friend))
    page = client.get(f"/shop/{merchant.slug}/split/{pool.id}")
    assert 'data-testid="join-pool"' in page.text
    r = client.post(f"/shop/{merchant.slug}/split/{pool.id}/join", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?ok=joined")
    page = client.get(r.headers["location"])
    assert 'data-testid="my-part"' in page.text and "¥4.50" in page.text
    assert [(c.customer_id, c.amount_cents) for c in db.scalars(select(Coupon).order_by(Coupon.id))] == \
        [(opener.id, 450), (friend.id, 450)]
    # a late friend is told the pool is full
    late = make_customer(db, merchant=merchant)
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, late))
    page = client.get(f"/shop/{merchant.slug}/split/{pool.id}")
    assert 'data-testid="join-pool"' not in page.text


def test_api_admin_and_shop_routes(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    staff = make_staff(db, merchant=merchant)
    template = make_coupon_template(db, merchant=merchant, channels=["split"], per_customer_limit=10)
    headers = auth_headers(db, staff)
    now = clock.now()
    body = {"name": "API 瓜分", "template_id": template.id, "pool_amount_cents": 1000, "team_size": 2,
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat()}
    r = client.post("/api/v1/admin/split-coupon-campaigns", json=body, headers=headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post(f"/api/v1/admin/split-coupon-campaigns/{cid}/status", json={"action": "publish"},
                       headers=headers).json()["status"] == "live"
    a, b = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    r = client.post(f"/api/v1/shop/{merchant.slug}/split-pools", json={"campaign_id": cid},
                    headers=customer_headers(db, a))
    assert r.status_code == 201 and r.json()["seats_left"] == 1
    pid = r.json()["id"]
    r = client.post(f"/api/v1/shop/{merchant.slug}/split-pools/{pid}/join", headers=customer_headers(db, b))
    assert r.status_code == 200 and r.json()["status"] == "filled"
    mine = [m for m in r.json()["members"] if m["is_me"]]
    assert mine[0]["part_cents"] == 500 and mine[0]["coupon_id"]
    r = client.post(f"/api/v1/shop/{merchant.slug}/split-pools/{pid}/join", headers=customer_headers(db, b))
    assert r.status_code == 409 and r.json()["error"]["code"] == "split_already_joined"
    listed = client.get("/api/v1/admin/split-coupon-campaigns", headers=headers).json()["items"]
    assert listed[0]["figures"]["filled"] == 1
    assert client.get(f"/api/v1/admin/split-coupon-campaigns/{cid}/pools", headers=headers).json()["items"][0][
        "members_count"] == 2
    assert client.get(f"/api/v1/shop/{merchant.slug}/split-pools/99999999").status_code == 404
    bad = client.post("/api/v1/admin/split-coupon-campaigns", json={**body, "team_size": 1}, headers=headers)
    assert bad.status_code == 422


def test_h5_list_of_running_campaigns(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    live = make_split_campaign(db, merchant=merchant, name="正在瓜分")
    draft = make_split_campaign(db, merchant=merchant, name="草稿活动", publish=False)
    page = client.get(f"/shop/{merchant.slug}/split-campaigns")
    assert f'data-testid="split-campaign-{live.id}"' in page.text
    assert f'data-testid="split-campaign-{draft.id}"' not in page.text
    assert client.get(f"/shop/{merchant.slug}/split-campaigns/{draft.id}").status_code == 404
