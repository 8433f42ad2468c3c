"""The browser plumbing works: a live server, chromium, and a console sign-in."""

from __future__ import annotations

import httpx


def test_healthz_and_console_login_page_render(live_server, page) -> None:
    # when the browser opens the health check and the console's sign-in page
    page.goto(f"{live_server.url}/healthz")
    assert '"status":"ok"' in page.content().replace(" ", "")
    response = page.goto(f"{live_server.url}/console/login")

    # then the form is there, styled by our own CSS
    assert response is not None and response.status == 200
    assert page.locator("input[name=username]").is_visible()
    assert page.locator("input[name=password]").is_visible()
    page.screenshot(path="/tmp/siyu-browser-console-login.png", full_page=True)


def test_seeded_admin_signs_in_and_the_session_is_a_real_one(live_server, page) -> None:
    # given a new merchant's brand admin
    username, password, slug = live_server.seed_admin()

    # when they sign in through the form
    live_server.login(page, username, password)

    # then they left the login page with a session cookie the API accepts
    assert "/console/login" not in page.url
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    me = httpx.get(f"{live_server.url}/api/v1/admin/me", cookies=cookies)
    assert me.status_code == 200
    assert me.json()["username"] == username
    page.screenshot(path="/tmp/siyu-browser-after-login.png", full_page=True)


def test_each_seeded_admin_is_unique(live_server) -> None:
    first, second = live_server.seed_admin(), live_server.seed_admin()
    assert first[0] != second[0] and first[2] != second[2]


def test_live_server_is_isolated_from_the_unit_tests_database(live_server, db) -> None:
    # given the unit tests' database swapped in globally (the db fixture)
    from sqlalchemy import func, select

    from siyu.merchants.models import Merchant

    before = db.scalar(select(func.count()).select_from(Merchant))
    # when the live server's data changes
    username, password, _slug = live_server.seed_admin()
    # then the unit test database saw nothing, and the live server still answers from its own
    assert db.scalar(select(func.count()).select_from(Merchant)) == before
    token = httpx.post(f"{live_server.url}/api/v1/admin/auth/token", json={"username": username, "password": password})
    assert token.status_code == 200
    assert db.scalar(select(func.count()).select_from(Merchant)) == before
