"""End to end over HTTP: a guide shares a product, a new visitor opens the link, signs in, buys and pays in
the sandbox — the order and the customer are attributed to that guide and store, and a second guide's
share inside the protection period changes the next order's last-touch sharer but not the ownership."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import AttributedOrder, BindingHistory
from siyu.core.auth import Role
from siyu.customers.models import Customer
from siyu.orders.models import Order
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store
from tests.factories.orders import checkout_body, customer_headers, make_sku


def buy(client: TestClient, slug: str, headers: dict[str, str], sku_id: int, key: str,
        share_code: str | None = None) -> dict:
    body = checkout_body([(sku_id, 1)], **({"share_code": share_code} if share_code else {}))
    order = client.post(f"/api/v1/shop/{slug}/orders", json=body, headers={**headers, "Idempotency-Key": key})
    assert order.status_code == 201, order.text
    pay = client.post(f"/api/v1/shop/{slug}/orders/{order.json()['id']}/pay", json={"method": "sandbox"},
                      headers={**headers, "Idempotency-Key": key + "-pay"})
    assert pay.status_code == 200, pay.text
    confirm = client.post(pay.json()["sandbox_confirm_url"], headers=headers)
    assert confirm.status_code == 200, confirm.text
    return order.json()


def test_a_guides_share_attributes_the_new_customer_and_their_order(db: Session, client: TestClient) -> None:
    # given: a store with two guides and a product
    merchant = make_merchant(db)
    store, other_store = make_store(db, merchant=merchant, name="徐汇店"), make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, name="导购小周")
    rival = make_staff(db, merchant=merchant, role=Role.GUIDE, store=other_store, name="导购小吴")
    admin = make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN)
    sku = make_sku(db, merchant=merchant, price_cents=8800)
    slug = merchant.slug

    # when: the guide shares the product over the API
    r = client.post("/api/v1/admin/shares", headers=auth_headers(db, guide),
                    json={"target_type": "product", "target_id": sku.product_id})
    assert r.status_code in (200, 201), r.text
    code = r.json()["code"]
    # a new visitor opens it (gets the visitor cookie), signs in on the H5 login page, buys and pays
    opened = client.get(f"/s/{code}", follow_redirects=False)
    assert opened.status_code in (302, 303, 307)
    login = client.post(f"/shop/{slug}/login", data={"nickname": "小新", "openid": "e2e-new-visitor",
                                                     "next": f"/shop/{slug}/"}, follow_redirects=False)
    assert login.status_code == 303
    customer = db.scalars(select(Customer).where(Customer.merchant_id == merchant.id, Customer.nickname == "小新")).one()
    customer_id = customer.id
    headers = customer_headers(db, customer)
    first = buy(client, slug, headers, sku.id, "e2e-attr-1")

    # then: the customer belongs to the guide and the store
    db.expire_all()
    customer = db.get(Customer, customer_id)
    assert (customer.owner_id, customer.store_id) == (guide.id, store.id)
    # and the paid order carries the snapshot: the guide as last-touch sharer, bound guide and store, the channel
    order = db.get(Order, first["id"])
    assert order.status == "paid"
    assert (order.owner_id, order.store_id) == (guide.id, store.id)
    snap = order.attribution
    assert (snap["share_code"], snap["sharer_staff_id"], snap["guide_id"], snap["store_id"], snap["channel"]) == (
        code, guide.id, guide.id, store.id, "chat")
    assert snap["touch_id"] is not None and snap["referrer_customer_id"] is None
    copy = db.scalars(select(AttributedOrder).where(AttributedOrder.order_id == order.id)).one()
    assert (copy.guide_id, copy.paid_cents, copy.snapshot) == (guide.id, order.paid_cents, snap)

    # when: a rival guide's share reaches the customer inside the protection period and they buy through it
    r = client.post("/api/v1/admin/shares", headers=auth_headers(db, rival),
                    json={"target_type": "product", "target_id": sku.product_id, "channel": "moments"})
    rival_code = r.json()["code"]
    assert client.get(f"/s/{rival_code}", follow_redirects=False).status_code in (302, 303, 307)
    second = buy(client, slug, headers, sku.id, "e2e-attr-2", share_code=rival_code)

    # then: the rival is the second order's last-touch sharer, but the customer and its guide stay the first guide's
    db.expire_all()
    snap2 = db.get(Order, second["id"]).attribution
    assert (snap2["sharer_staff_id"], snap2["guide_id"], snap2["store_id"], snap2["channel"]) == (
        rival.id, guide.id, store.id, "moments")
    assert db.get(Customer, customer_id).owner_id == guide.id
    assert db.get(Order, first["id"]).attribution == snap
    lines = db.scalars(select(BindingHistory).where(BindingHistory.customer_id == customer_id)).all()
    assert [(h.kind, h.action, h.to_guide_id) for h in lines] == [("guide", "bind", guide.id)]

    # and the console shows the path
    src = client.get(f"/api/v1/admin/attribution/customers/{customer_id}/source", headers=auth_headers(db, admin))
    assert [t["sharer_staff_name"] for t in src.json()["touches"]] == ["导购小周", "导购小吴"]
    assert src.json()["bindings"]["guide"]["store_name"] == "徐汇店"
