from __future__ import annotations

import dataclasses

import pytest

from siyu.config import get_settings
from siyu.core.auth import Role
from siyu.merchants.models import Merchant, Staff, Store
from tests.channels import wechat_messages as wm
from tests.channels.fake_wechat import FakeOaApi
from tests.factories.merchants import make_merchant, make_staff, make_store

APPID = "wxoa0123456789"
SECRET = "oasecret0123456789"
CORP_ID = "ww0123456789abcd"


@dataclasses.dataclass
class Channels:
    merchant: Merchant
    store: Store
    admin: Staff
    guide: Staff
    guide2: Staff
    oa_token: str
    oa_aes_key: str
    wecom_token: str
    wecom_aes_key: str

    @property
    def oa_url(self) -> str:
        return f"/webhooks/wechat/oa/{self.merchant.slug}"

    @property
    def wecom_url(self) -> str:
        return f"/webhooks/wecom/{self.merchant.slug}"

    def post_oa(self, client, message: str, *, safe: bool = True, **kw):
        if safe:
            query, body = wm.safe_request(self.oa_token, self.oa_aes_key, APPID, message, **kw)
        else:
            query, body = wm.plain_request(self.oa_token, message, **kw)
        return client.post(f"{self.oa_url}?{query}", content=body, headers={"Content-Type": "text/xml"})

    def post_wecom(self, client, message: str, **kw):
        query, body = wm.wecom_request(self.wecom_token, self.wecom_aes_key, CORP_ID, message, **kw)
        return client.post(f"{self.wecom_url}?{query}", content=body, headers={"Content-Type": "text/xml"})


def configure(db, merchant: Merchant, **settings: str) -> None:
    merchant.settings = {**(merchant.settings or {}), **settings}
    db.flush()


@pytest.fixture
def ch(db) -> Channels:
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    result = Channels(merchant=merchant, store=store, admin=make_staff(db, merchant=merchant),
                      guide=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store),
                      guide2=make_staff(db, merchant=merchant, role=Role.GUIDE, store=store),
                      oa_token="oatoken123", oa_aes_key=wm.new_aes_key(), wecom_token="wecomtoken42",
                      wecom_aes_key=wm.new_aes_key())
    configure(db, merchant, wechat_oa_appid=APPID, wechat_oa_secret=SECRET, wechat_oa_token=result.oa_token,
              wechat_oa_aes_key=result.oa_aes_key, wecom_corp_id=CORP_ID, wecom_token=result.wecom_token,
              wecom_aes_key=result.wecom_aes_key)
    return result


@pytest.fixture(scope="session")
def _fake_oa_server() -> FakeOaApi:
    fake = FakeOaApi(appid=APPID, secret=SECRET)
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def fake_oa(_fake_oa_server: FakeOaApi, monkeypatch) -> FakeOaApi:
    """Every channels test talks to the fake WeChat API (a follower's unionid is asked for after a
    subscribe), never to WeChat."""
    _fake_oa_server.requests.clear()
    _fake_oa_server.valid_tokens.clear()
    _fake_oa_server.unionids.clear()
    monkeypatch.setattr(get_settings(), "wechat_api_base", _fake_oa_server.url)
    return _fake_oa_server
