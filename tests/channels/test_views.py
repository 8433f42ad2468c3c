"""The console pages: codes and contact ways, the inbound log, the settings form."""

from __future__ import annotations

import re

from sqlalchemy import select

from siyu.channels.models import OaQrCode, WecomContactWay
from siyu.channels.service import settings as channel_settings
from siyu.merchants import service as merchants
from siyu.merchants.service import get_merchant
from tests.channels import wechat_messages as wm
from tests.factories.merchants import PASSWORD


def login(client, staff) -> None:
    client.cookies.clear()
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD, "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_create_a_guide_code_from_the_console_and_print_it(client, db, ch, fake_oa):
    login(client, ch.admin)
    page = client.get("/console/channels")
    assert page.status_code == 200 and f'data-testid="create-guide-{ch.guide.id}"' in page.text

    r = client.post("/console/channels/oa-qrcodes", data={"csrf_token": csrf(page.text), "staff_id": str(ch.guide.id)},
                    follow_redirects=False)

    assert r.status_code == 303
    code = db.scalars(select(OaQrCode).where(OaQrCode.staff_id == ch.guide.id)).one()
    assert r.headers["location"] == f"/console/channels/oa-qrcodes/{code.id}?ok=qr_created"
    card = client.get(r.headers["location"])
    assert card.status_code == 200 and "<svg" in card.text and code.scene in card.text
    listing = client.get("/console/channels")
    assert f"/console/channels/oa-qrcodes/{code.id}" in listing.text


def test_a_forged_form_creates_nothing(client, db, ch, fake_oa):
    login(client, ch.admin)
    r = client.post("/console/channels/oa-qrcodes", data={"csrf_token": "nope", "staff_id": str(ch.guide.id)},
                    follow_redirects=False)
    assert r.status_code == 403
    assert db.scalars(select(OaQrCode).where(OaQrCode.merchant_id == ch.merchant.id)).all() == []


def test_contact_way_form_keeps_what_was_typed_on_error(client, db, ch):
    login(client, ch.admin)
    token = csrf(client.get("/console/channels").text)
    ok = client.post("/console/channels/wecom/contact-ways", follow_redirects=False,
                     data={"csrf_token": token, "staff_id": str(ch.guide.id), "wecom_userid": "zhangsan", "state": ""})
    assert ok.status_code == 303
    way = db.scalars(select(WecomContactWay).where(WecomContactWay.staff_id == ch.guide.id)).one()
    assert (way.wecom_userid, way.state) == ("zhangsan", f"g{ch.guide.id}")

    bad = client.post("/console/channels/wecom/contact-ways",
                      data={"csrf_token": token, "staff_id": str(ch.guide2.id), "wecom_userid": "li si!",
                            "state": "x"})
    assert bad.status_code == 422
    assert 'data-testid="error-wecom_userid"' in bad.text and 'value="li si!"' in bad.text
    assert db.scalars(select(WecomContactWay).where(WecomContactWay.staff_id == ch.guide2.id)).all() == []


def test_settings_form_never_shows_secrets(client, db, ch):
    login(client, ch.admin)
    page = client.get("/console/channels/settings")
    assert page.status_code == 200
    assert ch.oa_aes_key not in page.text and ch.oa_token not in page.text and ch.wecom_aes_key not in page.text
    assert f"/webhooks/wechat/oa/{ch.merchant.slug}" in page.text
    new_key = wm.new_aes_key()

    saved = client.post("/console/channels/settings", follow_redirects=False, data={
        "csrf_token": csrf(page.text), "wechat_oa_appid": "wxAPPNEW", "wechat_oa_aes_key": new_key,
        "wecom_corp_id": "wwCORP", "clear_wecom_token": "1"})
    assert saved.status_code == 303
    db.expire_all()
    settings = get_merchant(db, ch.merchant.id).settings
    assert (settings["wechat_oa_appid"], settings["wechat_oa_aes_key"], settings["wecom_token"]) == (
        "wxAPPNEW", new_key, "")
    assert settings["wechat_oa_token"] == ch.oa_token
    assert new_key not in client.get("/console/channels/settings").text

    bad = client.post("/console/channels/settings", data={
        "csrf_token": csrf(page.text), "wechat_oa_appid": "wx BAD", "wecom_aes_key": "tooshort"})
    assert bad.status_code == 422
    assert 'data-testid="error-wecom_aes_key"' in bad.text and 'value="wx BAD"' in bad.text


def test_secret_keys_are_merchant_secrets():
    assert set(channel_settings.SECRET_KEYS) <= merchants.SECRET_SETTINGS


def test_inbound_log_page_and_guides(client, db, ch):
    ch.post_oa(client, wm.oa_event(openid="o-log", event="subscribe", key=""))
    ch.post_oa(client, wm.oa_event(openid="o-log2", event="subscribe", key=""), safe=False)
    login(client, ch.admin)
    page = client.get("/console/channels/inbound")
    assert page.status_code == 200 and page.text.count('data-testid="inbound-row"') == 2
    rejected = client.get("/console/channels/inbound", params={"outcome": "rejected", "cursor": "garbage"})
    assert rejected.status_code == 200 and rejected.text.count('data-testid="inbound-row"') == 1
    index = client.get("/console/channels")
    assert 'data-testid="fig-subscribed">1<' in index.text

    login(client, ch.guide)
    assert client.get("/console/channels/inbound").status_code == 403
    mine = client.get("/console/channels")
    assert mine.status_code == 200 and 'data-testid="channel-figures"' not in mine.text
    assert f'code-row-guide-{ch.guide2.id}' not in mine.text
    assert f'data-testid="create-guide-{ch.guide.id}"' in mine.text  # their own code
    assert f'data-testid="save-way-{ch.guide.id}"' in mine.text
