"""Merging two customers moves their orders, refunds, payments, cart and address book to the one kept."""

from __future__ import annotations

from sqlalchemy import select

from siyu.orders import service
from siyu.orders.models import CartLine, CustomerAddress, Order
from siyu.payments.models import Payment
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff
from tests.factories.orders import customer_principal, make_order, make_sku

ADDRESS = {"name": "王五", "phone": "13800001111", "province": "上海市", "city": "上海市", "district": "黄浦区",
           "detail": "南京东路 1 号"}


def test_merge_moves_orders_payments_cart_and_addresses(db, client):
    # given a source customer with a paid order, an address and a cart, and a target with a cart
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    source = make_customer(db, merchant=merchant, nickname="旧号")
    target = make_customer(db, merchant=merchant, nickname="新号")
    order = make_order(db, merchant=merchant, customer=source, status="paid")
    sku = make_sku(db, merchant=merchant)
    other = make_sku(db, merchant=merchant)
    service.add_to_cart(db, actor=customer_principal(source), sku_id=sku.id, quantity=2)
    service.add_to_cart(db, actor=customer_principal(source), sku_id=other.id, quantity=1)
    service.add_to_cart(db, actor=customer_principal(target), sku_id=sku.id, quantity=3)
    service.create_address(db, actor=customer_principal(source), **ADDRESS)
    db.flush()
    # when staff merge the source into the target
    r = client.post(f"/api/v1/admin/customers/{target.id}/merge", json={"source_id": source.id},
                    headers=auth_headers(db, admin))
    # then everything of the source belongs to the target
    assert r.status_code == 200, r.text
    db.expire_all()
    assert db.get(Order, order.id).customer_id == target.id
    assert {p.customer_id for p in db.scalars(select(Payment).where(Payment.order_id == order.id))} == {target.id}
    cart = {(c.sku_id, c.quantity) for c in db.scalars(select(CartLine).where(CartLine.customer_id == target.id))}
    assert cart == {(sku.id, 5), (other.id, 1)}
    assert db.scalars(select(CartLine).where(CartLine.customer_id == source.id)).all() == []
    addresses = db.scalars(select(CustomerAddress).where(CustomerAddress.customer_id == target.id)).all()
    assert [a.detail for a in addresses] == ["南京东路 1 号"]
