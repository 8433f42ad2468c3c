"""Payments over HTTP: sandbox confirm, webhooks, the staff API, tenant isolation, bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.core.auth import Role
from siyu.core.models import OutboxEvent
from siyu.customers.signin import issue_customer_token
from siyu.payments import service
from siyu.payments.models import Payment, PaymentNotification
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store
from tests.factories.payments import (
    configure_wechatpay,
    make_payment,
    make_refund,
    sandbox_notification,
    transaction_resource,
    wechat_notification,
)


def customer_headers(db, customer):
    return {"Authorization": f"Bearer {issue_customer_token(db, customer)}"}


def events(db, name):
    return [e.payload for e in db.scalars(select(OutboxEvent).where(OutboxEvent.name == name))]


def logged(db, merchant):
    return list(db.scalars(select(PaymentNotification).where(PaymentNotification.merchant_id == merchant.id)
                           .order_by(PaymentNotification.id)))


@pytest.fixture
def shop(db):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    return merchant, customer, customer_headers(db, customer)


def start(db, merchant, customer, order_id=1001, amount_cents=3990):
    return service.start_payment(db, merchant_id=merchant.id, customer_id=customer.id, order_id=order_id,
                                 order_no="SO1001", amount_cents=amount_cents, method="sandbox", description="商品")


# ---------------------------------------------------------------- shop


def test_sandbox_round_trip_over_http(db, client, shop):
    merchant, customer, headers = shop
    started = start(db, merchant, customer)
    # when the customer follows the confirm URL
    r = client.post(started.sandbox_confirm_url, headers=headers)
    # then
    assert r.status_code == 200
    assert r.json() == {"payment_id": started.payment_id, "status": "succeeded"}
    got = client.get(f"/api/v1/shop/{merchant.slug}/payments/{started.payment_id}", headers=headers)
    assert got.status_code == 200
    body = got.json()
    assert (body["status"], body["amount_cents"], body["refund_state"], body["order_id"]) == (
        "succeeded", 3990, "none", 1001)
    assert [e["payment_id"] for e in events(db, "payment.succeeded")] == [started.payment_id]
    assert [n.outcome for n in logged(db, merchant)] == ["paid"]


def test_confirm_again_is_409_unless_replayed_with_the_same_key(db, client, shop):
    merchant, customer, headers = shop
    started = start(db, merchant, customer)
    keyed = {**headers, "Idempotency-Key": "confirm-1"}
    first = client.post(started.sandbox_confirm_url, headers=keyed)
    # when
    replay = client.post(started.sandbox_confirm_url, headers=keyed)
    again = client.post(started.sandbox_confirm_url, headers=headers)
    # then
    assert first.status_code == replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert again.status_code == 409 and again.json()["error"]["code"] == "payment_not_pending"
    assert len(events(db, "payment.succeeded")) == 1


def test_confirm_needs_a_signed_in_customer(db, client, shop):
    merchant, customer, _headers = shop
    started = start(db, merchant, customer)
    r = client.post(started.sandbox_confirm_url)
    assert r.status_code == 401
    assert db.get(Payment, started.payment_id).status == "created"


def test_other_customers_and_other_tenants_get_404(db, client, shop):
    merchant, customer, _headers = shop
    started = start(db, merchant, customer)
    stranger = make_customer(db, merchant=merchant)
    other_merchant = make_merchant(db)
    outsider = make_customer(db, merchant=other_merchant)
    for slug, who in ((merchant.slug, stranger), (other_merchant.slug, outsider)):
        h = customer_headers(db, who)
        url = f"/api/v1/shop/{slug}/payments/{started.payment_id}"
        assert client.get(url, headers=h).status_code == 404
        assert client.post(url + "/sandbox-confirm", headers=h).status_code == 404
    # a token of one shop does not open another
    own = customer_headers(db, customer)
    assert client.get(f"/api/v1/shop/{other_merchant.slug}/payments/{started.payment_id}", headers=own).status_code == 401
    db.expire_all()
    assert db.get(Payment, started.payment_id).status == "created"
    assert events(db, "payment.succeeded") == []


@pytest.mark.parametrize("payment_id", ["0", "-1", "abc", str(2**60), "1.5"])
def test_bad_payment_ids_are_4xx(client, shop, payment_id):
    merchant, _customer, headers = shop
    r = client.get(f"/api/v1/shop/{merchant.slug}/payments/{payment_id}", headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.post(f"/api/v1/shop/{merchant.slug}/payments/{payment_id}/sandbox-confirm", headers=headers)
    assert r.status_code == 422


def test_unknown_payment_is_404(client, shop):
    merchant, _customer, headers = shop
    assert client.get(f"/api/v1/shop/{merchant.slug}/payments/987654321", headers=headers).status_code == 404
    r = client.post(f"/api/v1/shop/{merchant.slug}/payments/987654321/sandbox-confirm", headers=headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_huge_idempotency_key_is_rejected(db, client, shop):
    merchant, customer, headers = shop
    started = start(db, merchant, customer)
    r = client.post(started.sandbox_confirm_url, headers={**headers, "Idempotency-Key": "k" * 500})
    assert r.status_code == 422
    assert db.get(Payment, started.payment_id).status == "created"


# ---------------------------------------------------------------- webhooks


def test_webhook_accepts_a_genuine_sandbox_notification(db, client, shop):
    merchant, customer, _headers = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    headers, body = sandbox_notification(payment)
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    db.expire_all()
    assert db.get(Payment, payment.id).status == "succeeded"
    # and a replay over HTTP changes nothing
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 200
    assert len(events(db, "payment.succeeded")) == 1
    assert [n.outcome for n in logged(db, merchant)] == ["paid", "duplicate"]


def test_webhook_rejects_a_forged_notification_and_keeps_the_log(db, client, shop):
    merchant, customer, _headers = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    other = make_merchant(db)
    headers, body = sandbox_notification(payment, merchant_id=other.id)
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 401 and r.json() == {"code": "FAIL", "message": "bad signature"}
    db.expire_all()
    assert db.get(Payment, payment.id).status == "created"
    assert [(n.verified, n.outcome) for n in logged(db, merchant)] == [(False, "rejected")]
    assert events(db, "payment.succeeded") == []


def test_webhook_wrong_amount_is_400_and_logged(db, client, shop):
    merchant, customer, _headers = shop
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=500)
    headers, body = sandbox_notification(payment, amount_cents=5)
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "FAIL"
    db.expire_all()
    assert db.get(Payment, payment.id).status == "created"
    assert [(n.verified, n.outcome, n.payment_id) for n in logged(db, merchant)] == [(True, "rejected", payment.id)]


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b"\x00\xff" * 10, b"x" * 200_000,
                                  b'{"id": "\\u0000abc", "out_trade_no": "\\u0000"}'])
def test_webhook_garbage_is_4xx_and_logged(db, client, shop, body):
    merchant, _customer, _headers = shop
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body,
                    headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and r.json()["code"] == "FAIL"
    assert len(logged(db, merchant)) == 1
    assert len(logged(db, merchant)[0].body) <= service.MAX_NOTIFICATION_BYTES


def test_webhook_unknown_provider_or_shop(db, client, shop):
    merchant, _customer, _headers = shop
    r = client.post(f"/webhooks/pay/alipay/{merchant.slug}", content=b"{}")
    assert r.status_code == 404 and r.json()["code"] == "FAIL"
    r = client.post("/webhooks/pay/sandbox/no-such-shop", content=b"{}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "merchant_not_found"
    r = client.post(f"/webhooks/pay/{'x' * 50}/{merchant.slug}", content=b"{}")
    assert r.status_code == 422
    r = client.post(f"/webhooks/pay/sand%00box/{merchant.slug}", content=b"{}", headers={"Sandbox-Nonce": "a\x01"})
    assert r.status_code == 404 and r.json()["code"] == "FAIL"


def test_webhook_wechatpay_over_http(db, client, shop):
    merchant, customer, _headers = shop
    configure_wechatpay(db, merchant)
    payment = make_payment(db, merchant=merchant, customer=customer, method="wechatpay", amount_cents=8800)
    headers, body = wechat_notification(transaction_resource(payment))
    r = client.post(f"/webhooks/pay/wechatpay/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    db.expire_all()
    assert db.get(Payment, payment.id).status == "succeeded"
    # the same notification to the sandbox endpoint is not trusted
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=body, headers=headers)
    assert r.status_code == 401


# ---------------------------------------------------------------- staff API


def test_admin_lists_and_filters_payments(db, client, shop):
    merchant, customer, _headers = shop
    admin = make_staff(db, merchant=merchant)
    a = make_payment(db, merchant=merchant, customer=customer, order_id=501, status="succeeded")
    b = make_payment(db, merchant=merchant, customer=customer, order_id=502)
    c = make_payment(db, merchant=merchant, customer=customer, order_id=501, status="closed")
    other = make_merchant(db)
    make_payment(db, merchant=other)
    headers = auth_headers(db, admin)
    r = client.get("/api/v1/admin/payments", headers=headers)
    assert r.status_code == 200 and [p["id"] for p in r.json()["items"]] == [c.id, b.id, a.id]
    r = client.get("/api/v1/admin/payments?order_id=501", headers=headers)
    assert [p["id"] for p in r.json()["items"]] == [c.id, a.id]
    r = client.get("/api/v1/admin/payments?status=succeeded", headers=headers)
    assert [p["id"] for p in r.json()["items"]] == [a.id]
    page1 = client.get("/api/v1/admin/payments?limit=2", headers=headers).json()
    assert [p["id"] for p in page1["items"]] == [c.id, b.id] and page1["next_cursor"]
    page2 = client.get(f"/api/v1/admin/payments?limit=2&cursor={page1['next_cursor']}", headers=headers).json()
    assert [p["id"] for p in page2["items"]] == [a.id] and page2["next_cursor"] is None


def test_admin_detail_shows_refunds_and_notifications(db, client, shop):
    merchant, customer, _headers = shop
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    payment = make_payment(db, merchant=merchant, customer=customer, amount_cents=1000)
    wrong_amount_headers, wrong_amount_body = sandbox_notification(payment, amount_cents=1)
    service.handle_notification(db, merchant=merchant, provider="sandbox", headers=wrong_amount_headers,
                                body=wrong_amount_body)
    good_headers, good_body = sandbox_notification(payment)
    service.handle_notification(db, merchant=merchant, provider="sandbox", headers=good_headers, body=good_body)
    service.refund(db, merchant_id=merchant.id, payment_id=payment.id, amount_cents=250, reason="破损", refund_key="k1")
    make_refund(db, payment=payment, amount_cents=100, status="failed")
    r = client.get(f"/api/v1/admin/payments/{payment.id}", headers=auth_headers(db, guide))
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["refunded_cents"], body["refund_state"]) == ("succeeded", 250, "partly_refunded")
    assert [(x["amount_cents"], x["status"]) for x in body["refunds"]] == [(250, "succeeded"), (100, "failed")]
    assert [(n["outcome"], n["verified"]) for n in body["notifications"]] == [("paid", True), ("rejected", True)]
    assert body["notifications"][1]["error"] == "amount 1 does not match 1000"


def test_admin_of_another_merchant_gets_404(db, client, shop):
    merchant, customer, _headers = shop
    payment = make_payment(db, merchant=merchant, customer=customer)
    other_admin = make_staff(db, merchant=make_merchant(db))
    headers = auth_headers(db, other_admin)
    assert client.get(f"/api/v1/admin/payments/{payment.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/admin/payments?order_id={payment.order_id}", headers=headers).json()["items"] == []


@pytest.mark.parametrize("query, status", [("limit=1000", 422), ("limit=0", 422), ("status=bogus", 422),
                                           ("order_id=abc", 422), ("order_id=" + str(2**60), 422),
                                           ("cursor=%%%", 400), ("cursor=" + "a" * 300, 422),
                                           ("method=cash", 422)])
def test_admin_list_bad_input(db, client, shop, query, status):
    merchant, _customer, _headers = shop
    headers = auth_headers(db, make_staff(db, merchant=merchant))
    r = client.get(f"/api/v1/admin/payments?{query}", headers=headers)
    assert r.status_code == status and "error" in r.json()


def test_admin_needs_auth(client):
    assert client.get("/api/v1/admin/payments").status_code == 401
    assert client.get("/api/v1/admin/payments/1").status_code == 401
