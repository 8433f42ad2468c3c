"""The staff API: official-account QR codes through the (fake) WeChat API, contact ways, settings,
figures and the inbound log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from siyu.attribution.models.shares import Share
from siyu.channels.models import ApiAccessToken, OaQrCode
from siyu.core import clock
from siyu.core.auth import Role
from siyu.merchants.service import get_merchant
from tests.channels import wechat_messages as wm
from tests.channels.conftest import SECRET, configure
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store

QR = "/api/v1/admin/channels/oa-qrcodes"


def test_a_guide_code_is_created_once_through_the_wechat_api(client, db, ch, fake_oa):
    headers = auth_headers(db, ch.admin)

    first = client.post(QR, json={"staff_id": ch.guide.id}, headers=headers)
    again = client.post(QR, json={"staff_id": ch.guide.id}, headers=headers)

    assert first.status_code == 201 and again.status_code == 200
    body = first.json()
    assert again.json()["id"] == body["id"]
    share = db.scalars(select(Share).where(Share.code == body["share_code"])).one()
    assert (share.channel, share.sharer_staff_id, share.target_type, share.target_id) == (
        "guide_qr", ch.guide.id, "store", ch.store.id)
    assert body["scene"] == share.code
    assert (body["kind"], body["staff_id"], body["store_id"]) == ("guide", ch.guide.id, ch.store.id)
    assert body["ticket"] == f"TICKET-{share.code}" and body["url"] == f"http://weixin.qq.com/q/{share.code}"
    created = fake_oa.qr_creations()
    assert len(created) == 1
    assert created[0]["json"] == {"action_name": "QR_LIMIT_STR_SCENE",
                                  "action_info": {"scene": {"scene_str": share.code}}}
    png = client.get(body["qr_png_url"], headers=headers)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_access_token_is_cached_and_refreshed_when_wechat_refuses_it(client, db, ch, fake_oa):
    headers = auth_headers(db, ch.admin)
    client.post(QR, json={"store_id": ch.store.id}, headers=headers)
    client.post(QR, json={"staff_id": ch.guide.id}, headers=headers)
    token_calls = [r for r in fake_oa.requests if r["path"] == "/cgi-bin/token"]
    assert len(token_calls) == 1
    assert token_calls[0]["params"] == {"grant_type": "client_credential", "appid": ch.merchant.settings[
        "wechat_oa_appid"], "secret": SECRET}

    # WeChat forgets the token (another system fetched a new one): the next call fetches again and retries
    fake_oa.valid_tokens.clear()
    response = client.post(QR, json={"staff_id": ch.guide2.id}, headers=headers)
    assert response.status_code == 201
    assert len([r for r in fake_oa.requests if r["path"] == "/cgi-bin/token"]) == 2
    row = db.scalars(select(ApiAccessToken).where(ApiAccessToken.merchant_id == ch.merchant.id)).one()
    assert row.token == f"TOKEN{fake_oa.tokens_issued}"
    assert row.expires_at > clock.now() + dt.timedelta(hours=1)


def test_qr_codes_need_the_appsecret_and_a_reachable_wechat(client, db, ch, fake_oa, monkeypatch):
    headers = auth_headers(db, ch.admin)
    configure(db, ch.merchant, wechat_oa_secret="")
    assert client.post(QR, json={"store_id": ch.store.id}, headers=headers).json()["error"]["code"] == \
        "oa_not_configured"

    configure(db, ch.merchant, wechat_oa_secret="wrong-secret")
    refused = client.post(QR, json={"store_id": ch.store.id}, headers=headers)
    assert refused.status_code == 502 and refused.json()["error"]["details"]["errcode"] == 40125

    from siyu.config import get_settings

    monkeypatch.setattr(get_settings(), "wechat_api_base", "http://127.0.0.1:9")
    configure(db, ch.merchant, wechat_oa_secret=SECRET)
    assert client.post(QR, json={"store_id": ch.store.id}, headers=headers).status_code == 503
    assert db.scalar(select(func.count(OaQrCode.id)).where(OaQrCode.merchant_id == ch.merchant.id)) == 0


def test_roles_and_tenants(client, db, ch, fake_oa):
    guide_headers = auth_headers(db, ch.guide)
    assert client.post(QR, json={"store_id": ch.store.id}, headers=guide_headers).status_code == 403
    assert client.post(QR, json={"store_id": ch.store.id, "staff_id": ch.guide.id},
                       headers=auth_headers(db, ch.admin)).status_code == 422
    other = make_merchant(db)
    other_store = make_store(db, merchant=other)
    other_admin = make_staff(db, merchant=other)
    assert client.post(QR, json={"store_id": other_store.id}, headers=auth_headers(db, ch.admin)).status_code == 404
    client.post(QR, json={"staff_id": ch.guide.id}, headers=auth_headers(db, ch.admin))
    assert client.get(QR, headers=auth_headers(db, other_admin)).json()["items"] == []
    # a guide sees their own code only, and may make their own but not a colleague's
    client.post(QR, json={"staff_id": ch.guide2.id}, headers=auth_headers(db, ch.admin))
    mine = client.get(QR, headers=guide_headers).json()["items"]
    assert [c["staff_id"] for c in mine] == [ch.guide.id]
    guide3 = make_staff(db, merchant=ch.merchant, role=Role.GUIDE, store=ch.store)
    g3 = auth_headers(db, guide3)
    assert client.post(QR, json={"staff_id": ch.guide.id}, headers=g3).status_code == 403
    assert client.post(QR, json={"staff_id": guide3.id}, headers=g3).status_code == 201
    assert client.put("/api/v1/admin/channels/wecom/contact-ways", headers=g3,
                      json={"staff_id": guide3.id, "wecom_userid": "wangwu"}).status_code == 200
    assert client.put("/api/v1/admin/channels/wecom/contact-ways", headers=g3,
                      json={"staff_id": ch.guide.id, "wecom_userid": "wangwu"}).status_code == 403
    manager = make_staff(db, merchant=ch.merchant, role=Role.STORE_MANAGER, store=ch.store)
    assert client.post(QR, json={"staff_id": ch.guide.id}, headers=auth_headers(db, manager)).status_code == 200


def test_settings_are_saved_and_secrets_never_shown(client, db, ch):
    headers = auth_headers(db, ch.admin)
    new_key = wm.new_aes_key()

    saved = client.patch("/api/v1/admin/channels/settings", headers=headers,
                         json={"wechat_oa_appid": "wxNEWAPP", "wechat_oa_aes_key": new_key, "clear": ["wecom_token"]})

    assert saved.status_code == 200
    body = saved.json()
    assert body["wechat_oa_appid"] == "wxNEWAPP" and body["wechat_oa_aes_key_set"] is True
    assert body["wecom_token_set"] is False and body["wecom_corp_id"]
    assert new_key not in saved.text and ch.oa_token not in saved.text
    assert body["oa_callback_url"].endswith(f"/webhooks/wechat/oa/{ch.merchant.slug}")
    db.expire_all()
    settings = get_merchant(db, ch.merchant.id).settings
    assert settings["wechat_oa_aes_key"] == new_key and settings["wecom_token"] == ""
    assert settings["wechat_oa_token"] == ch.oa_token  # not sent: kept
    # the merchant settings API does not leak them either
    assert new_key not in client.get("/api/v1/admin/merchant", headers=headers).text

    bad = client.patch("/api/v1/admin/channels/settings", headers=headers,
                       json={"wechat_oa_aes_key": "short", "wechat_oa_token": "x"})
    assert bad.status_code == 422
    assert set(bad.json()["error"]["details"]["fields"]) == {"wechat_oa_aes_key", "wechat_oa_token"}
    db.expire_all()
    assert get_merchant(db, ch.merchant.id).settings["wechat_oa_aes_key"] == new_key
    assert client.patch("/api/v1/admin/channels/settings", headers=auth_headers(db, ch.guide),
                        json={"wechat_oa_appid": "wxX"}).status_code == 403


def test_contact_ways_figures_and_inbound_log(client, db, ch):
    headers = auth_headers(db, ch.admin)
    put = client.put("/api/v1/admin/channels/wecom/contact-ways", headers=headers,
                     json={"staff_id": ch.guide.id, "wecom_userid": "zhangsan", "state": "desk-1"})
    assert put.status_code == 200 and put.json()["state"] == "desk-1"
    taken = client.put("/api/v1/admin/channels/wecom/contact-ways", headers=headers,
                       json={"staff_id": ch.guide2.id, "wecom_userid": "lisi", "state": "desk-1"})
    assert taken.status_code == 422
    ch.post_oa(client, wm.oa_event(openid="o-fig", event="subscribe", key=""))
    ch.post_oa(client, wm.oa_event(openid="o-fig", event="subscribe", key=""), safe=False)

    figures = client.get("/api/v1/admin/channels/figures", headers=headers).json()
    log = client.get("/api/v1/admin/channels/inbound", headers=headers).json()["items"]

    assert (figures["subscribed"], figures["subscribes_recent"], figures["unsubscribed"]) == (1, 1, 0)
    assert [m["outcome"] for m in log] == ["rejected", "processed"]
    assert client.get("/api/v1/admin/channels/inbound", headers=auth_headers(db, ch.guide)).status_code == 403
