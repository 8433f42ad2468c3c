"""REST routes for cart, address book, checkout, orders, fulfilment and after-sales (API.md, Buying)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import NotFound
from siyu.core.idempotency import run_idempotent
from siyu.core.privacy import mask_phone
from siyu.core.web import DbSession, client_ip
from siyu.customers.deps import ShopCustomer
from siyu.db import run_last
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.orders import service
from siyu.orders.models import (
    CartLine,
    CustomerAddress,
    Order,
    OrderHistory,
    OrderLine,
    RefundLine,
    RefundRequest,
)
from siyu.orders.schemas import (
    AddressCreate,
    AddressRead,
    AddressUpdate,
    CancelRequest,
    CartLineCreate,
    CartLineUpdate,
    CheckoutRequest,
    Id,
    OrderSettingsIn,
    PayRequest,
    RefundApprove,
    RefundCreate,
    RefundReject,
    ShipRequest,
    VerifyPickupRequest,
)
from siyu.orders.states import OrderStatus, RefundStatus

router = APIRouter(tags=["orders"])

IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
StatusName = Literal[tuple(s.value for s in OrderStatus)]  # type: ignore[valid-type]
RefundStatusName = Literal[tuple(s.value for s in RefundStatus)]  # type: ignore[valid-type]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------- serialisers


def line_read(line: OrderLine) -> dict[str, Any]:
    return {"id": line.id, "sku_id": line.sku_id, "product_id": line.product_id, "title": line.title,
            "spec": line.spec, "image_url": line.image_url, "unit_price_cents": line.unit_price_cents,
            "quantity": line.quantity, "line_total_cents": line.line_total_cents,
            "discount_cents": line.discount_cents, "paid_cents": line.paid_cents,
            "refunded_quantity": line.refunded_quantity, "refunded_cents": line.refunded_cents}


def _fulfilment_for(order: Order, viewer: Principal | None) -> dict[str, Any]:
    data = dict(order.fulfilment or {})
    address = data.get("address")
    if address and viewer is not None and viewer.kind == "staff" and not viewer.can("customers.view_phone"):
        data["address"] = {**address, "phone": mask_phone(address.get("phone", ""))}
    return data


def order_read(order: Order, lines: list[OrderLine] | None = None, *, viewer: Principal | None = None) -> dict[str, Any]:
    """The order as the API shows it. The pickup code only to its customer."""
    data: dict[str, Any] = {
        "id": order.id, "order_no": order.order_no, "kind": order.kind or "goods", "status": order.status,
        "customer_id": order.customer_id, "owner_id": order.owner_id, "store_id": order.store_id, "fulfilment_type": order.fulfilment_type,
        "fulfilment": _fulfilment_for(order, viewer), "carrier": order.carrier, "tracking_no": order.tracking_no,
        "fulfilment_hold": order.fulfilment_hold,
        "subtotal_cents": order.subtotal_cents, "adjustments_cents": order.adjustments_cents,
        "shipping_cents": order.shipping_cents, "total_cents": order.total_cents,
        "payable_cents": order.payable_cents, "paid_cents": order.paid_cents, "refunded_cents": order.refunded_cents,
        "adjustments": [{"kind": a.get("kind"), "label": a.get("label"), "amount_cents": a.get("amount_cents")}
                        for a in (order.adjustments or [])],
        "payment_parts": [{"kind": p.get("kind"), "amount_cents": p.get("amount_cents")}
                          for p in (order.payment_parts or [])],
        "attribution": order.attribution or {}, "note": order.note, "cancel_reason": order.cancel_reason,
        "created_at": _iso(order.created_at), "expires_at": _iso(order.expires_at), "paid_at": _iso(order.paid_at),
        "shipped_at": _iso(order.shipped_at), "ready_at": _iso(order.ready_at),
        "completed_at": _iso(order.completed_at), "cancelled_at": _iso(order.cancelled_at),
        "refunded_at": _iso(order.refunded_at),
    }
    if viewer is not None and viewer.kind == "customer" and order.pickup_code:
        data["pickup_code"] = order.pickup_code
    if lines is not None:
        data["lines"] = [line_read(line) for line in lines]
    return data


def history_read(row: OrderHistory) -> dict[str, Any]:
    return {"id": row.id, "from": row.from_status, "to": row.to_status, "actor_type": row.actor_type,
            "actor_id": row.actor_id, "note": row.note, "at": _iso(row.created_at)}


def refund_read(refund: RefundRequest, lines: list[RefundLine] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": refund.id, "order_id": refund.order_id, "customer_id": refund.customer_id, "status": refund.status,
        "whole_order": refund.whole_order, "amount_cents": refund.amount_cents, "money_cents": refund.money_cents,
        "parts_cents": refund.parts_cents, "shipping_cents": refund.shipping_cents, "reason": refund.reason,
        "photos": refund.photos or [], "reject_reason": refund.reject_reason, "restock": refund.restock,
        "payment_refund_id": refund.payment_refund_id, "created_at": _iso(refund.created_at),
        "reviewed_at": _iso(refund.reviewed_at), "refunded_at": _iso(refund.refunded_at),
    }
    if lines is not None:
        data["lines"] = [{"order_line_id": rl.order_line_id, "quantity": rl.quantity, "amount_cents": rl.amount_cents}
                         for rl in lines]
    return data


def payment_brief(payment: Any) -> dict[str, Any]:
    return {"id": payment.id, "method": payment.method, "status": payment.status,
            "amount_cents": payment.amount_cents, "refunded_cents": payment.refunded_cents,
            "out_trade_no": payment.out_trade_no, "paid_at": _iso(payment.paid_at),
            "created_at": _iso(payment.created_at)}


def detail_read(detail: service.OrderDetail, *, viewer: Principal) -> dict[str, Any]:
    data = order_read(detail.order, detail.lines, viewer=viewer)
    data["history"] = [history_read(h) for h in detail.history]
    data["refunds"] = [refund_read(r, detail.refund_lines.get(r.id, [])) for r in detail.refunds]
    data["payments"] = [payment_brief(p) for p in detail.payments]
    data["after_sales_closes_at"] = _iso(detail.after_sales_closes_at)
    return data


def cart_item_read(item: service.CartItem) -> dict[str, Any]:
    line: CartLine = item.line
    sku = item.sku
    return {"id": line.id, "sku_id": line.sku_id, "quantity": line.quantity, "selected": line.selected,
            "available": item.available,
            "product_id": sku.product_id if sku else None, "title": sku.title if sku else "",
            "spec": sku.spec if sku else {}, "image_url": (sku.image or "") if sku else "",
            "price_cents": sku.price_cents if sku else None, "stock": sku.stock if sku else 0,
            "subtotal_cents": item.subtotal_cents}


def address_read(row: CustomerAddress) -> dict[str, Any]:
    return AddressRead.model_validate(row).model_dump()


# ---------------------------------------------------------------- shop: cart


@router.get("/api/v1/shop/{m}/cart/lines")
def shop_cart(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    items = service.list_cart(session, actor=customer)
    return {"items": [cart_item_read(i) for i in items], **service.cart_summary(items)}


@router.post("/api/v1/shop/{m}/cart/lines", status_code=201)
def shop_cart_add(body: CartLineCreate, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    line = service.add_to_cart(session, actor=customer, sku_id=body.sku_id, quantity=body.quantity)
    return {"id": line.id, "sku_id": line.sku_id, "quantity": line.quantity, "selected": line.selected}


@router.patch("/api/v1/shop/{m}/cart/lines/{line_id}")
def shop_cart_update(line_id: Id, body: CartLineUpdate, merchant: ShopMerchant, customer: ShopCustomer,
                     session: DbSession) -> dict:
    line = service.update_cart_line(session, line_id, actor=customer, quantity=body.quantity, selected=body.selected)
    return {"id": line.id, "sku_id": line.sku_id, "quantity": line.quantity, "selected": line.selected}


@router.delete("/api/v1/shop/{m}/cart/lines/{line_id}", status_code=204)
def shop_cart_remove(line_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> Response:
    service.remove_cart_line(session, line_id, actor=customer)
    return Response(status_code=204)


# ---------------------------------------------------------------- shop: addresses


@router.get("/api/v1/shop/{m}/addresses")
def shop_addresses(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return {"items": [address_read(a) for a in service.list_addresses(session, actor=customer)]}


@router.post("/api/v1/shop/{m}/addresses", status_code=201)
def shop_address_create(body: AddressCreate, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return address_read(service.create_address(session, actor=customer, **body.model_dump()))


@router.patch("/api/v1/shop/{m}/addresses/{address_id}")
def shop_address_update(address_id: Id, body: AddressUpdate, merchant: ShopMerchant, customer: ShopCustomer,
                        session: DbSession) -> dict:
    return address_read(service.update_address(session, address_id, actor=customer,
                                               **body.model_dump(exclude_unset=True)))


@router.delete("/api/v1/shop/{m}/addresses/{address_id}", status_code=204)
def shop_address_delete(address_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> Response:
    service.delete_address(session, address_id, actor=customer)
    return Response(status_code=204)


# ---------------------------------------------------------------- shop: checkout and orders


@router.post("/api/v1/shop/{m}/checkout/preview")
def shop_checkout_preview(body: CheckoutRequest, merchant: ShopMerchant, customer: ShopCustomer,
                          session: DbSession) -> dict:
    return service.preview(session, actor=customer, request=body)


class OrderCreate(CheckoutRequest):
    # Set when the order is placed from the cart: the bought lines leave the cart.
    from_cart: bool = False


@router.post("/api/v1/shop/{m}/orders", status_code=201)
def shop_order_create(body: OrderCreate, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                      idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    def create() -> tuple[int, dict[str, Any]]:
        order, lines = service.place_order(session, actor=customer, request=body, from_cart=body.from_cart,
                                           reserve_last=True)
        return 201, order_read(order, lines, viewer=customer)

    answer = run_idempotent(session, merchant_id=merchant.id, scope=f"orders.create:customer:{customer.customer_id}",
                            key=idempotency_key, payload=body.model_dump(mode="json"), fn=create)
    # The stock reserve, last, and the commit at once in this thread (not after the hop back to the event
    # loop that ends the request's session): a flash sale's SKU row is locked for that span alone.
    # 409 out_of_stock rolls everything back.
    run_last(session)
    session.commit()
    return answer


@router.get("/api/v1/shop/{m}/orders")
def shop_orders(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                status: StatusName | None = None, cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.list_orders(session, actor=customer, filters=service.OrderFilter(status=status),
                               cursor=cursor, limit=limit)
    lines = service.lines_of(session, [o.id for o in page.items])
    return {"items": [order_read(o, lines[o.id], viewer=customer) for o in page.items],
            "next_cursor": page.next_cursor}


@router.get("/api/v1/shop/{m}/orders/{order_id}")
def shop_order(order_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return detail_read(service.order_detail(session, order_id, actor=customer), viewer=customer)


@router.post("/api/v1/shop/{m}/orders/{order_id}/pay")
def shop_order_pay(order_id: Id, body: PayRequest, request: Request, merchant: ShopMerchant, customer: ShopCustomer,
                   session: DbSession, idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    def pay() -> tuple[int, dict[str, Any]]:
        started = service.pay_order(session, order_id, actor=customer, method=body.method, payer_openid=body.openid,
                                    client_ip=client_ip(request) or "127.0.0.1")
        return 200, started.to_dict()

    return run_idempotent(session, merchant_id=merchant.id, scope=f"orders.pay:customer:{customer.customer_id}",
                          key=idempotency_key, payload={"order_id": order_id, **body.model_dump(mode="json")}, fn=pay)


@router.post("/api/v1/shop/{m}/orders/{order_id}/cancel")
def shop_order_cancel(order_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                      body: CancelRequest | None = None) -> dict:
    order = service.cancel_order(session, order_id, actor=customer, reason=body.reason if body else "")
    return order_read(order, viewer=customer)


@router.post("/api/v1/shop/{m}/orders/{order_id}/confirm-receipt")
def shop_order_confirm(order_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return order_read(service.confirm_receipt(session, order_id, actor=customer), viewer=customer)


@router.get("/api/v1/shop/{m}/orders/{order_id}/pickup-qr.svg")
def shop_order_pickup_qr(order_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> Response:
    order = service.get_order(session, order_id, actor=customer)
    if order.status != OrderStatus.READY_FOR_PICKUP:
        raise NotFound("This order has no pickup code.", code="no_pickup_code")
    svg = service.pickup_qr_svg(order)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.post("/api/v1/shop/{m}/orders/{order_id}/refunds", status_code=201)
def shop_refund_create(order_id: Id, body: RefundCreate, merchant: ShopMerchant, customer: ShopCustomer,
                       session: DbSession) -> dict:
    refund = service.request_refund(session, order_id, actor=customer, reason=body.reason, photos=body.photos,
                                    lines=[(ln.order_line_id, ln.quantity) for ln in body.lines] or None)
    return refund_read(refund, service.refund_lines_of(session, [refund.id])[refund.id])


@router.get("/api/v1/shop/{m}/refunds")
def shop_refunds(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                 order_id: Annotated[int | None, Query(gt=0, le=2**53)] = None, cursor: Cursor = None,
                 limit: Limit = None) -> dict:
    page = service.list_refunds(session, actor=customer, order_id=order_id, cursor=cursor, limit=limit)
    lines = service.refund_lines_of(session, [r.id for r in page.items])
    return {"items": [refund_read(r, lines[r.id]) for r in page.items], "next_cursor": page.next_cursor}


# ---------------------------------------------------------------- admin: orders


def _filters(status: str | None, store_id: int | None, fulfilment_type: str | None, customer_id: int | None,
             created_from: dt.date | None, created_to: dt.date | None, q: str | None) -> service.OrderFilter:
    return service.OrderFilter(status=status, store_id=store_id, fulfilment_type=fulfilment_type,
                               customer_id=customer_id, created_from=created_from, created_to=created_to, q=q)


OptId = Annotated[int | None, Query(gt=0, le=2**53)]
FulfilmentName = Literal["delivery", "pickup", "leader"]
OrderNo = Annotated[str | None, Query(max_length=40)]


@router.get("/api/v1/admin/orders")
def admin_orders(session: DbSession, principal: Staff, status: StatusName | None = None, store_id: OptId = None,
                 fulfilment_type: FulfilmentName | None = None, customer_id: OptId = None,
                 created_from: dt.date | None = None, created_to: dt.date | None = None, q: OrderNo = None,
                 cursor: Cursor = None, limit: Limit = None) -> dict:
    f = _filters(status, store_id, fulfilment_type, customer_id, created_from, created_to, q)
    page = service.list_orders(session, actor=principal, filters=f, cursor=cursor, limit=limit)
    lines = service.lines_of(session, [o.id for o in page.items])
    return {"items": [order_read(o, lines[o.id], viewer=principal) for o in page.items],
            "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/orders/export.csv")
def admin_orders_export(session: DbSession, principal: Staff, status: StatusName | None = None,
                        store_id: OptId = None, fulfilment_type: FulfilmentName | None = None,
                        customer_id: OptId = None, created_from: dt.date | None = None,
                        created_to: dt.date | None = None, q: OrderNo = None) -> StreamingResponse:
    f = _filters(status, store_id, fulfilment_type, customer_id, created_from, created_to, q)
    rows = service.export_rows(session, actor=principal, filters=f)
    name = f"orders-{clock.today_local():%Y%m%d}.csv"
    return StreamingResponse(service.iter_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class BulkShipRequest(BaseModel):
    csv: Annotated[str, Field(min_length=1, max_length=1_000_000)]


@router.post("/api/v1/admin/orders/bulk-ship")
def admin_orders_bulk_ship(body: BulkShipRequest, session: DbSession, principal: Staff) -> dict:
    report = service.bulk_ship_csv(session, actor=principal, text=body.csv)
    return {"shipped": sum(1 for r in report if r.ok), "failed": sum(1 for r in report if not r.ok),
            "rows": [{"row": r.row, "order_no": r.order_no, "ok": r.ok, "order_id": r.order_id, "code": r.code,
                      "error": r.error} for r in report]}


@router.get("/api/v1/admin/orders/{order_id}")
def admin_order(order_id: Id, session: DbSession, principal: Staff) -> dict:
    return detail_read(service.order_detail(session, order_id, actor=principal), viewer=principal)


@router.post("/api/v1/admin/orders/{order_id}/ship")
def admin_order_ship(order_id: Id, body: ShipRequest, session: DbSession, principal: Staff) -> dict:
    order = service.ship_order(session, order_id, actor=principal, carrier=body.carrier, tracking_no=body.tracking_no)
    return order_read(order, viewer=principal)


@router.post("/api/v1/admin/orders/{order_id}/verify-pickup")
def admin_order_verify(order_id: Id, body: VerifyPickupRequest, session: DbSession, principal: Staff) -> dict:
    return order_read(service.verify_pickup(session, order_id, actor=principal, code=body.code), viewer=principal)


@router.post("/api/v1/admin/orders/{order_id}/cancel")
def admin_order_cancel(order_id: Id, session: DbSession, principal: Staff, body: CancelRequest | None = None) -> dict:
    order = service.cancel_order(session, order_id, actor=principal, reason=body.reason if body else "")
    return order_read(order, viewer=principal)


@router.post("/api/v1/admin/pickups/verify")
def admin_pickup_verify(body: VerifyPickupRequest, session: DbSession, principal: Staff) -> dict:
    return order_read(service.verify_pickup_code(session, actor=principal, code=body.code), viewer=principal)


# ---------------------------------------------------------------- admin: refunds


@router.get("/api/v1/admin/refunds")
def admin_refunds(session: DbSession, principal: Staff, status: RefundStatusName | None = None,
                  order_id: OptId = None, cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.list_refunds(session, actor=principal, status=status, order_id=order_id, cursor=cursor, limit=limit)
    lines = service.refund_lines_of(session, [r.id for r in page.items])
    return {"items": [refund_read(r, lines[r.id]) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/refunds/{refund_id}")
def admin_refund(refund_id: Id, session: DbSession, principal: Staff) -> dict:
    refund = service.get_refund(session, refund_id, actor=principal)
    return refund_read(refund, service.refund_lines_of(session, [refund.id])[refund.id])


@router.post("/api/v1/admin/refunds/{refund_id}/approve")
def admin_refund_approve(refund_id: Id, session: DbSession, principal: Staff, body: RefundApprove | None = None) -> dict:
    refund = service.approve_refund(session, refund_id, actor=principal, restock=bool(body and body.restock))
    return refund_read(refund, service.refund_lines_of(session, [refund.id])[refund.id])


@router.post("/api/v1/admin/refunds/{refund_id}/reject")
def admin_refund_reject(refund_id: Id, body: RefundReject, session: DbSession, principal: Staff) -> dict:
    refund = service.reject_refund(session, refund_id, actor=principal, reason=body.reason)
    return refund_read(refund, service.refund_lines_of(session, [refund.id])[refund.id])


# ---------------------------------------------------------------- admin: settings


@router.get("/api/v1/admin/order-settings")
def admin_order_settings(session: DbSession, principal: Staff) -> dict:
    return service.get_order_settings(session, merchant_id=principal.merchant_id)


@router.patch("/api/v1/admin/order-settings")
def admin_order_settings_update(body: OrderSettingsIn, session: DbSession, principal: Staff) -> dict:
    data = body.model_dump(exclude_unset=True)
    return service.update_order_settings(session, actor=principal, **data)
