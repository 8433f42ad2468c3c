"""Stored-value pages: console plans (create, edit, disable, errors re-shown), a customer's ledger
with an adjustment and a recharge refund; the H5 balance page and recharge redirect to the pay page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.membership.models.stored_value import Recharge, RechargePlan
from siyu.membership.service import stored_value as sv
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, make_merchant, make_staff, principal_of


@pytest.fixture(autouse=True)
def _installed() -> None:
    sv.install()


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf token on the page"
    return found.group(1)


def console_login(client: TestClient, staff) -> str:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return csrf(client.get("/console/membership/stored-value").text)


def test_console_plans_and_customer_ledger(client: TestClient, db: Session, merchant: Merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant, nickname="储值客")
    token = console_login(client, admin)
    # a bad plan: the typed values come back with the error
    r = client.post("/console/membership/stored-value/plans", data={"csrf_token": token, "name": "充500送50",
                                                                    "price": "abc", "bonus": "50"})
    assert r.status_code == 422 and 'value="充500送50"' in r.text
    # a good one
    r = client.post("/console/membership/stored-value/plans", data={"csrf_token": token, "name": "充500送50",
                                                                    "price": "500", "bonus": "50"},
                    follow_redirects=False)
    assert r.status_code == 303
    plan = db.scalars(select(RechargePlan).where(RechargePlan.merchant_id == merchant.id)).one()
    assert (plan.price_cents, plan.bonus_cents, plan.active) == (50000, 5000, True)
    # edit and disable
    assert client.get(f"/console/membership/stored-value/plans/{plan.id}").status_code == 200
    client.post(f"/console/membership/stored-value/plans/{plan.id}", data={"csrf_token": token, "name": "充500送60",
                                                                          "price": "500", "bonus": "60", "sort": "1"})
    client.post(f"/console/membership/stored-value/plans/{plan.id}/active", data={"csrf_token": token, "active": "0"})
    db.refresh(plan)
    assert (plan.name, plan.bonus_cents, plan.active) == ("充500送60", 6000, False)
    # a customer's page: adjust the bonus, then an overdraft of the principal is refused and shown
    r = client.post(f"/console/membership/stored-value/customers/{customer.id}/adjust",
                    data={"csrf_token": token, "account": "bonus", "amount": "12.5", "reason": "补偿", "key": "k1"},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post(f"/console/membership/stored-value/customers/{customer.id}/adjust",
                    data={"csrf_token": token, "account": "principal", "amount": "-1", "reason": "错"})
    assert r.status_code == 409 and 'value="错"' in r.text
    page = client.get(f"/console/membership/stored-value/customers/{customer.id}").text
    assert page.count('data-testid="sv-entry"') == 1 and "¥12.50" in page
    b = sv.balance_of(db, merchant_id=merchant.id, customer_id=customer.id)
    assert (b.principal_cents, b.bonus_cents) == (0, 1250)


def test_shop_balance_page_and_recharge(client: TestClient, db: Session, merchant: Merchant) -> None:
    admin = make_staff(db, merchant=merchant)
    plan = sv.create_plan(db, actor=principal_of(db, admin), name="充100送5", price_cents=10000, bonus_cents=500)
    customer = make_customer(db, merchant=merchant)
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    page = client.get(f"/shop/{merchant.slug}/me/balance")
    assert page.status_code == 200 and "充100送5" in page.text
    assert 'data-testid="my-balance"' in client.get(f"/shop/{merchant.slug}/me").text
    r = client.post(f"/shop/{merchant.slug}/me/balance/recharge", data={"csrf_token": csrf(page.text),
                                                                        "plan_id": str(plan.id)},
                    follow_redirects=False)
    assert r.status_code == 303 and re.search(rf"/shop/{merchant.slug}/pay/\d+$", r.headers["location"])
    row = db.scalars(select(Recharge).where(Recharge.customer_id == customer.id)).one()
    assert (row.status, row.principal_cents, row.bonus_cents) == ("pending", 10000, 500)
    # a plan that does not exist: the page again, with the error
    r = client.post(f"/shop/{merchant.slug}/me/balance/recharge", data={"csrf_token": csrf(page.text), "plan_id": "999999"})
    assert r.status_code == 422
