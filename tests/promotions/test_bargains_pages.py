"""Bargain pages and routes: the console builder (errors re-shown), detail with bargains and assists,
actions; the H5 campaign page (start), the bargain page (help cut, buy now, login needed to help);
the admin and shop APIs, including 404 across merchants and 401 for anonymous assists."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.merchants.models import Merchant
from siyu.promotions.models.bargains import Bargain, BargainCampaign
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import customer_headers, make_sku
from tests.factories.promotions import make_bargain_campaign
from tests.promotions.conftest import csrf, staff_sign_in


def test_console_builder_detail_and_actions(client: TestClient, db: Session, merchant: Merchant) -> None:
    token = staff_sign_in(client, db, merchant, "/console/promotions/bargains/new")
    sku = make_sku(db, merchant=merchant, price_cents=9900, title="电饭煲")
    start = clock.now().astimezone(clock.SHANGHAI)
    form = {"csrf_token": token, "title": "砍价拿电饭煲", "sku_id": str(sku.id), "start_price": "99.00",
            "floor_price": "120", "expected_assists": "3", "time_limit_minutes": "1440",
            "max_bargains_per_customer": "1", "new_customer_weight": "1.5",
            "starts_at": (start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"), "allow_buy_at_current": "1"}
    # a floor above the start is shown beside its field, what was typed kept
    r = client.post("/console/promotions/bargains/new", data=form)
    assert r.status_code == 422
    assert 'data-testid="error-floor_price"' in r.text and 'value="砍价拿电饭煲"' in r.text
    assert db.scalars(select(BargainCampaign).where(BargainCampaign.merchant_id == merchant.id)).first() is None
    r = client.post("/console/promotions/bargains/new", data={**form, "floor_price": "9.90"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    campaign = db.scalars(select(BargainCampaign).where(BargainCampaign.merchant_id == merchant.id)).one()
    assert (campaign.start_price_cents, campaign.floor_price_cents, campaign.expected_assists,
            campaign.new_customer_weight_bps, campaign.status) == (9900, 990, 3, 15000, "draft")
    assert client.post(f"/console/promotions/bargains/{campaign.id}/schedule", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    db.refresh(campaign)
    assert campaign.status == "scheduled"
    # an action not allowed now comes back as an error
    r = client.post(f"/console/promotions/bargains/{campaign.id}/resume", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "error=" in r.headers["location"]
    # a bargain with an assist shows in the detail and the list
    from siyu.promotions.service import bargains
    from tests.factories.orders import customer_principal

    starter = make_customer(db, merchant=merchant, nickname="阿强")
    friend = make_customer(db, merchant=merchant, nickname="小美")
    b = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=7)
    bargains.assist(db, actor=customer_principal(friend), bargain_id=b.id)
    page = client.get(f"/console/promotions/bargains/{campaign.id}")
    assert page.status_code == 200
    assert "阿强" in page.text and "小美" in page.text and 'data-testid="campaign-qr"' in page.text
    assert 'data-testid="figure-assists">1<' in page.text
    listed = client.get("/console/promotions/bargains")
    assert f'data-testid="bargain-campaign-row-{campaign.id}"' in listed.text
    assert client.get(f"/console/promotions/bargains/{campaign.id}/edit").status_code == 200
    # another merchant's campaign is not found
    other = make_bargain_campaign(db, merchant=make_merchant(db))
    assert client.get(f"/console/promotions/bargains/{other.id}").status_code == 404


def test_h5_start_help_and_buy(client: TestClient, db: Session, merchant: Merchant) -> None:
    campaign = make_bargain_campaign(db, merchant=merchant, start_price_cents=5000, floor_price_cents=1000,
                                     expected_assists=2)
    starter = make_customer(db, merchant=merchant, nickname="发起人")
    friend = make_customer(db, merchant=merchant, nickname="帮砍好友")
    slug = merchant.slug
    # the starter starts from the campaign page
    client.cookies.set(cookie_name(slug), issue_customer_token(db, starter))
    page = client.get(f"/shop/{slug}/bargain-campaign/{campaign.id}")
    assert page.status_code == 200 and 'data-testid="start-bargain"' in page.text
    r = client.post(f"/shop/{slug}/bargain-campaign/{campaign.id}/start", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    bargain = db.scalars(select(Bargain).where(Bargain.customer_id == starter.id)).one()
    assert r.headers["location"] == f"/shop/{slug}/bargain/{bargain.id}"
    mine = client.get(f"/shop/{slug}/bargain/{bargain.id}")
    assert 'data-testid="share-bargain"' in mine.text and 'data-testid="help-cut"' not in mine.text
    assert f"promo_bargain_id={bargain.id}" in mine.text  # buy now at the current price
    # an anonymous visitor sees "help cut" and is sent to sign in
    client.cookies.clear()
    anon = client.get(f"/shop/{slug}/bargain/{bargain.id}")
    assert 'data-testid="help-cut"' in anon.text and "siyu_did" in anon.headers.get("set-cookie", "")
    r = client.post(f"/shop/{slug}/bargain/{bargain.id}/assist", data={}, follow_redirects=False)
    assert r.status_code in (303, 302) and "/login" in r.headers["location"]
    # a signed-in friend helps once
    client.cookies.set(cookie_name(slug), issue_customer_token(db, friend))
    page = client.get(f"/shop/{slug}/bargain/{bargain.id}")
    r = client.post(f"/shop/{slug}/bargain/{bargain.id}/assist", data={"csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    db.refresh(bargain)
    cut = 5000 - bargain.current_price_cents
    assert bargain.assists_count == 1 and r.headers["location"].endswith(f"?ok=helped&cut={cut}")
    again = client.post(f"/shop/{slug}/bargain/{bargain.id}/assist", data={"csrf_token": csrf(page.text)})
    assert again.status_code == 409 and 'data-testid="helped"' in again.text
    assert "帮砍好友" in client.get(f"/shop/{slug}/bargain/{bargain.id}").text
    assert client.get(f"/shop/{slug}/bargains").status_code == 200


def test_admin_and_shop_api(client: TestClient, db: Session, merchant: Merchant) -> None:
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    now = clock.now()
    body = {"title": "API 砍价", "sku_id": sku.id, "start_price_cents": 3000, "floor_price_cents": 100,
            "expected_assists": 2, "time_limit_minutes": 120, "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=1)).isoformat()}
    r = client.post("/api/v1/admin/bargains", headers=admin, json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post("/api/v1/admin/bargains", headers=admin, json={**body, "floor_price_cents": 3000}).status_code == 422
    assert client.post(f"/api/v1/admin/bargains/{cid}/status", headers=admin,
                       json={"action": "schedule"}).json()["status"] == "scheduled"
    assert client.post(f"/api/v1/admin/bargains/{cid}/status", headers=admin,
                       json={"action": "resume"}).status_code == 409
    starter = make_customer(db, merchant=merchant)
    friend = make_customer(db, merchant=merchant)
    shop = f"/api/v1/shop/{merchant.slug}/bargains"
    r = client.post(shop, headers=customer_headers(db, starter), json={"campaign_id": cid})
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    assert (r.json()["current_price_cents"], r.json()["can_buy"], r.json()["mine"]) == (3000, True, True)
    # anonymous assists are refused; a friend's is applied
    assert client.post(f"{shop}/{bid}/assists").status_code == 401
    r = client.post(f"{shop}/{bid}/assists", headers={**customer_headers(db, friend), "X-Device-Id": "phone-1"})
    assert r.status_code == 201, r.text
    assert r.json()["bargain"]["assists_count"] == 1
    assert r.json()["price_after_cents"] == 3000 - r.json()["cut_cents"]
    assert client.get(f"{shop}/{bid}").json()["assists"][0]["cut_cents"] == r.json()["cut_cents"]
    detail = client.get(f"/api/v1/admin/bargains/{cid}", headers=admin).json()
    assert detail["figures"]["assists"] == 1 and detail["bargains"][0]["assists"][0]["helper_customer_id"] == friend.id
    assert client.get(f"/api/v1/shop/{merchant.slug}/bargain-campaigns").json()["items"][0]["id"] == cid
    # other merchants see nothing
    other = make_merchant(db)
    assert client.get(f"/api/v1/admin/bargains/{cid}", headers=auth_headers(db, make_staff(db, merchant=other))
                      ).status_code == 404
    assert client.get(f"/api/v1/shop/{other.slug}/bargains/{bid}").status_code == 404
    assert client.get(f"{shop}/99999999999").status_code == 404
