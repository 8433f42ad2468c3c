"""Team-buy pages: the console (list with figures, builder with errors re-shown, detail with teams,
actions) and the H5 (campaign page with open teams, team page, the paid order's link back to its team)."""

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
from siyu.promotions.models.team_buys import Team, TeamBuyCampaign, TeamMember
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import make_sku, pay
from tests.factories.promotions import make_team_buy, team_buy_order
from tests.promotions.conftest import staff_sign_in


def console_login(client: TestClient, db: Session, merchant) -> str:  # type: ignore[no-untyped-def]
    return staff_sign_in(client, db, merchant, "/console/promotions/team-buys/new")


def test_console_builder_detail_and_actions(client: TestClient, db: Session, merchant: Merchant) -> None:
    token = console_login(client, db, merchant)
    sku = make_sku(db, merchant=merchant, price_cents=2000, title="蜂蜜")
    start = clock.now().astimezone(clock.SHANGHAI)
    form = {"csrf_token": token, "title": "蜂蜜三人团", "skus-0-sku_id": str(sku.id), "skus-0-price": "15.80",
            "team_size": "1", "time_limit_hours": "24", "starts_at": (start - dt.timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M"), "ends_at": (start + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "on_full": "new_team"}
    # a wrong team size is shown beside the field, with what was typed kept
    r = client.post("/console/promotions/team-buys/new", data=form)
    assert r.status_code == 422
    assert 'data-testid="error-team_size"' in r.text and 'value="15.80"' in r.text and 'value="蜂蜜三人团"' in r.text
    assert db.scalars(select(TeamBuyCampaign).where(TeamBuyCampaign.merchant_id == merchant.id)).first() is None
    # so is a lucky draw with as many winners as the team has people
    r = client.post("/console/promotions/team-buys/new", data={**form, "team_size": "3", "lucky_draw": "1",
                                                               "lucky_winners": "3"})
    assert r.status_code == 422 and 'data-testid="error-lucky_winners"' in r.text
    # a good form creates a draft
    r = client.post("/console/promotions/team-buys/new", data={**form, "team_size": "3"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    campaign = db.scalars(select(TeamBuyCampaign).where(TeamBuyCampaign.merchant_id == merchant.id)).one()
    assert (campaign.title, campaign.team_size, campaign.time_limit_minutes, campaign.on_full, campaign.status) == (
        "蜂蜜三人团", 3, 1440, "new_team", "draft")
    # schedule it from the detail page
    r = client.post(f"/console/promotions/team-buys/{campaign.id}/schedule", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(campaign)
    assert campaign.status == "scheduled"
    # a paid team shows in the detail and the list's figures
    leader = make_customer(db, merchant=merchant, nickname="阿花")
    order = team_buy_order(db, customer=leader, campaign=campaign)
    pay(db, order)
    db.commit()
    page = client.get(f"/console/promotions/team-buys/{campaign.id}")
    assert page.status_code == 200
    assert "阿花" in page.text and 'data-testid="teams-table"' in page.text
    listed = client.get("/console/promotions/team-buys")
    assert f'data-testid="team-buy-row-{campaign.id}"' in listed.text
    # an action that is not allowed says so
    r = client.post(f"/console/promotions/team-buys/{campaign.id}/resume", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "error=" in r.headers["location"]
    # editing keeps the campaign
    edit = client.get(f"/console/promotions/team-buys/{campaign.id}/edit")
    assert 'value="15.80"' in edit.text


def test_shop_campaign_team_and_order_pages(client: TestClient, db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant, team_size=3, team_price_cents=800, price_cents=1000)
    leader = make_customer(db, merchant=merchant, nickname="阿花")
    order = team_buy_order(db, customer=leader, campaign=campaign)
    pay(db, order)
    db.commit()
    team_id = db.scalars(select(TeamMember.team_id).where(TeamMember.order_id == order.id)).one()
    # anyone sees the campaign with the open team
    r = client.get(f"/shop/{merchant.slug}/team-buy/{campaign.id}")
    assert r.status_code == 200
    assert f'data-testid="open-team-{team_id}"' in r.text and "¥8.00" in r.text and "阿花" in r.text
    assert "promo_kind=team_buy" in r.text
    # the team page: progress and a join button carrying the team to checkout
    r = client.get(f"/shop/{merchant.slug}/team/{team_id}")
    assert r.status_code == 200
    assert re.search(r'data-testid="team-progress">1/3<', r.text)
    assert f"promo_team_id={team_id}" in r.text
    # the leader's paid order links back to the team
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, leader))
    r = client.get(f"/shop/{merchant.slug}/orders/{order.id}")
    assert f'href="/shop/{merchant.slug}/team/{team_id}"' in r.text
    # the leader sees no join button on their own team
    r = client.get(f"/shop/{merchant.slug}/team/{team_id}")
    assert 'data-testid="join-team"' not in r.text and 'data-testid="my-place"' in r.text
    # unknown, draft or foreign: 404
    draft = make_team_buy(db, merchant=merchant, status="draft")
    other = make_team_buy(db, merchant=make_merchant(db))
    for path in (f"team-buy/{draft.id}", f"team-buy/{other.id}", f"team/{2**40}"):
        assert client.get(f"/shop/{merchant.slug}/{path}").status_code == 404
    assert db.get(Team, team_id).status == "forming"
