from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from siyu.config import get_settings
from siyu.customers.models import Customer, CustomerIdentity, CustomerToken
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant


def _customers(db, merchant):
    return db.scalar(select(func.count()).select_from(Customer).where(Customer.merchant_id == merchant.id))


def _login(client, merchant, openid="o-1", nickname=None):
    body = {"openid": openid} | ({"nickname": nickname} if nickname else {})
    return client.post(f"/api/v1/shop/{merchant.slug}/auth/dev-login", json=body)


def test_dev_login_creates_then_finds_the_customer(db, client):
    # given
    merchant = make_merchant(db)
    # when
    first = _login(client, merchant, nickname="小红")
    again = _login(client, merchant, nickname="小绿")
    # then
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"access_token", "token_type", "customer"}
    assert again.json()["customer"] == body["customer"]
    assert again.json()["access_token"] != body["access_token"]
    customer = db.get(Customer, body["customer"]["id"])
    assert customer.nickname == "小红"
    # only digests are stored
    digests = set(db.scalars(select(CustomerToken.token_digest)))
    assert body["access_token"] not in digests and len(digests) == 2


def test_dev_login_disabled_is_404(db, client, dev_login_off):
    merchant = make_merchant(db)
    r = _login(client, merchant)
    assert r.status_code == 404 and r.json()["error"]["code"] == "dev_login_disabled"
    assert _customers(db, merchant) == 0


@pytest.mark.parametrize("body", [{}, {"openid": ""}, {"openid": "x" * 129}, {"openid": 5},
                                  {"openid": "a", "nickname": "n" * 65}])
def test_dev_login_bad_input(db, client, body):
    merchant = make_merchant(db)
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/dev-login", json=body)
    assert r.status_code == 422
    assert _customers(db, merchant) == 0


def test_unknown_shop_is_404(client, db):
    assert client.post("/api/v1/shop/nope-shop/auth/dev-login", json={"openid": "x"}).status_code == 404
    assert client.post("/api/v1/shop/" + "x" * 50 + "/auth/dev-login", json={"openid": "x"}).status_code in (404, 422)


def test_me_get_and_patch(db, client):
    merchant = make_merchant(db)
    token = _login(client, merchant, nickname="小红").json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    r = client.get(f"/api/v1/shop/{merchant.slug}/me", headers=h)
    assert r.status_code == 200
    assert r.json()["nickname"] == "小红" and r.json()["phone"] == ""
    r = client.patch(f"/api/v1/shop/{merchant.slug}/me", headers=h,
                     json={"nickname": "小红红", "region": "上海", "birthday": "1995-01-02", "gender": "female"})
    assert r.status_code == 200, r.text
    assert (r.json()["nickname"], r.json()["region"], r.json()["birthday"]) == ("小红红", "上海", "1995-01-02")
    # customers cannot set their own notes or phone
    for body in ({"notes": "x"}, {"phone": "13800000000"}, {"nickname": ""}, {"gender": "x"}, {"birthday": "bad"}):
        assert client.patch(f"/api/v1/shop/{merchant.slug}/me", headers=h, json=body).status_code == 422
    assert client.get(f"/api/v1/shop/{merchant.slug}/me", headers=h).json()["nickname"] == "小红红"


def test_me_needs_a_token_of_this_merchant(db, client):
    a, b = make_merchant(db), make_merchant(db)
    token = _login(client, a).json()["access_token"]
    assert client.get(f"/api/v1/shop/{a.slug}/me").status_code == 401
    assert client.get(f"/api/v1/shop/{a.slug}/me", headers={"Authorization": "Bearer junk"}).status_code == 401
    assert client.get(f"/api/v1/shop/{b.slug}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # the H5 cookie works too, but only under its own merchant's name
    client.cookies.set(f"siyu_c_{a.slug}", token)
    assert client.get(f"/api/v1/shop/{a.slug}/me").status_code == 200
    assert client.get(f"/api/v1/shop/{b.slug}/me").status_code == 401


def test_staff_token_is_not_a_customer_token(db, client, org):
    r = client.get(f"/api/v1/shop/{org.merchant.slug}/me", headers=auth_headers(db, org.admin))
    assert r.status_code == 401


# ---------------------------------------------------------------- WeChat


def _configure(db, merchant):
    merchant.settings = {"wechat_miniprogram_appid": "wx-app", "wechat_miniprogram_secret": "s3cret"}
    db.flush()


def test_wechat_login_binds_openid_and_unionid(db, client, fake_wechat):
    # given
    merchant = make_merchant(db)
    _configure(db, merchant)
    fake_wechat.answers["code-1"] = {"openid": "wx-o-1", "unionid": "wx-u-1", "session_key": "k"}
    # when
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "code-1"})
    # then
    assert r.status_code == 200, r.text
    customer_id = r.json()["customer"]["id"]
    kinds = set(db.execute(select(CustomerIdentity.kind, CustomerIdentity.value)
                           .where(CustomerIdentity.customer_id == customer_id)))
    assert kinds == {("openid", "wx-o-1"), ("unionid", "wx-u-1")}
    req = fake_wechat.requests[0]
    assert req["path"] == ["/sns/jscode2session"]
    assert (req["appid"], req["secret"], req["js_code"], req["grant_type"]) == (
        ["wx-app"], ["s3cret"], ["code-1"], ["authorization_code"])
    # a second mini-program of the same brand (new openid, same unionid) finds the same customer
    fake_wechat.answers["code-2"] = {"openid": "wx-o-2", "unionid": "wx-u-1", "session_key": "k"}
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "code-2"})
    assert r.json()["customer"]["id"] == customer_id
    assert _customers(db, merchant) == 1
    me = client.get(f"/api/v1/shop/{merchant.slug}/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["id"] == customer_id


def test_wechat_login_merges_when_openid_and_unionid_belong_to_two_customers(db, client, fake_wechat):
    merchant = make_merchant(db)
    _configure(db, merchant)
    older = make_customer(db, merchant=merchant, openid="wx-o-9")
    newer = make_customer(db, merchant=merchant, openid="other")
    db.add(CustomerIdentity(merchant_id=merchant.id, customer_id=newer.id, kind="unionid", value="wx-u-9"))
    db.flush()
    fake_wechat.answers["c"] = {"openid": "wx-o-9", "unionid": "wx-u-9"}
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "c"})
    assert r.json()["customer"]["id"] == older.id
    db.refresh(newer)
    assert newer.merged_into_id == older.id


def test_wechat_errcode_is_400_with_details(db, client, fake_wechat):
    merchant = make_merchant(db)
    _configure(db, merchant)
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "expired"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "wechat_login_failed"
    assert r.json()["error"]["details"] == {"errcode": 40029, "errmsg": "invalid code"}
    assert _customers(db, merchant) == 0


def test_wechat_bad_answer_is_502(db, client, fake_wechat):
    merchant = make_merchant(db)
    _configure(db, merchant)
    fake_wechat.answers["weird"] = ["not", "an", "object"]
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "weird"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "wechat_bad_response"
    assert _customers(db, merchant) == 0


def test_wechat_down_is_503(db, client, monkeypatch):
    merchant = make_merchant(db)
    _configure(db, merchant)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(get_settings(), "wechat_api_base", f"http://127.0.0.1:{port}")
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "c"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "wechat_unavailable"
    assert _customers(db, merchant) == 0


def test_wechat_not_configured_is_409(db, client, fake_wechat):
    merchant = make_merchant(db)
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json={"code": "c"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "wechat_not_configured"
    assert fake_wechat.requests == []


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "c" * 129}, {"code": 1}])
def test_wechat_bad_input(db, client, body, fake_wechat):
    merchant = make_merchant(db)
    _configure(db, merchant)
    assert client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", json=body).status_code == 422
    r = client.post(f"/api/v1/shop/{merchant.slug}/auth/wechat", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert fake_wechat.requests == []
