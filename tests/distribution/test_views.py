"""The distribution pages: the console (programme, rules, distributors, commissions, withdrawals,
leaderboard, simulator) and the H5 distributor centre, driven as a browser would (forms, redirects)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.distribution import service
from siyu.distribution.models import CommissionRule, Withdrawal
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.distribution import make_distributor, make_rule, refer, run_events
from tests.factories.merchants import PASSWORD, make_staff
from tests.factories.orders import make_sku, pay, place_order


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/distribution").text)


def shop_login(db: Session, client: TestClient, merchant: Merchant, customer) -> str:
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    return csrf(client.get(f"/shop/{merchant.slug}/me").text)


def _settled_distributor(db: Session, merchant: Merchant):
    """B (recruited by A) with a settled ¥10 commission from a ¥100 order."""
    a = make_distributor(db, merchant=merchant, nickname="上级甲")
    b = make_distributor(db, merchant=merchant, upline=a, nickname="分销乙")
    make_rule(db, merchant=merchant, level=1, value=1000)
    order = place_order(db, customer=make_customer(db, merchant=merchant, nickname="顾客丙"),
                        items=[(make_sku(db, merchant=merchant, price_cents=10000), 1)])
    refer(db, order, b)
    pay(db, order)
    run_events(db)
    service.schedule_settlement(db, merchant_id=merchant.id, order_id=order.id,
                                closes_at=clock.now() - dt.timedelta(seconds=1))
    service.settle_due(db, clock.now())
    return a, b, order


def test_console_pages_and_actions(client: TestClient, db: Session, merchant: Merchant) -> None:
    staff = make_staff(db, merchant=merchant)
    a, b, order = _settled_distributor(db, merchant)
    token = console_login(client, staff)

    # every page renders
    for path in ("", "/rules", "/distributors", f"/distributors/{b.id}", f"/distributors/{a.id}", "/commissions",
                 f"/commissions?order_id={order.id}", "/withdrawals", "/leaderboard", "/simulator"):
        r = client.get(f"/console/distribution{path}")
        assert r.status_code == 200, (path, r.text[:500])
    assert "分销乙" in client.get(f"/console/distribution/distributors/{a.id}").text  # the team tree
    assert "¥10.00" in client.get(f"/console/distribution/commissions?order_id={order.id}").text

    # the programme form re-shows what was typed with the error beside the field
    r = client.post("/console/distribution/programme", data={
        "csrf_token": token, "enabled": "on", "enrolment_mode": "approval", "levels": "3", "min_withdrawal": "1",
        "daily_limit": "abc", "upline_changes": "1", "payout_method": "sandbox", "grades": "junior,初级,0,0"})
    assert r.status_code == 422 and 'value="abc"' in r.text
    r = client.post("/console/distribution/programme", data={
        "csrf_token": token, "enabled": "on", "enrolment_mode": "approval", "levels": "3", "min_withdrawal": "1",
        "daily_limit": "100", "upline_changes": "1", "payout_method": "sandbox", "grades": "junior,初级,0,0"})
    assert r.status_code == 422  # three levels without explicitly allowing a third
    assert service.get_programme(db, merchant_id=merchant.id).enrolment_mode == "anyone"
    r = client.post("/console/distribution/programme", data={
        "csrf_token": token, "enabled": "on", "enrolment_mode": "approval", "levels": "2", "min_withdrawal": "1",
        "daily_limit": "100", "upline_changes": "1", "payout_method": "sandbox",
        "grades": "junior,初级,0,0\nsenior,高级,1000,3"}, follow_redirects=False)
    assert r.status_code == 303
    p = service.get_programme(db, merchant_id=merchant.id)
    assert (p.enrolment_mode, p.daily_withdrawal_limit_cents, [g["code"] for g in p.grades]) == (
        "approval", 10000, ["junior", "senior"])

    # a rule typed as 7.5% is 750 bps; a draft is simulated next to the rules in force
    r = client.post("/console/distribution/rules", data={"csrf_token": token, "status": "draft", "audience":
                    "distributor", "level": "1", "scope": "default", "kind": "bps", "value": "7.5"},
                    follow_redirects=False)
    assert r.status_code == 303
    draft = db.scalars(select(CommissionRule).where(CommissionRule.merchant_id == merchant.id,
                                                    CommissionRule.status == "draft")).one()
    assert (draft.kind, draft.value) == ("bps", 750)
    r = client.get("/console/distribution/simulator?days=30")
    assert re.search(r'data-testid="sim-paid">¥10.00<', r.text) and re.search(r'data-testid="sim-projected">¥7.50<',
                                                                                 r.text)
    r = client.post("/console/distribution/rules", data={"csrf_token": token, "status": "active", "level": "1",
                                                         "scope": "product", "kind": "bps", "value": "5"})
    assert r.status_code == 422 and "id" in r.text.lower()

    # freeze from the detail page
    r = client.post(f"/console/distribution/distributors/{a.id}/status", data={"csrf_token": token,
                                                                               "status": "frozen"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(a)
    assert a.status == "frozen"


def test_shop_centre_join_withdraw_and_review(client: TestClient, db: Session, merchant: Merchant) -> None:
    staff = make_staff(db, merchant=merchant)
    a, b, _ = _settled_distributor(db, merchant)
    slug = merchant.slug

    # a new customer opens A's invitation and joins
    newbie = make_customer(db, merchant=merchant, nickname="新人丁")
    token = shop_login(db, client, merchant, newbie)
    r = client.get(f"/shop/{slug}/distribution?invite={a.invite_code}")
    assert "上级甲" in r.text and a.invite_code in r.text, r.text[r.text.find("<main"):][:1500]
    r = client.post(f"/shop/{slug}/distribution/join", data={"csrf_token": token, "invite_code": a.invite_code},
                    follow_redirects=False)
    assert r.status_code == 303
    d = service.of_customer(db, merchant_id=merchant.id, customer_id=newbie.id)
    assert (d.status, d.upline_id) == ("active", a.id)

    # B sees the centre and withdraws; a too-large amount is refused with the amount kept
    client.cookies.clear()
    token = shop_login(db, client, merchant, db.get(type(newbie), b.customer_id))
    r = client.get(f"/shop/{slug}/distribution")
    assert 'data-testid="dc-withdrawable">¥10.00<' in r.text
    for path in ("/team", "/customers", "/orders", "/share", "/withdraw"):
        r = client.get(f"/shop/{slug}/distribution{path}")
        assert r.status_code == 200, path
    assert "顾客丙" in client.get(f"/shop/{slug}/distribution/customers").text
    share_page = client.get(f"/shop/{slug}/distribution/share").text
    assert b.invite_code in share_page and "<svg" in share_page
    assert client.get(f"/shop/{slug}/share?target_type=page&target_id=0").status_code == 200
    r = client.post(f"/shop/{slug}/distribution/withdraw", data={"csrf_token": token, "amount": "10.01"})
    assert r.status_code == 409 and 'value="10.01"' in r.text
    assert db.scalar(select(Withdrawal.id).where(Withdrawal.distributor_id == b.id)) is None
    r = client.post(f"/shop/{slug}/distribution/withdraw", data={"csrf_token": token, "amount": "6"},
                    follow_redirects=False)
    assert r.status_code == 303
    w = db.scalars(select(Withdrawal).where(Withdrawal.distributor_id == b.id)).one()
    assert (w.amount_cents, w.status) == (600, "requested")

    # staff reject it with a reason: the money is back
    client.cookies.clear()
    ctoken = console_login(client, staff)
    r = client.post(f"/console/distribution/withdrawals/{w.id}/reject", data={"csrf_token": ctoken,
                                                                              "reason": "信息不全"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(w)
    assert (w.status, w.reason) == ("rejected", "信息不全")
    assert service.accounts.balances(db, merchant_id=merchant.id, owner_type="distributor",
                                     owner_id=b.id).settled_cents == 1000


def test_a_visitor_is_sent_to_sign_in(client: TestClient, db: Session, merchant: Merchant) -> None:
    r = client.get(f"/shop/{merchant.slug}/distribution", follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
