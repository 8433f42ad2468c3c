"""Factories for orders: sellable SKUs, signed-in customers, checkout bodies and orders in any status."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.catalog.models import Sku
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.customers.models import Customer
from siyu.customers.signin import issue_customer_token
from siyu.merchants.models import Merchant, Store
from siyu.orders import service
from siyu.orders.models import Order
from siyu.orders.schemas import CheckoutRequest
from siyu.orders.service.common import lock_order
from siyu.orders.states import OrderStatus
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.payments import make_payment

_seq = itertools.count(1)

ADDRESS = {"name": "张三", "phone": "13812345678", "province": "上海市", "city": "上海市", "district": "黄浦区",
           "detail": "南京东路 1 号"}


def make_sku(session: Session, *, merchant: Merchant, price_cents: int = 1000, stock: int = 10, status: str = "on_sale",
             title: str | None = None) -> Sku:
    """A product with one SKU at `price_cents` and `stock` units; returns the SKU."""
    product = make_product(session, merchant=merchant, skus=[{"spec": {}, "price_cents": price_cents, "stock": stock}],
                           status=status, title=title)
    return session.scalars(select(Sku).where(Sku.product_id == product.id)).one()


def customer_principal(customer: Customer) -> Principal:
    return Principal(merchant_id=customer.merchant_id, kind="customer", subject_id=customer.id, name=customer.nickname)


def customer_headers(session: Session, customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_customer_token(session, customer)}"}


def delivery(address: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "delivery", "address": dict(address or ADDRESS)}


def pickup(store: Store) -> dict[str, Any]:
    return {"type": "pickup", "store_id": store.id}


def checkout_body(items: list[tuple[Sku | int, int]], *, fulfilment: dict[str, Any] | None = None,
                  **extra: Any) -> dict[str, Any]:
    return {"items": [{"sku_id": s if isinstance(s, int) else s.id, "quantity": q} for s, q in items],
            "fulfilment": fulfilment or delivery(), **extra}


def place_order(session: Session, *, customer: Customer, items: list[tuple[Sku | int, int]],
                fulfilment: dict[str, Any] | None = None, **extra: Any) -> Order:
    request = CheckoutRequest.model_validate(checkout_body(items, fulfilment=fulfilment, **extra))
    return service.create_order(session, actor=customer_principal(customer), request=request)


def pay(session: Session, order: Order) -> Order:
    """Pay an order as a sandbox payment notification would (a succeeded payment row, then the
    handler's work)."""
    payment = make_payment(session, merchant=session.get(Merchant, order.merchant_id),
                           customer=session.get(Customer, order.customer_id), order_id=order.id,
                           amount_cents=order.payable_cents, status="succeeded", order_no=order.order_no)
    service.record_payment(session, merchant_id=order.merchant_id, order_id=order.id, payment_id=payment.id,
                           amount_cents=payment.amount_cents, paid_at=clock.now())
    session.refresh(order)
    return order


def make_order(session: Session, *, merchant: Merchant, customer: Customer | None = None,
               items: list[tuple[Sku | int, int]] | None = None, status: str = "pending_payment",
               fulfilment: dict[str, Any] | None = None, price_cents: int = 1000, stock: int = 10) -> Order:
    """An order placed through the service, then moved to `status` (paid, shipped, completed,
    cancelled, ready_for_pickup) the way the real flow does."""
    customer = customer or make_customer(session, merchant=merchant, nickname=f"顾客{next(_seq)}")
    if items is None:
        items = [(make_sku(session, merchant=merchant, price_cents=price_cents, stock=stock), 1)]
    order = place_order(session, customer=customer, items=items, fulfilment=fulfilment)
    system = system_principal(merchant.id)
    if status == OrderStatus.PENDING_PAYMENT:
        return order
    if status == OrderStatus.CANCELLED:
        return service.cancel_order(session, order.id, actor=system)
    pay(session, order)
    if status in (OrderStatus.PAID, OrderStatus.READY_FOR_PICKUP):
        return order
    if status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
        service.ship_order(session, order.id, actor=system, carrier="顺丰", tracking_no=f"SF{order.id:010d}")
        if status == OrderStatus.COMPLETED:
            order = lock_order(session, order.id)
            service.change_status(session, order, OrderStatus.COMPLETED, actor=None)
        session.refresh(order)
        return order
    raise ValueError(f"make_order cannot make status {status!r}")


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)
