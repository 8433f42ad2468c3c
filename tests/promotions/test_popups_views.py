"""Pop-up pages: the slot on every H5 page (a visitor sees it on the home page, it stays cheap without rules, a
failing slot never breaks the page), dismiss / link / claim routes, the console builder and the API."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.templating import _slots, register_slot, render_slot
from siyu.customers.deps import VISITOR_COOKIE, cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.popups import PopupEvent, PopupRule
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, auth_headers, make_merchant, make_staff
from tests.factories.orders import customer_headers
from tests.factories.promotions import make_coupon_template, make_popup_rule

VISITOR = "visitor-0123456789"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_visitor_sees_the_popup_on_home_then_dismisses_it(client: TestClient, db: Session) -> None:
    # given: a link pop-up for new visitors on the home page
    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant, audience="new_visitor", pages="home", title="新人专享",
                           link_url=f"/shop/{merchant.slug}/search", cap_per_day=3)
    client.cookies.set(VISITOR_COOKIE, VISITOR)
    # when
    home = client.get(f"/shop/{merchant.slug}/")
    # then
    assert home.status_code == 200
    assert 'data-testid="popup"' in home.text and "新人专享" in home.text
    assert 'data-testid="popup"' not in client.get(f"/shop/{merchant.slug}/search").text  # home only
    r = client.get(f"/shop/{merchant.slug}/popups/{rule.id}/go", follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/search"
    r = client.post(f"/shop/{merchant.slug}/popups/{rule.id}/dismiss", data={"next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/shop/{merchant.slug}/"
    assert 'data-testid="popup"' not in client.get(f"/shop/{merchant.slug}/").text
    kinds = sorted(db.scalars(select(PopupEvent.kind).where(PopupEvent.visitor_id == VISITOR)))
    assert kinds == ["click", "dismiss", "impression"]


def test_signed_in_customer_claims_the_coupon(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    template = make_coupon_template(db, merchant=merchant, name="弹窗券", channels=["campaign"])
    rule = make_popup_rule(db, merchant=merchant, audience="new_customer", content_kind="coupon", template=template)
    customer = make_customer(db, merchant=merchant)
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))
    home = client.get(f"/shop/{merchant.slug}/")
    assert 'data-testid="popup-claim"' in home.text
    token = re.search(r'popups/\d+/claim">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', home.text).group(1)
    r = client.post(f"/shop/{merchant.slug}/popups/{rule.id}/claim", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    assert [(c.customer_id, c.channel) for c in db.scalars(select(Coupon))] == [(customer.id, "campaign")]


def test_slot_costs_one_query_without_live_rules(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    make_popup_rule(db, merchant=merchant, publish=False)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(statement)

    engine = db.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/shop/{merchant.slug}/").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    popup_queries = [s for s in statements if "promotions_popup" in s]
    assert len(popup_queries) == 1


def test_a_failing_slot_renders_nothing() -> None:
    def broken(request, **context):  # noqa: ANN001, ANN003
        raise RuntimeError("boom")

    def fine(request, **context):  # noqa: ANN001, ANN003
        return "<b>&</b>"

    register_slot("test.h2", broken)
    register_slot("test.h2", fine)
    try:
        assert str(render_slot(None, "test.h2")) == "&lt;b&gt;&amp;&lt;/b&gt;"
        assert str(render_slot(None, "test.none")) == ""
    finally:
        _slots.pop("test.h2", None)


def test_console_builder_and_api(client: TestClient, db: Session) -> None:
    merchant = make_merchant(db)
    staff = make_staff(db, merchant=merchant)
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    token = csrf(client.get("/console/promotions/popups/new").text)
    now = clock.now().astimezone(clock.SHANGHAI)
    form = {"csrf_token": token, "name": "回流弹窗", "priority": "10", "audience": "dormant", "dormant_days": "30",
            "content_kind": "link", "link_url": "https://elsewhere.example/", "title": "好久不见", "pages": "all",
            "cap_per_day": "1", "cap_total": "3", "conversion_days": "7",
            "starts_at": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")}
    r = client.post("/console/promotions/popups/new", data=form)
    assert r.status_code == 422 and 'data-testid="error-link_url"' in r.text and 'value="好久不见"' in r.text
    r = client.post("/console/promotions/popups/new", data={**form, "link_url": f"/shop/{merchant.slug}/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    rule = db.scalars(select(PopupRule)).one()
    assert client.post(f"/console/promotions/popups/{rule.id}/publish", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    assert f"popup-impressions-{rule.id}" in client.get("/console/promotions/popups").text
    assert client.get(f"/console/promotions/popups/{rule.id}").status_code == 200
    # API
    headers = auth_headers(db, staff)
    listed = client.get("/api/v1/admin/popup-rules", headers=headers).json()["items"]
    assert [(x["id"], x["status"]) for x in listed] == [(rule.id, "live")]
    body = {"name": "API", "audience": "everyone", "content_kind": "link", "title": "看看",
            "link_url": f"/shop/{merchant.slug}/", "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=1)).isoformat(), "priority": 1}
    created = client.post("/api/v1/admin/popup-rules", json=body, headers=headers)
    assert created.status_code == 201, created.text
    client.post(f"/api/v1/admin/popup-rules/{created.json()['id']}/status", json={"action": "publish"},
                headers=headers)
    customer = make_customer(db, merchant=merchant)
    nxt = client.get(f"/api/v1/shop/{merchant.slug}/popups/next?page=home", headers=customer_headers(db, customer))
    assert nxt.json()["popup"]["rule_id"] == created.json()["id"]
    assert client.post(f"/api/v1/shop/{merchant.slug}/popups/{created.json()['id']}/click",
                       headers=customer_headers(db, customer)).json() == {"url": f"/shop/{merchant.slug}/"}
    other = make_popup_rule(db, merchant=make_merchant(db))
    assert client.get(f"/api/v1/admin/popup-rules/{other.id}", headers=headers).status_code == 404
