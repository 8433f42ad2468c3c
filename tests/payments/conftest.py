from __future__ import annotations

import pytest

from siyu.config import get_settings
from siyu.payments.providers import register_balance_provider
from tests.factories.payments import wechat_keys
from tests.payments.fake_wechatpay import FakeWechatPay


@pytest.fixture(scope="session")
def _fake_server() -> FakeWechatPay:
    fake = FakeWechatPay(wechat_keys()).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_wechatpay(_fake_server: FakeWechatPay, monkeypatch: pytest.MonkeyPatch) -> FakeWechatPay:
    """The fake WeChat Pay server, with siyu pointed at it and its request log cleared."""
    _fake_server.requests.clear()
    _fake_server.refund_status = "SUCCESS"
    _fake_server.sign_answers = True
    monkeypatch.setattr(get_settings(), "wechatpay_api_base", _fake_server.url)
    return _fake_server


@pytest.fixture(autouse=True)
def _no_balance_provider() -> None:
    register_balance_provider(None)
    yield
    register_balance_provider(None)
