"""Ladder pages and routes: the console builder (tiers; errors re-shown), detail with orders and refunds,
actions; the H5 ladder page (tiers, participants, next tier, buy link); the admin and shop APIs."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.merchants.models import Merchant
from siyu.promotions.models.ladders import LadderCampaign
from siyu.promotions.service import ladders
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import make_sku, pay, place_order
from tests.factories.promotions import make_ladder
from tests.promotions.conftest import staff_sign_in


def test_console_builder_detail_and_settled_refunds(client: TestClient, db: Session, merchant: Merchant) -> None:
    token = staff_sign_in(client, db, merchant, "/console/promotions/ladders/new")
    sku = make_sku(db, merchant=merchant, price_cents=5000, title="大米")
    start = clock.now().astimezone(clock.SHANGHAI)
    form = {"csrf_token": token, "title": "大米阶梯价", "sku_id": str(sku.id),
            "tiers-0-min": "0", "tiers-0-price": "50", "tiers-1-min": "2", "tiers-1-price": "55",
            "starts_at": (start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}
    r = client.post("/console/promotions/ladders/new", data=form)
    assert r.status_code == 422 and 'data-testid="error-tiers"' in r.text and 'value="大米阶梯价"' in r.text
    r = client.post("/console/promotions/ladders/new", data={**form, "tiers-1-price": "40.50"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    campaign = db.scalars(select(LadderCampaign).where(LadderCampaign.merchant_id == merchant.id)).one()
    assert campaign.tiers == [{"min_participants": 0, "price_cents": 5000}, {"min_participants": 2, "price_cents": 4050}]
    assert client.post(f"/console/promotions/ladders/{campaign.id}/schedule", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    db.refresh(campaign)
    # two customers pay; the campaign ends and settles
    for i in range(2):
        order = place_order(db, customer=make_customer(db, merchant=merchant, nickname=f"买家{i}"),
                            items=[(sku.id, 1)], promotion={"kind": "ladder", "campaign_id": campaign.id})
        pay(db, order)
        db.commit()
    assert client.post(f"/console/promotions/ladders/{campaign.id}/end", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    assert ladders.settle_due(db, clock.now() + dt.timedelta(seconds=1)) == 2
    page = client.get(f"/console/promotions/ladders/{campaign.id}")
    assert page.status_code == 200
    assert "买家0" in page.text and 'data-testid="figure-refunded">¥19.00<' in page.text
    assert f'data-testid="ladder-row-{campaign.id}"' in client.get("/console/promotions/ladders").text


def test_h5_ladder_page(client: TestClient, db: Session, merchant: Merchant) -> None:
    campaign = make_ladder(db, merchant=merchant, tiers=((0, 10000), (3, 8000), (5, 6000)))
    page = client.get(f"/shop/{merchant.slug}/ladder/{campaign.id}")
    assert page.status_code == 200
    assert 'data-testid="ladder-price">¥100.00<' in page.text
    assert "3" in re.search(r'data-testid="next-tier">([^<]+)<', page.text).group(1)
    assert f"promo_kind=ladder&amp;promo_campaign_id={campaign.id}" in page.text
    draft = make_ladder(db, merchant=merchant, status="draft")
    assert client.get(f"/shop/{merchant.slug}/ladder/{draft.id}").status_code == 404
    assert client.get(f"/shop/{merchant.slug}/ladders").status_code == 200


def test_admin_and_shop_api(client: TestClient, db: Session, merchant: Merchant) -> None:
    admin = auth_headers(db, make_staff(db, merchant=merchant))
    sku = make_sku(db, merchant=merchant, price_cents=3000)
    now = clock.now()
    body = {"title": "API 阶梯", "sku_id": sku.id, "tiers": [{"min_participants": 0, "price_cents": 3000},
                                                              {"min_participants": 10, "price_cents": 2500}],
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat()}
    r = client.post("/api/v1/admin/ladders", headers=admin, json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    bad = {**body, "tiers": [{"min_participants": 0, "price_cents": 3000}, {"min_participants": 10, "price_cents": 3500}]}
    assert client.post("/api/v1/admin/ladders", headers=admin, json=bad).status_code == 422
    assert client.get(f"/api/v1/shop/{merchant.slug}/ladders/{cid}").status_code == 404  # a draft
    assert client.post(f"/api/v1/admin/ladders/{cid}/status", headers=admin,
                       json={"action": "schedule"}).json()["stored_status"] == "scheduled"
    shop = client.get(f"/api/v1/shop/{merchant.slug}/ladders/{cid}").json()
    assert (shop["current_price_cents"], shop["participants"], shop["next_tier"]["needed"]) == (3000, 0, 10)
    detail = client.get(f"/api/v1/admin/ladders/{cid}", headers=admin).json()
    assert detail["entries"] == [] and detail["figures"]["orders"] == 0
    other = make_merchant(db)
    assert client.get(f"/api/v1/admin/ladders/{cid}", headers=auth_headers(db, make_staff(db, merchant=other))
                      ).status_code == 404
    assert client.get(f"/api/v1/shop/{other.slug}/ladders/{cid}").status_code == 404
