"""WeChat Pay v3 against a local fake server: signed prepay requests, platform-signed and
encrypted notifications, refunds."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select

from siyu.core import clock
from siyu.core.errors import Conflict
from siyu.core.models import OutboxEvent
from siyu.payments import service
from siyu.payments.models import Payment, PaymentNotification, PaymentRefund
from siyu.payments.providers import ProviderError
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.payments import (
    configure_wechatpay,
    make_payment,
    next_order_id,
    refund_resource,
    transaction_resource,
    wechat_keys,
    wechat_notification,
)


def events(db, name):
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name).order_by(OutboxEvent.id))]


@pytest.fixture
def shop(db):
    merchant = make_merchant(db)
    configure_wechatpay(db, merchant)
    return merchant, make_customer(db, merchant=merchant)


def start(db, merchant, customer, **kw):
    return service.start_payment(db, merchant_id=merchant.id, customer_id=customer.id,
                                 order_id=kw.pop("order_id", None) or next_order_id(), order_no="SO1", amount_cents=kw.pop("amount_cents", 8800), method="wechatpay",
                                 description="好物一件", **kw)


def handle(db, merchant, headers, body):
    return service.handle_notification(db, merchant=merchant, provider="wechatpay", headers=headers, body=body)


# ---------------------------------------------------------------- prepay


def test_jsapi_prepay_is_signed_and_gives_pay_params(db, shop, fake_wechatpay):
    merchant, customer = shop
    keys = wechat_keys()
    # when
    started = start(db, merchant, customer, payer_openid="o-openid-1")
    # then the fake verified our Authorization signature and got the v3 body
    [req] = fake_wechatpay.requests
    assert req["auth_error"] is None and req["path"] == "/v3/pay/transactions/jsapi"
    payment = db.get(Payment, started.payment_id)
    assert req["body"]["out_trade_no"] == payment.out_trade_no
    assert req["body"]["amount"] == {"total": 8800, "currency": "CNY"}
    assert req["body"]["payer"] == {"openid": "o-openid-1"}
    assert req["body"]["notify_url"].endswith(f"/webhooks/pay/wechatpay/{merchant.slug}")
    assert req["body"]["time_expire"].endswith("+08:00")
    # and the JSAPI params are signed with the merchant key
    params = started.wechatpay
    assert params["appId"] == keys.appid and params["package"] == f"prepay_id=wx{payment.out_trade_no}"
    assert params["signType"] == "RSA"
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    keys.merchant_key.public_key().verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(),
                                          hashes.SHA256())
    assert payment.status == "created" and payment.provider_data["prepay_id"] == f"wx{payment.out_trade_no}"


def test_h5_prepay_without_openid(db, shop, fake_wechatpay):
    merchant, customer = shop
    started = start(db, merchant, customer, client_ip="10.1.2.3")
    [req] = fake_wechatpay.requests
    assert req["path"] == "/v3/pay/transactions/h5" and req["auth_error"] is None
    assert req["body"]["scene_info"] == {"payer_client_ip": "10.1.2.3", "h5_info": {"type": "Wap"}}
    assert started.h5_url.startswith("https://wx.tenpay.com/") and started.wechatpay is None


def test_unconfigured_wechatpay_is_409(db, fake_wechatpay):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    with pytest.raises(Conflict) as err:
        start(db, merchant, customer)
    assert err.value.code == "wechatpay_not_configured"
    assert fake_wechatpay.requests == []


def test_wrong_merchant_key_is_refused_by_wechat(db, shop, fake_wechatpay):
    merchant, customer = shop
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant.settings = {**merchant.settings, "wechatpay_private_key_pem": other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()}
    db.flush()
    with pytest.raises(ProviderError) as err:
        start(db, merchant, customer, payer_openid="o1")
    assert err.value.status_code == 502 and err.value.details["provider_code"] == "SIGN_ERROR"
    assert fake_wechatpay.requests[0]["auth_error"] == "bad signature"


def test_unsigned_answer_is_not_trusted(db, shop, fake_wechatpay):
    merchant, customer = shop
    fake_wechatpay.sign_answers = False
    with pytest.raises(ProviderError) as err:
        start(db, merchant, customer, payer_openid="o1")
    assert err.value.code == "provider_signature_invalid"


def test_unreachable_wechatpay_is_502(db, shop, monkeypatch):
    from siyu.config import get_settings

    monkeypatch.setattr(get_settings(), "wechatpay_api_base", "http://127.0.0.1:9")
    merchant, customer = shop
    with pytest.raises(ProviderError) as err:
        start(db, merchant, customer, payer_openid="o1")
    assert err.value.code == "provider_unavailable"


def test_starting_again_asks_wechat_to_close_the_old_one(db, shop, fake_wechatpay):
    merchant, customer = shop
    first = start(db, merchant, customer, payer_openid="o1", order_id=5001)
    old = db.get(Payment, first.payment_id)
    start(db, merchant, customer, payer_openid="o1", order_id=5001)
    assert [r["path"] for r in fake_wechatpay.requests] == [
        "/v3/pay/transactions/jsapi", f"/v3/pay/transactions/out-trade-no/{old.out_trade_no}/close",
        "/v3/pay/transactions/jsapi"]
    assert fake_wechatpay.requests[1]["auth_error"] is None and old.status == "closed"


# ---------------------------------------------------------------- notifications


def test_valid_notification_marks_paid_and_replay_does_nothing(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", amount_cents=8800, order_id=71)
    headers, body = wechat_notification(transaction_resource(payment, transaction_id="4200001234"))
    # when
    first = handle(db, merchant, headers, body)
    replay = handle(db, merchant, headers, body)
    # then
    assert (first.status_code, first.outcome, first.response_body()) == (200, "paid", {"code": "SUCCESS"})
    assert (replay.status_code, replay.outcome) == (200, "duplicate")
    assert payment.status == "succeeded" and payment.provider_txn_id == "4200001234"
    [event] = events(db, "payment.succeeded")
    assert (event["payment_id"], event["order_id"], event["amount_cents"], event["method"]) == (
        payment.id, 71, 8800, "wechatpay")


def test_forged_platform_signature_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers, body = wechat_notification(transaction_resource(payment), signing_key=forger)
    outcome = handle(db, merchant, headers, body)
    assert (outcome.status_code, outcome.error) == (401, "bad signature")
    assert outcome.response_body() == {"code": "FAIL", "message": "bad signature"}
    assert payment.status == "created" and events(db, "payment.succeeded") == []
    note = db.scalars(select(PaymentNotification).where(PaymentNotification.merchant_id == merchant.id)).one()
    assert (note.verified, note.outcome) == (False, "rejected")
    assert note.headers["wechatpay-serial"] == wechat_keys().platform_serial


def test_unknown_platform_serial_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    outcome = handle(db, merchant, *wechat_notification(transaction_resource(payment), serial="OTHER"))
    assert (outcome.status_code, outcome.error) == (401, "unknown platform serial")


def test_wrong_apiv3_key_cannot_decrypt(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    outcome = handle(db, merchant, *wechat_notification(transaction_resource(payment), apiv3_key="0" * 32))
    assert (outcome.status_code, outcome.error) == (400, "resource cannot be decrypted")
    assert payment.status == "created"


def test_stale_notification_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    headers, body = wechat_notification(transaction_resource(payment), timestamp=clock.now() - dt.timedelta(minutes=6))
    outcome = handle(db, merchant, headers, body)
    assert (outcome.status_code, outcome.error) == (400, "stale timestamp")
    assert payment.status == "created"


def test_wrong_amount_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", amount_cents=8800)
    outcome = handle(db, merchant, *wechat_notification(transaction_resource(payment, amount_cents=1)))
    assert (outcome.status_code, outcome.outcome) == (400, "rejected")
    assert payment.status == "created" and events(db, "payment.succeeded") == []


def test_trade_state_other_than_success_is_rejected(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    outcome = handle(db, merchant, *wechat_notification(transaction_resource(payment, trade_state="NOTPAY")))
    assert outcome.status_code == 400 and payment.status == "created"


def test_late_wechat_payment_on_closed_payment_succeeds(db, shop):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="closed")
    outcome = handle(db, merchant, *wechat_notification(transaction_resource(payment)))
    assert outcome.outcome == "paid_late" and payment.status == "succeeded"
    assert len(events(db, "payment.succeeded")) == 1


def test_another_merchants_notification_does_not_verify(db, shop):
    merchant, customer = shop
    other = make_merchant(db)  # not configured
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay")
    outcome = handle(db, other, *wechat_notification(transaction_resource(payment)))
    assert outcome.status_code == 404 and payment.status == "created"


# ---------------------------------------------------------------- refunds


def test_refund_success_at_once(db, shop, fake_wechatpay):
    merchant, customer = shop
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="succeeded",
                           amount_cents=8800)
    result = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=3000, reason="尺码不合适",
                            refund_key="as:1")
    [req] = fake_wechatpay.requests
    assert req["auth_error"] is None and req["path"] == "/v3/refund/domestic/refunds"
    assert req["body"]["amount"] == {"refund": 3000, "total": 8800, "currency": "CNY"}
    assert req["body"]["out_trade_no"] == payment.out_trade_no and req["body"]["out_refund_no"] == result.out_refund_no
    assert result.status == "succeeded" and payment.refunded_cents == 3000
    assert len(events(db, "payment.refunded")) == 1


def test_processing_refund_waits_for_its_notification(db, shop, fake_wechatpay):
    merchant, customer = shop
    fake_wechatpay.refund_status = "PROCESSING"
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="succeeded",
                           amount_cents=8800, order_id=808)
    result = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=8800, reason="",
                            refund_key="as:2")
    assert result.status == "pending" and payment.refunded_cents == 0 and events(db, "payment.refunded") == []
    row = db.get(PaymentRefund, result.refund_id)
    headers, body = wechat_notification(refund_resource(payment, row), event_type="REFUND.SUCCESS")
    # when
    first = handle(db, merchant, headers, body)
    replay = handle(db, merchant, headers, body)
    # then
    assert (first.outcome, replay.outcome) == ("refunded", "duplicate")
    assert row.status == "succeeded" and payment.refunded_cents == 8800 and payment.refund_state == "refunded"
    assert events(db, "payment.refunded") == [
        {"payment_id": payment.id, "order_id": 808, "refund_id": row.id, "amount_cents": 8800}]


def test_refund_notification_with_wrong_amount_is_rejected(db, shop, fake_wechatpay):
    merchant, customer = shop
    fake_wechatpay.refund_status = "PROCESSING"
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="succeeded")
    result = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=100, reason="",
                            refund_key="as:3")
    row = db.get(PaymentRefund, result.refund_id)
    outcome = handle(db, merchant, *wechat_notification(refund_resource(payment, row, amount_cents=999),
                                                        event_type="REFUND.SUCCESS"))
    assert outcome.status_code == 400 and row.status == "pending" and payment.refunded_cents == 0


def test_refund_abnormal_notification_fails_the_refund_and_frees_the_amount(db, shop, fake_wechatpay):
    merchant, customer = shop
    fake_wechatpay.refund_status = "PROCESSING"
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="succeeded",
                           amount_cents=1000)
    result = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=1000, reason="",
                            refund_key="as:4")
    row = db.get(PaymentRefund, result.refund_id)
    outcome = handle(db, merchant, *wechat_notification(refund_resource(payment, row, status="ABNORMAL"),
                                                        event_type="REFUND.ABNORMAL"))
    assert outcome.outcome == "refund_failed" and row.status == "failed"
    # a retry with the same key goes to WeChat again with the same out_refund_no
    fake_wechatpay.refund_status = "SUCCESS"
    again = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=1000, reason="",
                           refund_key="as:4")
    assert (again.refund_id, again.status, again.out_refund_no) == (row.id, "succeeded", row.out_refund_no)
    assert payment.refunded_cents == 1000


def test_refund_refused_by_wechat_is_failed_and_moves_no_money(db, shop, fake_wechatpay):
    merchant, customer = shop
    fake_wechatpay.refund_status = 403
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", status="succeeded")
    result = service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=100, reason="",
                            refund_key="as:5")
    assert result.status == "failed" and result.error.startswith("NOT_ENOUGH")
    assert payment.refunded_cents == 0 and events(db, "payment.refunded") == []
