"""Team purchase over HTTP: the staff API (CRUD, actions, figures, teams), the shop API, refusals
with 4xx codes, and an end-to-end team of three formed through share links and sandbox payments."""

from __future__ import annotations

import datetime as dt
import itertools

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Role
from siyu.merchants.models import Merchant
from siyu.promotions.models.team_buys import TeamBuyCampaign
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku
from tests.factories.promotions import make_team_buy

_keys = itertools.count(1)


def body(sku_id: int, **over) -> dict:
    now = clock.now()
    data = {"title": "三人团", "skus": [{"sku_id": sku_id, "team_price_cents": 800}], "team_size": 3,
            "time_limit_minutes": 1440, "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=3)).isoformat()}
    data.update(over)
    return data


def test_staff_crud_actions_and_figures(db: Session, client: TestClient, merchant: Merchant) -> None:
    # given a brand admin and a SKU
    headers = auth_headers(db, make_staff(db, merchant=merchant))
    sku = make_sku(db, merchant=merchant, price_cents=1000)
    # when they create a campaign
    created = client.post("/api/v1/admin/team-buys", json=body(sku.id), headers=headers)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["team_size"], campaign["on_full"], campaign["allow_coupons"]) == (
        "draft", 3, "refund", False)
    assert campaign["skus"] == [{"sku_id": sku.id, "team_price_cents": 800}]
    cid = campaign["id"]
    # edit, schedule, pause, resume
    patched = client.patch(f"/api/v1/admin/team-buys/{cid}", json=body(sku.id, team_size=5, on_full="new_team"),
                           headers=headers)
    assert (patched.json()["team_size"], patched.json()["on_full"]) == (5, "new_team")
    lucky = client.patch(f"/api/v1/admin/team-buys/{cid}", json=body(sku.id, team_size=5, on_full="new_team",
                                                                     lucky_draw=True, lucky_winners=2), headers=headers)
    assert (lucky.json()["lucky_draw"], lucky.json()["lucky_winners"]) == (True, 2)
    scheduled = client.post(f"/api/v1/admin/team-buys/{cid}/schedule", headers=headers).json()
    assert (scheduled["status"], scheduled["effective_status"]) == ("scheduled", "active")
    assert client.post(f"/api/v1/admin/team-buys/{cid}/pause", headers=headers).json()["status"] == "paused"
    again = client.post(f"/api/v1/admin/team-buys/{cid}/pause", headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    assert client.post(f"/api/v1/admin/team-buys/{cid}/resume", headers=headers).json()["status"] == "scheduled"
    # the list carries the figures
    listed = client.get("/api/v1/admin/team-buys", headers=headers).json()
    assert [c["id"] for c in listed["items"]] == [cid]
    assert listed["items"][0]["figures"] == {"participants": 0, "orders": 0, "gmv_cents": 0, "refunded_orders": 0,
                                             "forming": 0, "complete": 0, "failed": 0}
    assert client.get(f"/api/v1/admin/team-buys/{cid}/teams", headers=headers).json() == {"items": [],
                                                                                          "next_cursor": None}
    assert client.post(f"/api/v1/admin/team-buys/{cid}/end", headers=headers).json()["status"] == "ended"


def test_staff_refusals(db: Session, client: TestClient, merchant: Merchant) -> None:
    headers = auth_headers(db, make_staff(db, merchant=merchant))
    sku = make_sku(db, merchant=merchant)
    other = make_merchant(db)
    foreign = make_team_buy(db, merchant=other)
    foreign_sku = make_sku(db, merchant=other)
    # another merchant's campaign is not found
    for path in (f"/api/v1/admin/team-buys/{foreign.id}", f"/api/v1/admin/team-buys/{foreign.id}/teams"):
        response = client.get(path, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "team_buy_not_found")
    # bad input: 422, never 500
    for bad in (body(sku.id, team_size=1), body(sku.id, team_size=51), body(sku.id, skus=[]),
                body(sku.id, ends_at=clock.now().isoformat(), starts_at=clock.now().isoformat()),
                body(sku.id, on_full="lottery"), body(foreign_sku.id), body(2**53 + 1),
                body(sku.id, lucky_draw=True), body(sku.id, lucky_draw=True, lucky_winners=3)):
        response = client.post("/api/v1/admin/team-buys", json=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)
    assert client.post(f"/api/v1/admin/team-buys/{2**60}/pause", headers=headers).status_code == 422
    assert client.post("/api/v1/admin/team-buys/1/explode", headers=headers).status_code == 422
    # a guide may not manage campaigns; nobody signed out may either
    guide = auth_headers(db, make_staff(db, merchant=merchant, role=Role.GUIDE))
    assert client.post("/api/v1/admin/team-buys", json=body(sku.id), headers=guide).status_code == 403
    assert client.get("/api/v1/admin/team-buys").status_code == 401
    assert db.scalars(select(TeamBuyCampaign).where(TeamBuyCampaign.merchant_id == merchant.id)).first() is None


def _buy(client: TestClient, slug: str, headers: dict, sku_id: int, promotion: dict,
         share_code: str | None = None) -> dict:
    key = f"tb-{next(_keys)}"
    extra = {"promotion": promotion, **({"share_code": share_code} if share_code else {})}
    order = client.post(f"/api/v1/shop/{slug}/orders", json=checkout_body([(sku_id, 1)], **extra),
                        headers={**headers, "Idempotency-Key": key})
    assert order.status_code == 201, order.text
    pay = client.post(f"/api/v1/shop/{slug}/orders/{order.json()['id']}/pay", json={"method": "sandbox"},
                      headers={**headers, "Idempotency-Key": key + "-pay"})
    assert pay.status_code == 200, pay.text
    confirm = client.post(pay.json()["sandbox_confirm_url"], headers=headers)
    assert confirm.status_code == 200, confirm.text
    return order.json()


def test_e2e_a_team_of_three_forms_through_share_links(db: Session, client: TestClient, merchant: Merchant) -> None:
    # given a running campaign (team of 3 at ¥8.00) and three customers
    campaign = make_team_buy(db, merchant=merchant, team_size=3, team_price_cents=800, price_cents=1000)
    sku_id = client.get(f"/api/v1/shop/{merchant.slug}/team-buys/{campaign.id}").json()["skus"][0]["sku_id"]
    leader, amy, bob = (make_customer(db, merchant=merchant, nickname=n) for n in ("阿花", "小美", "阿博"))
    lh, ah, bh = (customer_headers(db, c) for c in (leader, amy, bob))
    db.commit()
    # when the leader opens a team and pays in the sandbox
    first = _buy(client, merchant.slug, lh, sku_id, {"kind": "team_buy", "campaign_id": campaign.id})
    assert first["total_cents"] == 800
    shown = client.get(f"/api/v1/shop/{merchant.slug}/team-buys/{campaign.id}").json()
    assert [(t["paid_count"], t["seats_left"], t["members"][0]["nickname"]) for t in shown["open_teams"]] == [
        (1, 2, "阿花")]
    team_id = shown["open_teams"][0]["id"]
    # and shares the team
    share = client.post(f"/api/v1/shop/{merchant.slug}/shares", json={"target_type": "team", "target_id": team_id},
                        headers=lh)
    assert share.status_code == 200, share.text
    code = share.json()["code"]
    landing = client.get(f"/s/{code}", follow_redirects=False)
    assert landing.headers["location"].endswith(f"/shop/{merchant.slug}/team/{team_id}")
    # then two friends join through it and pay
    joined = {"kind": "team_buy", "campaign_id": campaign.id, "team_id": team_id}
    _buy(client, merchant.slug, ah, sku_id, joined, share_code=code)
    mid = client.get(f"/api/v1/shop/{merchant.slug}/teams/{team_id}", headers=ah).json()
    assert (mid["status"], mid["paid_count"], mid["my_status"]) == ("forming", 2, "paid")
    # a second try by the same friend is refused
    again = client.post(f"/api/v1/shop/{merchant.slug}/checkout/preview",
                        json=checkout_body([(sku_id, 1)], promotion=joined), headers=ah)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "team_already_joined")
    last = _buy(client, merchant.slug, bh, sku_id, joined, share_code=code)
    # then the team is complete, everyone sees it, and the order carries the sharer
    done = client.get(f"/api/v1/shop/{merchant.slug}/teams/{team_id}", headers=lh).json()
    assert (done["status"], done["paid_count"], done["seats_left"]) == ("complete", 3, 0)
    assert [m["nickname"] for m in done["members"]] == ["阿花", "小美", "阿博"]
    assert done["members"][0]["is_leader"] is True
    order = client.get(f"/api/v1/shop/{merchant.slug}/orders/{last['id']}", headers=bh).json()
    assert order["status"] == "paid"
    assert order["attribution"]["sharer_customer_id"] == leader.id
    full = client.post(f"/api/v1/shop/{merchant.slug}/checkout/preview",
                       json=checkout_body([(sku_id, 1)], promotion=joined), headers=customer_headers(
                           db, make_customer(db, merchant=merchant)))
    assert (full.status_code, full.json()["error"]["code"]) == (409, "team_full")


def test_shop_refusals(db: Session, client: TestClient, merchant: Merchant) -> None:
    draft = make_team_buy(db, merchant=merchant, status="draft")
    other = make_team_buy(db, merchant=make_merchant(db))
    for path in (f"team-buys/{draft.id}", f"team-buys/{other.id}", f"teams/{2**40}", "team-buys/0", "teams/abc"):
        response = client.get(f"/api/v1/shop/{merchant.slug}/{path}")
        assert response.status_code in (404, 422), path
        assert response.status_code != 500
