"""WeChat channels in the browser: the brand admin sets up the official account, creates a store's
QR code (through a fake WeChat API), a WeChat user scans it (a real encrypted callback), and the
console shows the new follower and the inbound message."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from siyu.config import get_settings
from siyu.merchants.models import Merchant, Store
from tests.channels import wechat_messages as wm
from tests.channels.fake_wechat import FakeOaApi

APPID, SECRET, TOKEN = "wxbrowser0001", "browsersecret01", "browsertoken"


@pytest.mark.browser
def test_admin_sets_up_the_official_account_and_sees_a_follower(live_server, page, monkeypatch) -> None:
    # given a merchant with a brand admin and a store, and WeChat's API faked locally
    username, password, slug = live_server.seed_admin()
    with live_server.database.scope() as session:
        merchant = session.scalars(select(Merchant).where(Merchant.slug == slug)).one()
        store = Store(merchant_id=merchant.id, name="浏览器门店", address="上海")
        session.add(store)
        session.flush()
        store_id = store.id
    fake = FakeOaApi(appid=APPID, secret=SECRET)
    monkeypatch.setattr(get_settings(), "wechat_api_base", fake.url)
    aes_key = wm.new_aes_key()
    try:
        # when the admin enters the official account's settings
        live_server.login(page, username, password)
        page.goto(f"{live_server.url}/console/channels/settings")
        form = page.locator("form[data-testid=channel-settings]")
        form.locator("input[name=wechat_oa_appid]").fill(APPID)
        form.locator("input[name=wechat_oa_secret]").fill(SECRET)
        form.locator("input[name=wechat_oa_token]").fill(TOKEN)
        form.locator("input[name=wechat_oa_aes_key]").fill(aes_key)
        with page.expect_navigation():
            page.click("[data-testid=save-settings]")
        assert page.locator(".flash").is_visible()
        assert page.locator("[data-testid=state-wechat_oa_aes_key]").inner_text() != ""
        assert aes_key not in page.content()

        # and creates the store's QR code
        page.goto(f"{live_server.url}/console/channels")
        with page.expect_navigation():
            page.click(f"[data-testid=create-store-{store_id}]")
        assert page.locator("[data-testid=oa-card] svg").count() == 1
        scene = page.locator("[data-testid=scene]").inner_text()
        page.screenshot(path="/tmp/siyu-browser-channels-qr.png", full_page=True)

        # and a WeChat user scans it and follows (WeChat's encrypted callback)
        query, body = wm.safe_request(TOKEN, aes_key, APPID,
                                      wm.oa_event(openid="o-browser-fan", event="subscribe", key=f"qrscene_{scene}"))
        answer = httpx.post(f"{live_server.url}/webhooks/wechat/oa/{slug}?{query}", content=body)
        assert (answer.status_code, answer.text) == (200, "success")

        # then the console counts the follower for the store's code and logs the message
        page.goto(f"{live_server.url}/console/channels")
        assert page.locator("[data-testid=fig-subscribed]").inner_text() == "1"
        assert "1" in page.locator(f"[data-testid=code-row-store-{store_id}]").inner_text()
        page.screenshot(path="/tmp/siyu-browser-channels.png", full_page=True)
        page.click("[data-testid=tab-inbound]")
        page.wait_for_selector("[data-testid=inbound-row]")
        assert page.locator("[data-testid=inbound-row]").count() == 1
    finally:
        fake.close()
