"""Stored value over HTTP, end to end: recharge with bonus in the sandbox, pay part of an order
with the balance and the rest in the sandbox, refund it; pay all with balance; cancel gives back;
refund an unused recharge; check every ledger."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.models import AuditLog
from siyu.ledger import service as ledger
from siyu.membership.service import stored_value as sv
from siyu.merchants.models import Merchant
from siyu.orders.models import Order
from siyu.payments.models import Payment
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import checkout_body, customer_headers, make_sku

ADMIN = "/api/v1/admin/membership/stored-value"


@pytest.fixture(autouse=True)
def _installed() -> None:
    sv.install()


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


@pytest.fixture
def buyer(db: Session, merchant: Merchant):
    customer = make_customer(db, merchant=merchant)
    return customer, customer_headers(db, customer)


@pytest.fixture
def admin(db: Session, merchant: Merchant) -> dict[str, str]:
    return auth_headers(db, make_staff(db, merchant=merchant))


def shop(merchant: Merchant) -> str:
    return f"/api/v1/shop/{merchant.slug}"


def balance(client: TestClient, merchant: Merchant, headers) -> tuple[int, int]:
    r = client.get(f"{shop(merchant)}/membership/stored-value", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["principal_cents"], r.json()["bonus_cents"]


def pay_sandbox(client: TestClient, merchant: Merchant, headers, order_id: int) -> dict:
    r = client.post(f"{shop(merchant)}/orders/{order_id}/pay", json={"method": "sandbox"}, headers=headers)
    assert r.status_code == 200, r.text
    r2 = client.post(r.json()["sandbox_confirm_url"], headers=headers)
    assert r2.status_code == 200, r2.text
    return r.json()


def recharge(client: TestClient, merchant: Merchant, admin, headers, price=50000, bonus=5000) -> dict:
    r = client.post(f"{ADMIN}/plans", json={"name": "充500送50", "price_cents": price, "bonus_cents": bonus},
                    headers=admin)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert [p["id"] for p in client.get(f"{shop(merchant)}/membership/stored-value/plans").json()["items"]] \
        == [plan["id"]]
    r = client.post(f"{shop(merchant)}/membership/stored-value/recharges", json={"plan_id": plan["id"]},
                    headers={**headers, "Idempotency-Key": f"rc-{price}"})
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["status"] == "pending"
    pay_sandbox(client, merchant, headers, row["order_id"])
    return row


def test_recharge_pay_part_with_balance_refund_and_check_every_ledger(client: TestClient, db: Session,
                                                                     merchant: Merchant, buyer, admin) -> None:
    customer, headers = buyer
    # given: 充500送50 bought and paid in the sandbox
    row = recharge(client, merchant, admin, headers)
    assert balance(client, merchant, headers) == (50000, 5000)
    order = db.get(Order, row["order_id"])
    db.refresh(order)
    assert (order.kind, order.status) == ("recharge", "completed")
    read = client.get(f"{shop(merchant)}/orders/{order.id}", headers=headers).json()
    assert (read["kind"], read["fulfilment_type"], read["paid_cents"]) == ("recharge", "virtual", 50000)
    assert read["fulfilment"]["service"] == {"kind": "recharge", "ref_type": "stored_value_recharge",
                                             "ref_id": row["id"], "plan_id": row["plan_id"], "bonus_cents": 5000}
    assert [(line["sku_id"], line["quantity"], line["paid_cents"]) for line in read["lines"]] == [(0, 1, 50000)]
    # when: an order of 800.00 with use_balance: 550.00 from the balance, 250.00 in the sandbox
    sku = make_sku(db, merchant=merchant, price_cents=40000, stock=5)
    body = checkout_body([(sku, 2)], use_balance=True)
    preview = client.post(f"{shop(merchant)}/checkout/preview", json=body, headers=headers).json()
    assert (preview["total_cents"], preview["payable_cents"]) == (80000, 25000)
    assert preview["payment_parts"] == [{"kind": "stored_value", "amount_cents": 55000}]
    r = client.post(f"{shop(merchant)}/orders", json=body, headers={**headers, "Idempotency-Key": "o1"})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    assert balance(client, merchant, headers) == (0, 0)
    pay_sandbox(client, merchant, headers, oid)
    assert client.get(f"{shop(merchant)}/orders/{oid}", headers=headers).json()["status"] == "paid"
    # when: one of the two units is refunded and approved
    detail = client.get(f"{shop(merchant)}/orders/{oid}", headers=headers).json()
    line_id = detail["lines"][0]["id"]
    r = client.post(f"{shop(merchant)}/orders/{oid}/refunds", json={"lines": [{"order_line_id": line_id, "quantity": 1}],
                                                                    "reason": "不想要了"}, headers=headers)
    assert r.status_code in (200, 201), r.text
    refund = r.json()
    r = client.post(f"/api/v1/admin/refunds/{refund['id']}/approve", json={}, headers=admin)
    assert r.status_code == 200, r.text
    # then: half of the order (400.00) back: 125.00 money to the sandbox, 275.00 to the balance as 250 + 25
    assert (r.json()["money_cents"], r.json()["parts_cents"]) == (12500, 27500)
    assert balance(client, merchant, headers) == (25000, 2500)
    payment = db.scalars(select(Payment).where(Payment.order_id == oid)).one()
    db.refresh(payment)
    assert payment.refunded_cents == 12500
    # when: the rest is refunded
    r = client.post(f"{shop(merchant)}/orders/{oid}/refunds", json={"reason": "全部退"}, headers=headers)
    r = client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin)
    assert r.status_code == 200, r.text
    # then: everything is back, per account, and every ledger agrees
    assert balance(client, merchant, headers) == (50000, 5000)
    db.refresh(payment)
    assert payment.refunded_cents == 25000
    assert ledger.verify(db, merchant.id) == []
    entries = client.get(f"{shop(merchant)}/membership/stored-value/entries", headers=headers).json()["items"]
    assert [(e["account"], e["reason"], e["delta_cents"]) for e in reversed(entries)] == [
        ("principal", "recharge", 50000), ("bonus", "recharge_bonus", 5000),
        ("principal", "spend", -50000), ("bonus", "spend", -5000),
        ("principal", "refund", 25000), ("bonus", "refund", 2500),
        ("principal", "refund", 25000), ("bonus", "refund", 2500),
    ]
    staff_view = client.get(f"{ADMIN}/customers/{customer.id}", headers=admin).json()
    assert (staff_view["principal_cents"], staff_view["bonus_cents"], staff_view["total_cents"]) == (50000, 5000, 55000)


def test_pay_all_with_balance_and_refund_it(client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    customer, headers = buyer
    recharge(client, merchant, admin, headers, price=10000, bonus=1000)
    sku = make_sku(db, merchant=merchant, price_cents=2200, stock=5)
    oid = client.post(f"{shop(merchant)}/orders", json=checkout_body([(sku, 1)]), headers=headers).json()["id"]
    # when: paid with method balance
    r = client.post(f"{shop(merchant)}/orders/{oid}/pay", json={"method": "balance"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert client.get(f"{shop(merchant)}/orders/{oid}", headers=headers).json()["status"] == "paid"
    assert balance(client, merchant, headers) == (8000, 800)
    # when: refunded in full
    r = client.post(f"{shop(merchant)}/orders/{oid}/refunds", json={"reason": "退"}, headers=headers)
    r = client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert balance(client, merchant, headers) == (10000, 1000)
    assert ledger.verify(db, merchant.id) == []


def test_a_recharge_cannot_be_paid_with_balance(client: TestClient, db: Session, merchant: Merchant, buyer,
                                                admin) -> None:
    customer, headers = buyer
    first = recharge(client, merchant, admin, headers, price=10000, bonus=0)
    assert first["order_id"]
    plan_id = client.get(f"{shop(merchant)}/membership/stored-value/plans").json()["items"][0]["id"]
    row = client.post(f"{shop(merchant)}/membership/stored-value/recharges", json={"plan_id": plan_id},
                      headers=headers).json()
    r = client.post(f"{shop(merchant)}/orders/{row['order_id']}/pay", json={"method": "balance"}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "recharge_with_balance"
    assert balance(client, merchant, headers) == (10000, 0)


def test_cancelled_order_gives_the_balance_back(client: TestClient, db: Session, merchant: Merchant, buyer,
                                                admin) -> None:
    customer, headers = buyer
    recharge(client, merchant, admin, headers, price=3000, bonus=300)
    sku = make_sku(db, merchant=merchant, price_cents=5000, stock=5)
    oid = client.post(f"{shop(merchant)}/orders", json=checkout_body([(sku, 1)], use_balance=True),
                      headers=headers).json()["id"]
    assert balance(client, merchant, headers) == (0, 0)
    r = client.post(f"{shop(merchant)}/orders/{oid}/cancel", json={}, headers=headers)
    assert r.status_code == 200, r.text
    assert balance(client, merchant, headers) == (3000, 300)
    assert ledger.verify(db, merchant.id) == []


def test_refund_of_an_unused_recharge_returns_principal_only(client: TestClient, db: Session, merchant: Merchant,
                                                             buyer, admin) -> None:
    customer, headers = buyer
    row = recharge(client, merchant, admin, headers, price=20000, bonus=2000)
    # a service order is not refunded through after-sales
    r = client.post(f"{shop(merchant)}/orders/{row['order_id']}/refunds", json={"reason": "退"}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "service_order_refund"
    # staff refunds it
    r = client.post(f"{ADMIN}/recharges/{row['id']}/refund", json={"reason": "顾客要求"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["forfeited_bonus_cents"]) == ("refunded", 2000)
    assert balance(client, merchant, headers) == (0, 0)
    payment = db.scalars(select(Payment).where(Payment.order_id == row["order_id"])).one()
    db.refresh(payment)
    assert payment.refunded_cents == 20000  # the principal, as money; the bonus is never paid out
    order = db.get(Order, row["order_id"])
    db.refresh(order)
    assert order.status == "refunded"
    assert db.scalars(select(AuditLog.action).where(AuditLog.merchant_id == merchant.id,
                                                    AuditLog.action == "stored_value.recharge_refund")).all()
    # a second time: refused, nothing moves
    r = client.post(f"{ADMIN}/recharges/{row['id']}/refund", json={"reason": "again"}, headers=admin)
    assert r.status_code == 409
    assert ledger.verify(db, merchant.id) == []


def test_a_spent_recharge_cannot_be_refunded(client: TestClient, db: Session, merchant: Merchant, buyer,
                                             admin) -> None:
    customer, headers = buyer
    row = recharge(client, merchant, admin, headers, price=10000, bonus=1000)
    sku = make_sku(db, merchant=merchant, price_cents=1100, stock=5)
    client.post(f"{shop(merchant)}/orders", json=checkout_body([(sku, 1)], use_balance=True), headers=headers)
    assert balance(client, merchant, headers) == (9000, 900)
    r = client.post(f"{ADMIN}/recharges/{row['id']}/refund", json={"reason": "x"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "recharge_used"
    assert balance(client, merchant, headers) == (9000, 900)


def test_adjustments_over_http_and_scope(client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    customer, headers = buyer
    body = {"account": "bonus", "delta_cents": 1234, "reason": "活动补偿"}
    r = client.post(f"{ADMIN}/customers/{customer.id}/adjustments", json=body, headers={**admin, "Idempotency-Key": "a1"})
    assert r.status_code == 201, r.text
    r2 = client.post(f"{ADMIN}/customers/{customer.id}/adjustments", json=body, headers={**admin, "Idempotency-Key": "a1"})
    assert r2.json() == r.json()
    assert balance(client, merchant, headers) == (0, 1234)
    r = client.post(f"{ADMIN}/customers/{customer.id}/adjustments",
                    json={"account": "principal", "delta_cents": -1, "reason": "x"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_balance"
    r = client.post(f"{ADMIN}/customers/{customer.id}/adjustments", json={"account": "cash", "delta_cents": 1,
                                                                          "reason": "x"}, headers=admin)
    assert r.status_code == 422
    # another merchant's staff: 404
    other = make_merchant(db)
    r = client.get(f"{ADMIN}/customers/{customer.id}", headers=auth_headers(db, make_staff(db, merchant=other)))
    assert r.status_code == 404
    entries = client.get(f"{ADMIN}/customers/{customer.id}/entries", headers=admin).json()["items"]
    assert [(e["account"], e["reason"], e["delta_cents"], e["note"]) for e in entries] == [
        ("bonus", "adjustment", 1234, "活动补偿")]


class _FakePoints:
    """A stand-in for another payment part (points) taking a fixed 33.33 before stored value."""

    name = "test.points"
    priority = 90

    def contribute(self, session, ctx) -> None:
        ctx.add_payment_part(kind="points", amount_cents=3333, source=self.name)


@pytest.fixture
def other_part():
    from siyu.orders import pricing

    pricing.register_contributor(_FakePoints())
    yield
    pricing.unregister_contributor(_FakePoints.name)


def test_refunds_split_the_parts_between_stored_value_and_another_part(client: TestClient, db: Session,
                                                                       merchant: Merchant, buyer, admin,
                                                                       other_part) -> None:
    customer, headers = buyer
    recharge(client, merchant, admin, headers, price=10000, bonus=3000)
    # given: 3 units of 40.00 = 120.00: 33.33 "points", 86.67 stored value, nothing left to pay
    sku = make_sku(db, merchant=merchant, price_cents=4000, stock=5)
    r = client.post(f"{shop(merchant)}/orders", json=checkout_body([(sku, 3)], use_balance=True), headers=headers)
    assert r.status_code == 201, r.text
    order = r.json()
    assert [(p["kind"], p["amount_cents"]) for p in order["payment_parts"]] == [("points", 3333),
                                                                                ("stored_value", 8667)]
    assert order["status"] == "paid" and order["payable_cents"] == 0
    # 86.67 taken 10:3 → 66.67 principal, 20.00 bonus
    assert balance(client, merchant, headers) == (10000 - 6667, 3000 - 2000)
    line_id = client.get(f"{shop(merchant)}/orders/{order['id']}", headers=headers).json()["lines"][0]["id"]
    # when: one unit (40.00 of parts) is refunded: stored value's share 40.00 × 8667/12000 = 28.89
    r = client.post(f"{shop(merchant)}/orders/{order['id']}/refunds",
                    json={"lines": [{"order_line_id": line_id, "quantity": 1}], "reason": "一件"}, headers=headers)
    r = client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin)
    assert (r.json()["money_cents"], r.json()["parts_cents"]) == (0, 4000)
    # then: 28.89 back as 22.22 principal + 6.67 bonus (the 10:3 shares of the 86.67 taken)
    p, b = balance(client, merchant, headers)
    assert (p + b) - (13000 - 8667) == 2889
    assert (p - 3333, b - 1000) == (2222, 667)
    # when: the rest is refunded, everything taken comes back
    r = client.post(f"{shop(merchant)}/orders/{order['id']}/refunds", json={"reason": "全部"}, headers=headers)
    client.post(f"/api/v1/admin/refunds/{r.json()['id']}/approve", json={}, headers=admin)
    assert balance(client, merchant, headers) == (10000, 3000)
    assert ledger.verify(db, merchant.id) == []


def test_expired_order_and_expired_recharge(client: TestClient, db: Session, merchant: Merchant, buyer,
                                            admin) -> None:
    import datetime as dt

    from siyu.core import clock
    from siyu.membership.models.stored_value import Recharge
    from siyu.orders import service as orders

    customer, headers = buyer
    recharge(client, merchant, admin, headers, price=5000, bonus=500)
    sku = make_sku(db, merchant=merchant, price_cents=9000, stock=5)
    oid = client.post(f"{shop(merchant)}/orders", json=checkout_body([(sku, 1)], use_balance=True),
                      headers=headers).json()["id"]
    plan_id = client.get(f"{shop(merchant)}/membership/stored-value/plans").json()["items"][0]["id"]
    pending = client.post(f"{shop(merchant)}/membership/stored-value/recharges", json={"plan_id": plan_id},
                          headers=headers).json()
    assert balance(client, merchant, headers) == (0, 0)
    # when: neither is paid in time and the expiry job runs (its events handled after the commit)
    with clock.frozen(clock.now() + dt.timedelta(hours=2)):
        expired = orders.expire_unpaid(db, clock.now())
        db.commit()
    # then: both orders are cancelled, the balance is back, the pending recharge is cancelled, not credited
    assert set(expired) == {oid, pending["order_id"]}
    assert balance(client, merchant, headers) == (5000, 500)
    row = db.get(Recharge, pending["id"])
    db.refresh(row)
    assert row.status == "cancelled"
    assert ledger.verify(db, merchant.id) == []


def test_the_balance_notice_is_for_the_preview_and_placing_without_it_reads_no_balance(
        client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    # given: a customer with a balance of 550.00 buying without use_balance
    _customer, headers = buyer
    recharge(client, merchant, admin, headers)
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=5)
    body = checkout_body([(sku, 1)])
    # then: the preview tells them the balance can pay
    preview = client.post(f"{shop(merchant)}/checkout/preview", json=body, headers=headers).json()
    assert [n for n in preview["notices"] if n.get("code") == "balance_available"] == [
        {"kind": "stored_value", "code": "balance_available", "balance_cents": 55000,
         "message": [n for n in preview["notices"] if n.get("code") == "balance_available"][0]["message"]}]
    # when: the order is placed
    from sqlalchemy import event

    sent: list[str] = []
    listener = lambda _c, _cur, statement, *_a: sent.append(statement)  # noqa: E731
    engine = db.get_bind().engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        r = client.post(f"{shop(merchant)}/orders", json=body, headers={**headers, "Idempotency-Key": "nb1"})
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # then: no balance was read and none taken
    assert r.status_code == 201, r.text
    assert r.json()["payment_parts"] == [] and r.json()["payable_cents"] == 1000
    assert [s for s in sent if s.lstrip().startswith("SELECT ledger_accounts.owner_id, ledger_accounts.balance")] == []
    assert balance(client, merchant, headers) == (50000, 5000)
