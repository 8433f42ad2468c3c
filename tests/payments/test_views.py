"""The H5 pay page and the console payment pages."""

from __future__ import annotations

import re

from sqlalchemy import select

from siyu.core.models import OutboxEvent
from siyu.customers.deps import cookie_name
from siyu.customers.signin import issue_customer_token
from siyu.payments import service
from siyu.payments.models import Payment
from tests.factories.customers import make_customer
from tests.factories.merchants import PASSWORD, make_merchant, make_staff
from tests.factories.payments import make_payment, sandbox_notification


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def shop_login(db, client, merchant, customer) -> None:
    client.cookies.set(cookie_name(merchant.slug), issue_customer_token(db, customer))


def console_login(client, staff) -> None:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303


def start(db, merchant, customer, order_id=3003):
    return service.start_payment(db, merchant_id=merchant.id, customer_id=customer.id, order_id=order_id,
                                 order_no="SO3003", amount_cents=12345, method="sandbox", description="好物")


def test_pay_page_confirm_redirects_to_the_order(db, client):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    started = start(db, merchant, customer)
    shop_login(db, client, merchant, customer)
    # given the page
    page = client.get(started.pay_page_url)
    assert page.status_code == 200
    assert "¥123.45" in page.text and "SO3003" in page.text and 'data-testid="confirm-pay"' in page.text
    assert "确认支付" in page.text
    # when the customer confirms
    r = client.post(started.pay_page_url, data={"csrf_token": csrf(page.text)}, follow_redirects=False)
    # then
    assert r.status_code == 303 and r.headers["location"] == f"/shop/{merchant.slug}/orders/3003?paid=1"
    db.expire_all()
    assert db.get(Payment, started.payment_id).status == "succeeded"
    assert len(list(db.scalars(select(OutboxEvent).where(OutboxEvent.name == "payment.succeeded")))) == 1
    # and the page now says it is paid, without a button
    again = client.get(started.pay_page_url)
    assert "已支付" in again.text and 'data-testid="confirm-pay"' not in again.text


def test_pay_page_posting_twice_shows_an_error_not_a_second_payment(db, client):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    started = start(db, merchant, customer)
    shop_login(db, client, merchant, customer)
    token = csrf(client.get(started.pay_page_url).text)
    client.post(started.pay_page_url, data={"csrf_token": token}, follow_redirects=False)
    r = client.post(started.pay_page_url, data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 409 and "该支付单已不在待支付状态" in r.text
    assert len(list(db.scalars(select(OutboxEvent).where(OutboxEvent.name == "payment.succeeded")))) == 1


def test_pay_page_needs_csrf_login_and_own_payment(db, client):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    started = start(db, merchant, customer)
    # not signed in: to the login page and back
    r = client.get(started.pay_page_url, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/shop/{merchant.slug}/login?next=")
    # another customer: not found
    shop_login(db, client, merchant, make_customer(db, merchant=merchant))
    assert client.get(started.pay_page_url).status_code == 404
    # the owner without the form token: refused
    shop_login(db, client, merchant, customer)
    assert client.post(started.pay_page_url, data={}, follow_redirects=False).status_code == 403
    db.expire_all()
    assert db.get(Payment, started.payment_id).status == "created"
    assert client.get(f"/shop/{merchant.slug}/pay/99999999").status_code == 404
    assert client.get(f"/shop/{merchant.slug}/pay/abc").status_code == 422


def test_pay_page_of_a_closed_payment(db, client):
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    payment = make_payment(db, merchant=merchant, customer=customer, status="closed")
    shop_login(db, client, merchant, customer)
    r = client.get(f"/shop/{merchant.slug}/pay/{payment.id}")
    assert r.status_code == 200 and "该支付单已关闭" in r.text and "confirm-pay" not in r.text


def test_console_list_and_detail(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant)
    paid = make_payment(db, merchant=merchant, customer=customer, status="succeeded", amount_cents=5000, order_no="SO9")
    service.refund(db, merchant_id=merchant.id, payment_id=paid.id, amount_cents=1000, reason="少发", refund_key="x")
    waiting = make_payment(db, merchant=merchant, customer=customer)
    headers, body = sandbox_notification(waiting, amount_cents=1)
    service.handle_notification(db, merchant=merchant, provider="sandbox", headers=headers, body=body)
    foreign = make_payment(db, merchant=make_merchant(db))
    console_login(client, admin)
    # list
    r = client.get("/console/payments")
    assert r.status_code == 200
    assert paid.out_trade_no in r.text and waiting.out_trade_no in r.text and foreign.out_trade_no not in r.text
    assert "部分退款" in r.text
    r = client.get("/console/payments?status=succeeded")
    assert paid.out_trade_no in r.text and waiting.out_trade_no not in r.text
    r = client.get("/console/payments?order_id=abc&cursor=%%%")
    assert r.status_code == 422 and "请输入订单 ID" in r.text
    # detail with refunds and the notification log
    r = client.get(f"/console/payments/{paid.id}")
    assert r.status_code == 200 and "¥50.00" in r.text and "少发" in r.text and "¥10.00" in r.text
    r = client.get(f"/console/payments/{waiting.id}")
    assert "已拒绝" in r.text and "amount 1 does not match" in r.text
    assert client.get(f"/console/payments/{foreign.id}").status_code == 404


def test_console_pages_need_login(client):
    r = client.get("/console/payments", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
