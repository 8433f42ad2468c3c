"""Orders over HTTP: the whole lifecycle, idempotency, isolation and bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.models import AuditLog
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.models import CartLine, Order, RefundRequest
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store
from tests.factories.orders import ADDRESS, checkout_body, customer_headers, make_order, make_sku, pickup


def stock(db: Session, sku) -> int:
    return catalog.stock_of(db, merchant_id=sku.merchant_id, sku_ids=[sku.id])[sku.id]


def count(db: Session, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def buyer(db: Session, merchant: Merchant):
    customer = make_customer(db, merchant=merchant)
    return customer, customer_headers(db, customer)


@pytest.fixture
def admin(db: Session, merchant: Merchant) -> dict[str, str]:
    return auth_headers(db, make_staff(db, merchant=merchant))


def base(merchant: Merchant) -> str:
    return f"/api/v1/shop/{merchant.slug}"


def test_delivery_lifecycle(client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    customer, headers = buyer
    merchant.settings = {"shipping": {"flat_cents": 600, "free_over_cents": 10000}}
    sku = make_sku(db, merchant=merchant, price_cents=2990, stock=10)
    body = checkout_body([(sku, 2)])
    # preview
    r = client.post(f"{base(merchant)}/checkout/preview", json=body, headers=headers)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert {k: preview[k] for k in ("adjustments", "shipping_cents", "total_cents", "payable_cents")} == {
        "adjustments": [], "shipping_cents": 600, "total_cents": 6580, "payable_cents": 6580}
    assert preview["lines"][0]["subtotal_cents"] == 5980
    # create
    r = client.post(f"{base(merchant)}/orders", json=body, headers={**headers, "Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["status"], order["total_cents"], order["payable_cents"]) == ("pending_payment", 6580, 6580)
    assert order["fulfilment"]["address"] == ADDRESS
    assert stock(db, sku) == 8
    # pay in the sandbox
    r = client.post(f"{base(merchant)}/orders/{order['id']}/pay", json={"method": "sandbox"},
                    headers={**headers, "Idempotency-Key": "p1"})
    assert r.status_code == 200, r.text
    started = r.json()
    assert started["status"] == "created" and started["sandbox_confirm_url"]
    r = client.post(started["sandbox_confirm_url"], headers=headers)
    assert r.status_code == 200, r.text
    r = client.get(f"{base(merchant)}/orders/{order['id']}", headers=headers)
    detail = r.json()
    assert (detail["status"], detail["paid_cents"]) == ("paid", 6580)
    assert [p["status"] for p in detail["payments"]] == ["succeeded"]
    # ship
    r = client.post(f"/api/v1/admin/orders/{order['id']}/ship", json={"carrier": "顺丰", "tracking_no": "SF1234567"},
                    headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["tracking_no"]) == ("shipped", "SF1234567")
    # confirm receipt
    r = client.post(f"{base(merchant)}/orders/{order['id']}/confirm-receipt", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "completed"
    # the staff view: history and payments
    r = client.get(f"/api/v1/admin/orders/{order['id']}", headers=admin)
    assert [(h["from"], h["to"]) for h in r.json()["history"]] == [
        (None, "pending_payment"), ("pending_payment", "paid"), ("paid", "shipped"), ("shipped", "completed")]
    assert r.json()["after_sales_closes_at"] is not None
    # the customer's stats moved
    db.refresh(customer)
    assert (customer.paid_orders, customer.total_spent_cents) == (1, 6580)


def test_idempotent_create_and_pay(client: TestClient, db: Session, merchant: Merchant, buyer) -> None:
    customer, headers = buyer
    sku = make_sku(db, merchant=merchant, stock=5)
    body = checkout_body([(sku, 1)])
    first = client.post(f"{base(merchant)}/orders", json=body, headers={**headers, "Idempotency-Key": "same"})
    again = client.post(f"{base(merchant)}/orders", json=body, headers={**headers, "Idempotency-Key": "same"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert stock(db, sku) == 4
    assert db.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer.id)) == 1
    other = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 2)]),
                        headers={**headers, "Idempotency-Key": "same"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    oid = first.json()["id"]
    p1 = client.post(f"{base(merchant)}/orders/{oid}/pay", json={"method": "sandbox"},
                     headers={**headers, "Idempotency-Key": "pay"})
    p2 = client.post(f"{base(merchant)}/orders/{oid}/pay", json={"method": "sandbox"},
                     headers={**headers, "Idempotency-Key": "pay"})
    assert p1.status_code == 200 and p1.json() == p2.json()
    r = client.get(f"{base(merchant)}/orders/{oid}", headers=headers)
    assert len(r.json()["payments"]) == 1


def test_out_of_stock_over_http(client: TestClient, db: Session, merchant: Merchant, buyer) -> None:
    _, headers = buyer
    sku = make_sku(db, merchant=merchant, stock=1)
    before = count(db, Order)
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 2)]), headers=headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "out_of_stock" and r.json()["error"]["details"]["sku_id"] == sku.id
    assert count(db, Order) == before and stock(db, sku) == 1


def test_cancel_releases_stock_and_only_while_pending(client: TestClient, db: Session, merchant: Merchant,
                                                      buyer) -> None:
    customer, headers = buyer
    sku = make_sku(db, merchant=merchant, stock=3)
    oid = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 2)]), headers=headers).json()["id"]
    r = client.post(f"{base(merchant)}/orders/{oid}/cancel", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert stock(db, sku) == 3
    r = client.post(f"{base(merchant)}/orders/{oid}/cancel", headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    assert stock(db, sku) == 3
    paid = make_order(db, merchant=merchant, customer=customer, status="paid")
    r = client.post(f"{base(merchant)}/orders/{paid.id}/cancel", headers=headers)
    assert r.status_code == 409
    db.refresh(paid)
    assert paid.status == "paid"


def test_pickup_over_http(client: TestClient, db: Session, merchant: Merchant, buyer) -> None:
    customer, headers = buyer
    store, other = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    order = make_order(db, merchant=merchant, customer=customer, fulfilment=pickup(store), status="paid")
    mine = client.get(f"{base(merchant)}/orders/{order.id}", headers=headers).json()
    assert mine["status"] == "ready_for_pickup" and mine["pickup_code"] == order.pickup_code
    qr = client.get(f"{base(merchant)}/orders/{order.id}/pickup-qr.svg", headers=headers)
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    elsewhere = auth_headers(db, make_staff(db, merchant=merchant, role="store_manager", store=other))
    r = client.post(f"/api/v1/admin/orders/{order.id}/verify-pickup", json={"code": order.pickup_code},
                    headers=elsewhere)
    assert r.status_code == 404
    here = auth_headers(db, make_staff(db, merchant=merchant, role="store_manager", store=store))
    staff_view = client.get(f"/api/v1/admin/orders/{order.id}", headers=here).json()
    assert "pickup_code" not in staff_view
    r = client.post("/api/v1/admin/pickups/verify", json={"code": order.pickup_code}, headers=here)
    assert r.status_code == 200 and r.json()["status"] == "completed"


def test_refund_over_http(client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    customer, headers = buyer
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=5)
    order = make_order(db, merchant=merchant, customer=customer, items=[(sku, 3)], status="shipped")
    line_id = service.order_lines(db, order.id)[0].id
    r = client.post(f"{base(merchant)}/orders/{order.id}/refunds",
                    json={"lines": [{"order_line_id": line_id, "quantity": 4}], "reason": "多退"}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "refund_exceeds_paid"
    r = client.post(f"{base(merchant)}/orders/{order.id}/refunds",
                    json={"lines": [{"order_line_id": line_id, "quantity": 1}], "reason": "坏了",
                          "photos": ["/media/1/a.jpg"]}, headers=headers)
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["status"], refund["amount_cents"]) == ("pending", 1000)
    listed = client.get("/api/v1/admin/refunds?status=pending", headers=admin).json()["items"]
    assert [x["id"] for x in listed] == [refund["id"]]
    r = client.post(f"/api/v1/admin/refunds/{refund['id']}/approve", json={"restock": True}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    assert stock(db, sku) == 3
    r = client.post(f"/api/v1/admin/refunds/{refund['id']}/reject", json={"reason": "x"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "refund_decided"
    detail = client.get(f"/api/v1/admin/orders/{order.id}", headers=admin).json()
    assert (detail["status"], detail["refunded_cents"]) == ("shipped", 1000)
    assert [x["amount_cents"] for x in detail["refunds"]] == [1000]


def test_customer_and_tenant_isolation(client: TestClient, db: Session, merchant: Merchant, buyer) -> None:
    _, headers = buyer
    someone_else = make_order(db, merchant=merchant)
    elsewhere = make_merchant(db)
    foreign = make_order(db, merchant=elsewhere)
    for oid in (someone_else.id, foreign.id):
        assert client.get(f"{base(merchant)}/orders/{oid}", headers=headers).status_code == 404
        assert client.post(f"{base(merchant)}/orders/{oid}/cancel", headers=headers).status_code == 404
        assert client.post(f"{base(merchant)}/orders/{oid}/pay", json={"method": "sandbox"},
                           headers=headers).status_code == 404
    # a token of this merchant does not work on another shop
    assert client.get(f"{base(elsewhere)}/orders", headers=headers).status_code == 401
    # staff of another merchant do not see the order
    foreign_admin = auth_headers(db, make_staff(db, merchant=elsewhere))
    assert client.get(f"/api/v1/admin/orders/{someone_else.id}", headers=foreign_admin).status_code == 404
    ids = [o["id"] for o in client.get("/api/v1/admin/orders", headers=foreign_admin).json()["items"]]
    assert ids == [foreign.id]
    # a foreign SKU cannot be bought here
    sku = make_sku(db, merchant=elsewhere)
    r = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 1)]), headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "sku_unavailable"


def test_admin_list_scopes_and_filters(client: TestClient, db: Session, merchant: Merchant, admin) -> None:
    store_a, store_b = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role="guide", store=store_a)
    mine = make_order(db, merchant=merchant, customer=make_customer(db, merchant=merchant, owner=guide))
    at_a = make_order(db, merchant=merchant, customer=make_customer(db, merchant=merchant, store=store_a),
                      status="paid")
    at_b = make_order(db, merchant=merchant, customer=make_customer(db, merchant=merchant, store=store_b))

    def ids(headers, query=""):
        r = client.get(f"/api/v1/admin/orders{query}", headers=headers)
        assert r.status_code == 200, r.text
        return sorted(o["id"] for o in r.json()["items"])

    assert ids(admin) == sorted([mine.id, at_a.id, at_b.id])
    assert ids(auth_headers(db, guide)) == [mine.id]
    manager_a = auth_headers(db, make_staff(db, merchant=merchant, role="store_manager", store=store_a))
    assert ids(manager_a) == sorted([mine.id, at_a.id])
    assert ids(admin, "?status=paid") == [at_a.id]
    assert ids(admin, f"?store_id={store_b.id}") == [at_b.id]
    assert ids(admin, f"?q={at_b.order_no}") == [at_b.id]
    assert ids(admin, "?fulfilment_type=pickup") == []
    today = clock.today_local().isoformat()
    assert len(ids(admin, f"?created_from={today}&created_to={today}")) == 3
    page = client.get("/api/v1/admin/orders?limit=2", headers=admin).json()
    rest = client.get(f"/api/v1/admin/orders?limit=2&cursor={page['next_cursor']}", headers=admin).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_export_is_audited_and_masks_for_guides(client: TestClient, db: Session, merchant: Merchant, admin) -> None:
    make_order(db, merchant=merchant, status="paid")
    r = client.get("/api/v1/admin/orders/export.csv", headers=admin)
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("order_no,created_at,status")
    assert "13812345678" in text
    assert db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "orders.export")) == 1
    guide = auth_headers(db, make_staff(db, merchant=merchant, role="guide", store=make_store(db, merchant=merchant)))
    assert client.get("/api/v1/admin/orders/export.csv", headers=guide).status_code == 403


def test_cart_and_addresses(client: TestClient, db: Session, merchant: Merchant, buyer) -> None:
    customer, headers = buyer
    sku = make_sku(db, merchant=merchant, price_cents=500)
    r = client.post(f"{base(merchant)}/cart/lines", json={"sku_id": sku.id, "quantity": 2}, headers=headers)
    assert r.status_code == 201
    line_id = r.json()["id"]
    client.post(f"{base(merchant)}/cart/lines", json={"sku_id": sku.id, "quantity": 1}, headers=headers)
    cart = client.get(f"{base(merchant)}/cart/lines", headers=headers).json()
    assert [(i["sku_id"], i["quantity"], i["subtotal_cents"]) for i in cart["items"]] == [(sku.id, 3, 1500)]
    assert cart["selected_subtotal_cents"] == 1500
    r = client.patch(f"{base(merchant)}/cart/lines/{line_id}", json={"quantity": 5, "selected": False},
                     headers=headers)
    assert (r.json()["quantity"], r.json()["selected"]) == (5, False)
    # addresses
    r = client.post(f"{base(merchant)}/addresses", json=ADDRESS, headers=headers)
    assert r.status_code == 201 and r.json()["is_default"] is True
    address_id = r.json()["id"]
    second = client.post(f"{base(merchant)}/addresses", json={**ADDRESS, "name": "李四", "is_default": True},
                         headers=headers).json()
    listed = client.get(f"{base(merchant)}/addresses", headers=headers).json()["items"]
    assert [(a["id"], a["is_default"]) for a in listed] == [(second["id"], True), (address_id, False)]
    # order from the cart with an address from the book
    body = checkout_body([(sku, 5)], fulfilment={"type": "delivery", "address_id": address_id}, from_cart=True)
    r = client.post(f"{base(merchant)}/orders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["fulfilment"]["address"]["name"] == "张三"
    assert db.scalar(select(func.count()).select_from(CartLine).where(CartLine.customer_id == customer.id)) == 0
    assert client.delete(f"{base(merchant)}/addresses/{second['id']}", headers=headers).status_code == 204
    listed = client.get(f"{base(merchant)}/addresses", headers=headers).json()["items"]
    assert [(a["id"], a["is_default"]) for a in listed] == [(address_id, True)]
    # someone else's cart line and address are not found
    other = customer_headers(db, make_customer(db, merchant=merchant))
    assert client.delete(f"{base(merchant)}/addresses/{address_id}", headers=other).status_code == 404
    assert client.patch(f"{base(merchant)}/cart/lines/{line_id}", json={"quantity": 1}, headers=other).status_code == 404


def test_late_sandbox_payment_after_expiry_is_refunded(client: TestClient, db: Session, merchant: Merchant,
                                                       buyer) -> None:
    _, headers = buyer
    sku = make_sku(db, merchant=merchant, stock=2)
    start = dt.datetime.now(dt.UTC)
    oid = client.post(f"{base(merchant)}/orders", json=checkout_body([(sku, 1)]), headers=headers).json()["id"]
    started = client.post(f"{base(merchant)}/orders/{oid}/pay", json={"method": "sandbox"}, headers=headers).json()
    service.expire_unpaid(db, start + dt.timedelta(minutes=16))
    db.flush()
    # the payment was closed on expiry; the provider's notification arrives anyway
    from siyu.payments.models import Payment
    from tests.factories.payments import sandbox_notification

    payment = db.get(Payment, started["payment_id"])
    assert payment.status == "closed"
    notify_headers, notify_body = sandbox_notification(payment)
    r = client.post(f"/webhooks/pay/sandbox/{merchant.slug}", content=notify_body, headers=notify_headers)
    assert r.status_code == 200, r.text
    detail = client.get(f"{base(merchant)}/orders/{oid}", headers=headers).json()
    assert detail["status"] == "cancelled"
    assert detail["payments"][0]["refunded_cents"] == detail["payments"][0]["amount_cents"]
    assert stock(db, sku) == 2


@pytest.mark.parametrize("body", [
    {"items": [], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": 1, "quantity": 0}], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": 1, "quantity": 1000}], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": -1, "quantity": 1}], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": 2**60, "quantity": 1}], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": "x", "quantity": 1}], "fulfilment": {"type": "delivery", "address": ADDRESS}},
    {"items": [{"sku_id": 1, "quantity": 1}], "fulfilment": {"type": "teleport"}},
    {"items": [{"sku_id": 1, "quantity": 1}], "fulfilment": {"type": "leader", "leader_id": 0}},
    {"items": [{"sku_id": 1, "quantity": 1}], "fulfilment": {"type": "delivery", "address": {**ADDRESS, "detail": "x" * 5000}}},
    {"items": [{"sku_id": 1, "quantity": 1}], "fulfilment": {"type": "delivery"}},
    {"items": [{"sku_id": 1, "quantity": 1}], "fulfilment": {"type": "pickup", "store_id": 999999}},
    {"items": [{"sku_id": 1, "quantity": 1}] * 51, "fulfilment": {"type": "pickup", "store_id": 1}},
    {"items": [{"sku_id": 1, "quantity": 1}], "points": -1, "fulfilment": {"type": "pickup", "store_id": 1}},
    {"items": [{"sku_id": 1, "quantity": 1}], "share_code": "x" * 100, "fulfilment": {"type": "pickup", "store_id": 1}},
    "not an object",
    [1, 2, 3],
])
def test_bad_checkout_input_is_4xx(client: TestClient, db: Session, merchant: Merchant, buyer, body) -> None:
    _, headers = buyer
    before = count(db, Order)
    for path in ("checkout/preview", "orders"):
        r = client.post(f"{base(merchant)}/{path}", json=body, headers=headers)
        assert 400 <= r.status_code < 500, r.text
        assert "error" in r.json()
    assert count(db, Order) == before


def test_more_bad_input_is_4xx(client: TestClient, db: Session, merchant: Merchant, buyer, admin) -> None:
    _, headers = buyer
    order = make_order(db, merchant=merchant, status="paid")
    cases = [
        ("post", f"{base(merchant)}/orders", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("post", f"{base(merchant)}/orders/abc/pay", {"json": {"method": "sandbox"}}),
        ("post", f"{base(merchant)}/orders/1/pay", {"json": {"method": "bitcoin"}}),
        ("post", f"{base(merchant)}/orders/{2**62}/cancel", {}),
        ("post", f"{base(merchant)}/orders/{order.id}/refunds", {"json": {"reason": ""}}),
        ("post", f"{base(merchant)}/orders/{order.id}/refunds", {"json": {"reason": "x", "photos": ["javascript:1"]}}),
        ("post", f"{base(merchant)}/cart/lines", {"json": {"sku_id": 1, "quantity": 10**12}}),
        ("post", f"{base(merchant)}/addresses", {"json": {**ADDRESS, "phone": "abc"}}),
        ("get", f"{base(merchant)}/orders?limit=1000", {}),
        ("get", f"{base(merchant)}/orders?cursor=%%%", {}),
        ("get", f"{base(merchant)}/orders?status=lost", {}),
    ]
    for method, url, kwargs in cases:
        r = getattr(client, method)(url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    admin_cases = [
        ("post", f"/api/v1/admin/orders/{order.id}/ship", {"json": {"carrier": "顺丰", "tracking_no": "<script>"}}),
        ("post", f"/api/v1/admin/orders/{order.id}/ship", {"json": {"carrier": "x" * 100, "tracking_no": "SF123"}}),
        ("post", f"/api/v1/admin/orders/{order.id}/verify-pickup", {"json": {"code": "12ab56"}}),
        ("post", "/api/v1/admin/refunds/0/approve", {"json": {}}),
        ("post", "/api/v1/admin/refunds/99999999/reject", {"json": {"reason": "x"}}),
        ("get", "/api/v1/admin/orders?created_from=yesterday", {}),
        ("get", "/api/v1/admin/orders?fulfilment_type=drone", {}),
        ("get", "/api/v1/admin/orders?q=" + "1" * 100, {}),
        ("post", "/api/v1/admin/orders/bulk-ship", {"json": {"csv": ""}}),
        ("patch", "/api/v1/admin/order-settings", {"json": {"order_expiry_minutes": 0}}),
    ]
    for method, url, kwargs in admin_cases:
        r = getattr(client, method)(url, headers=admin, **kwargs)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    db.refresh(order)
    assert order.status == "paid"
    assert count(db, RefundRequest) == 0


def test_unauthenticated_is_401(client: TestClient, db: Session, merchant: Merchant) -> None:
    assert client.get(f"{base(merchant)}/orders").status_code == 401
    assert client.get("/api/v1/admin/orders").status_code == 401
    assert client.post(f"{base(merchant)}/checkout/preview", json={}).status_code in (401, 422)
