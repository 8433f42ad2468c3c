"""Bad input found by the schemathesis suite (tests/fuzz), pinned down on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.payments.models import Payment, PaymentNotification
from siyu.payments.providers.sandbox import sign
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.payments import make_payment, sandbox_notification


@pytest.mark.parametrize("timestamp", ["999999999999", "253402300800", "\u00b2", "\u0661\u0662\u0663"])
def test_webhook_with_an_impossible_timestamp_is_rejected_in_wechat_shape(db, client, timestamp):
    # given: a notification correctly signed over a timestamp that is digits but no instant Python
    # can hold (past year 9999) or not ASCII digits; it used to raise out of fromtimestamp()/int() -> 500
    merchant = make_merchant(db)
    payment = make_payment(db, merchant=merchant, customer=make_customer(db, merchant=merchant))
    _headers, body = sandbox_notification(payment)
    headers = {"Content-Type": "application/json", "Sandbox-Timestamp": timestamp.encode("latin-1", "ignore") or b"x",
               "Sandbox-Nonce": "n1", "Sandbox-Signature": sign(merchant.id, timestamp, "n1", body)}
    # when
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    # then: refused, logged, and the payment untouched
    assert r.status_code == 400
    assert r.json() == {"code": "FAIL", "message": "missing or malformed timestamp"}
    db.expire_all()
    assert db.get(Payment, payment.id).status == "created"
    logged = db.scalars(select(PaymentNotification).where(PaymentNotification.merchant_id == merchant.id)).all()
    assert [(n.outcome, n.verified) for n in logged] == [("rejected", False)]
