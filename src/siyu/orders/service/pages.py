"""What the console and H5 pages need beyond the API's use cases: placing an order once per form
(the hidden idempotency key), reusing an open sandbox payment, finding a pickup by its code before
verifying it, and the names a page shows beside ids."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, Role, system_principal
from siyu.core.errors import NotFound, PermissionDenied, field_error
from siyu.core.idempotency import run_idempotent
from siyu.customers import service as customers
from siyu.merchants import service as merchants
from siyu.orders.models import Order, OrderHistory, RefundRequest
from siyu.orders.schemas import AddressIn, CheckoutRequest, DeliveryFulfilment
from siyu.orders.service.addresses import create_address
from siyu.orders.service.catalog_facts import load_skus
from siyu.orders.service.checkout import create_order
from siyu.orders.service.common import get_order
from siyu.orders.service.lifecycle import pay_order
from siyu.orders.states import OrderStatus
from siyu.payments import service as payments

__all__ = ["actor_names", "basket", "find_pickup", "order_people", "orders_by_ids", "place_order_once", "sandbox_pay_url", "shop_stores", "staff_stores"]


def basket(session: Session, *, actor: Principal, items: list[dict[str, int]]) -> list[dict[str, Any]]:
    """The items of a checkout as they cost now, before fulfilment is known (title, spec, unit price,
    quantity, subtotal, stock); SKUs no longer for sale are marked unavailable."""
    skus = load_skus(session, merchant_id=actor.merchant_id, sku_ids=[i["sku_id"] for i in items])
    out = []
    for item in items:
        info = skus.get(item["sku_id"])
        out.append({"sku_id": item["sku_id"], "quantity": item["quantity"],
                    "title": info.title if info else "", "spec_text": info.spec_text if info else "",
                    "image_url": (info.image or "") if info else "", "product_id": info.product_id if info else None,
                    "unit_price_cents": info.price_cents if info else 0,
                    "subtotal_cents": info.price_cents * item["quantity"] if info else 0,
                    "stock": info.stock if info else 0, "available": bool(info and info.sellable)})
    return out


def place_order_once(session: Session, *, actor: Principal, request: CheckoutRequest, key: str | None,
                     from_cart: bool = False, new_address: AddressIn | None = None,
                     save_address: bool = False) -> Order:
    """Place the order of one checkout form. The form's key makes a double submit place one order:
    the second submit gets the first's order. A new delivery address typed into the form is used
    (and saved to the address book when asked). All or nothing: when the order cannot be placed
    (out of stock), nothing of it is kept, not even the saved address or the key."""
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    payload = {"request": request.model_dump(mode="json"), "from_cart": from_cart,
               "new_address": new_address.model_dump() if new_address else None, "save_address": save_address}

    def create() -> tuple[int, dict[str, Any]]:
        req = request
        if new_address is not None:
            if save_address:
                row = create_address(session, actor=actor, **new_address.model_dump())
                fulfilment = DeliveryFulfilment(type="delivery", address_id=row.id)
            else:
                fulfilment = DeliveryFulfilment(type="delivery", address=new_address)
            req = request.model_copy(update={"fulfilment": fulfilment})
        order = create_order(session, actor=actor, request=req, from_cart=from_cart)
        return 201, {"id": order.id}

    with session.begin_nested():
        response = run_idempotent(session, merchant_id=actor.merchant_id,
                                  scope=f"orders.create.h5:customer:{actor.customer_id}", key=key or None,
                                  payload=payload, fn=create)
    order_id = int(json.loads(bytes(response.body))["id"])
    return get_order(session, order_id, actor=actor)


def sandbox_pay_url(session: Session, order_id: int, *, actor: Principal, slug: str) -> str:
    """Where the customer pays a pending order in the sandbox: its open sandbox payment when there
    is one for the amount due, else a new one (409 `order_not_payable` unless pending)."""
    order = get_order(session, order_id, actor=actor)
    if order.status == OrderStatus.PENDING_PAYMENT:
        now = clock.now()
        for p in reversed(payments.payments_for_order(session, merchant_id=order.merchant_id, order_id=order.id)):
            if p.method == "sandbox" and p.status == "created" and p.amount_cents == order.payable_cents \
                    and (p.expires_at is None or p.expires_at > now):
                return f"/shop/{slug}/pay/{p.id}"
    started = pay_order(session, order.id, actor=actor, method="sandbox")
    return started.pay_page_url or f"/shop/{slug}/pay/{started.payment_id}"


def find_pickup(session: Session, *, actor: Principal, code: str) -> Order:
    """The order waiting for pickup with this code at one of the staff member's stores (a brand
    admin: any store), without verifying it; 404 `pickup_code_not_found` otherwise."""
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()
    actor.require("orders.fulfil")
    code = (code or "").strip()
    if not code.isdigit() or not 6 <= len(code) <= 8:
        raise field_error("code", "Enter the 6–8 digit pickup code.")
    order = session.scalars(select(Order).where(Order.merchant_id == actor.merchant_id,
                                                Order.status == OrderStatus.READY_FOR_PICKUP.value,
                                                Order.pickup_code == code)).first()
    at_my_store = order is not None and (actor.kind == "system" or actor.role == Role.BRAND_ADMIN
                                         or order.pickup_store_id in actor.store_ids)
    if order is None or not at_my_store:
        raise NotFound("No order is waiting for pickup with this code.", code="pickup_code_not_found")
    return order


def orders_by_ids(session: Session, *, actor: Principal, ids: list[int]) -> dict[int, Order]:
    """The orders among `ids` in the actor's scope (others are absent)."""
    out: dict[int, Order] = {}
    for order_id in dict.fromkeys(ids):
        try:
            out[order_id] = get_order(session, order_id, actor=actor)
        except NotFound:
            continue
    return out


def order_people(session: Session, order: Order) -> dict[str, Any]:
    """The names a page shows beside the order's ids: customer, store, pickup store and guide."""
    system = system_principal(order.merchant_id)
    try:
        nickname = customers.get_customer(session, order.customer_id, actor=system).nickname
    except NotFound:
        nickname = ""
    stores = customers.store_names_of(session, order.merchant_id,
                                      [i for i in (order.store_id, order.pickup_store_id) if i])
    guides = merchants.staff_names(session, order.merchant_id, [order.owner_id] if order.owner_id else [])
    return {"customer_nickname": nickname, "store_name": stores.get(order.store_id or 0, ""),
            "pickup_store_name": stores.get(order.pickup_store_id or 0, ""),
            "guide_name": guides.get(order.owner_id or 0, "")}


def actor_names(session: Session, merchant_id: int, history: list[OrderHistory],
                refunds: Sequence[RefundRequest] = ()) -> dict[str, str]:
    """"staff:<id>" and "customer:<id>" → a display name, for the history and refund reviewers."""
    staff_ids = [h.actor_id for h in history if h.actor_type == "staff" and h.actor_id]
    staff_ids += [r.reviewed_by for r in refunds if r.reviewed_by]
    names = {f"staff:{i}": n for i, n in merchants.staff_names(session, merchant_id, staff_ids).items()}
    system = system_principal(merchant_id)
    for customer_id in {h.actor_id for h in history if h.actor_type == "customer" and h.actor_id}:
        try:
            names[f"customer:{customer_id}"] = customers.get_customer(session, customer_id, actor=system).nickname
        except NotFound:
            continue
    return names


def shop_stores(session: Session, *, merchant_id: int, lat: float | None = None,
                lng: float | None = None) -> list[tuple[Any, int | None]]:
    """The stores customers may pick up at, nearest first when a location is given."""
    return merchants.stores_for_shop(session, merchant_id=merchant_id, lat=lat, lng=lng)


def staff_stores(session: Session, *, actor: Principal) -> list[Any]:
    """The stores in the staff member's scope (for the filter bar)."""
    return merchants.list_stores(session, actor=actor)
