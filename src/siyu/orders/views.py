"""Pages of the orders domain.

H5 shop (/shop/{m}/…): cart, checkout (buy now or from the cart; delivery or store pickup), the
customer's orders with pay / cancel / confirm receipt / refund request, and the address book.
Console (/console/orders…): order list with filters, CSV export and bulk shipping, order detail with
ship / verify pickup / cancel / refund review, the pickup verification desk (核销) and after-sales.

Every page calls the orders, payments, customers and merchants services; none queries tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from pydantic import ValidationError

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.privacy import mask_phone
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.merchants.models import Merchant
from siyu.orders import service
from siyu.orders.schemas import (
    AddressIn,
    CheckoutRequest,
    DeliveryFulfilment,
    PickupFulfilment,
    ShipRequest,
)
from siyu.orders.states import (
    FULFILMENT_LABELS,
    REFUND_STATUS_LABELS,
    REFUNDABLE,
    STATUS_LABELS,
    OrderStatus,
    RefundStatus,
)

router = APIRouter(include_in_schema=False)

S = OrderStatus
PathId = Annotated[int, Path(gt=0, le=2**53)]
MAX_ID = 2**53
MAX_QUANTITY = 999
ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "detail")
LABELS = {
    "status": {k.value: v for k, v in STATUS_LABELS.items()},
    "fulfilment": FULFILMENT_LABELS,
    "refund": {k.value: v for k, v in REFUND_STATUS_LABELS.items()},
    "method": {"sandbox": "Sandbox", "wechatpay": "WeChat Pay", "balance": "Stored value"},
    "payment": {"created": "Awaiting payment", "succeeded": "Paid", "closed": "Closed", "failed": "Failed"},
    "adjustment": {"shipping": "Shipping"},
}
# The message shown for a field the address form got wrong.
ADDRESS_ERRORS = {
    "name": "Enter the receiver's name (at most 40 characters).",
    "phone": "Enter a valid phone number.",
    "province": "Enter the province (at most 40 characters).",
    "city": "Enter the city (at most 40 characters).",
    "district": "At most 40 characters.",
    "detail": "Enter the street address (at most 200 characters).",
}
SHOP_FLASH = {
    "added": "Added to your cart.",
    "updated": "Cart updated.",
    "removed": "Removed from your cart.",
    "cancelled": "The order was cancelled.",
    "received": "Thanks! The order is completed.",
    "refund": "Your refund request was sent. We will review it soon.",
    "address_saved": "Address saved.",
    "address_default": "Default address changed.",
    "address_deleted": "Address deleted.",
}
CONSOLE_FLASH = {
    "shipped": "The order was shipped.",
    "verified": "Pickup verified: the order is completed.",
    "cancelled": "The order was cancelled and its stock released.",
    "refund_approved": "Refund approved: the money was returned.",
    "refund_processing": "Refund approved: the payment provider is returning the money.",
    "refund_rejected": "Refund request rejected.",
}
SHOP_TABS = ("", S.PENDING_PAYMENT.value, S.PAID.value, S.SHIPPED.value, S.READY_FOR_PICKUP.value,
             S.COMPLETED.value, S.REFUNDING.value)


def _int(raw: Any, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """A form or query value as an int within bounds; None when empty; ValueError when not valid."""
    text = (raw or "").strip() if isinstance(raw, str) else ""
    if not text:
        return None
    if not text.isdigit() or len(text) > 17 or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def _float(raw: Any, low: float, high: float) -> float | None:
    try:
        value = float((raw or "").strip()[:20]) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if value is not None and low <= value <= high else None


def _flash(request: Request, messages: dict[str, str]) -> str | None:
    key = request.query_params.get("ok", "")
    return _(messages[key]) if key in messages else None


def _stock_message(exc: AppError, titles: dict[int, str]) -> str:
    """A clear sentence for out-of-stock and unavailable items, naming the item."""
    sku_id = exc.details.get("sku_id")
    title = titles.get(sku_id) if isinstance(sku_id, int) else None
    if exc.code == "out_of_stock":
        stock = exc.details.get("stock")
        if title and isinstance(stock, int):
            return _("Not enough stock of {title}: only {n} left. Lower the quantity and try again.",
                     title=title, n=max(stock, 0))
        return _("An item is out of stock. Lower the quantity and try again.")
    if exc.code == "sku_unavailable":
        return _("{title} is no longer for sale.", title=title) if title else _("An item is no longer for sale.")
    return exc.translated()


# ==================================================================== H5: cart


def _cart_page(request: Request, session: Any, customer: Principal, *, flash: str | None = None,
               flash_kind: str = "ok", status: int = 200) -> Response:
    items = service.list_cart(session, actor=customer)
    return render(request, "orders/shop_cart.html", {
        "tab": "cart", "items": items, "summary": service.cart_summary(items),
        "all_selected": bool(items) and all(i.line.selected for i in items),
        "flash": flash or _flash(request, SHOP_FLASH), "flash_kind": flash_kind,
    }, status_code=status)


@router.get("/shop/{m}/cart")
def shop_cart(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    if request.query_params.get("err") == "empty":
        return _cart_page(request, session, customer, flash=_("Choose something to buy first."), flash_kind="error")
    return _cart_page(request, session, customer)


@router.post("/shop/{m}/cart/add")
def shop_cart_add(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                  form: ShopForm) -> Response:
    try:
        sku_id = _int(form_str(form, "sku_id", max_length=30))
        quantity = _int(form_str(form, "quantity", max_length=30), high=MAX_QUANTITY) or 1
        if sku_id is None:
            raise ValueError("sku_id")
    except ValueError:
        return _cart_page(request, session, customer, flash=_("Choose an item and a quantity from 1 to 999."),
                          flash_kind="error", status=422)
    try:
        service.add_to_cart(session, actor=customer, sku_id=sku_id, quantity=quantity)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _cart_page(request, session, customer, flash=_stock_message(exc, {}), flash_kind="error", status=409)
    return RedirectResponse(f"/shop/{merchant.slug}/cart?ok=added", status_code=303)


@router.post("/shop/{m}/cart/lines/{line_id}")
def shop_cart_update(line_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                     customer: ShopPageCustomer, form: ShopForm) -> Response:
    selected_values = [v for v in form.getlist("selected") if isinstance(v, str)]
    selected = None if not selected_values else selected_values[-1] == "1"
    try:
        quantity = _int(form_str(form, "quantity", max_length=30), high=MAX_QUANTITY)
    except ValueError:
        return _cart_page(request, session, customer, flash=_("Enter a quantity from 1 to 999."), flash_kind="error",
                          status=422)
    service.update_cart_line(session, line_id, actor=customer, quantity=quantity, selected=selected)
    return RedirectResponse(f"/shop/{merchant.slug}/cart?ok=updated", status_code=303)


@router.post("/shop/{m}/cart/lines/{line_id}/remove")
def shop_cart_remove(line_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                     customer: ShopPageCustomer, form: ShopForm) -> Response:
    service.remove_cart_line(session, line_id, actor=customer)
    return RedirectResponse(f"/shop/{merchant.slug}/cart?ok=removed", status_code=303)


@router.post("/shop/{m}/cart/select-all")
def shop_cart_select_all(request: Request, merchant: ShopMerchant, session: DbSession,
                         customer: ShopPageCustomer, form: ShopForm) -> Response:
    service.select_all(session, actor=customer, selected=form_str(form, "selected") == "1")
    return RedirectResponse(f"/shop/{merchant.slug}/cart?ok=updated", status_code=303)


# ==================================================================== H5: checkout


def _checkout_items(session: Any, customer: Principal, values: Any) -> tuple[list[dict[str, int]], bool]:
    """Buy now (`sku_id`, `quantity`) or the selected cart lines. ValidationFailed on bad numbers."""
    raw_sku = values.get("sku_id")
    if isinstance(raw_sku, str) and raw_sku.strip():
        try:
            sku_id = _int(raw_sku)
            quantity = _int(values.get("quantity") if isinstance(values.get("quantity"), str) else "",
                            high=MAX_QUANTITY) or 1
        except ValueError as exc:
            raise ValidationFailed("Choose an item and a quantity from 1 to 999.", code="invalid_item") from exc
        assert sku_id is not None
        return [{"sku_id": sku_id, "quantity": quantity}], False
    posted = [v for v in values.getlist("cart_item") if isinstance(v, str)][:50] if values.get("from_cart") else []
    if posted:
        # The cart lines the page showed, carried in the form: what was seen is what is bought, and a
        # double submit (after the first emptied the cart) replays the first order.
        items: dict[int, int] = {}
        try:
            for value in posted:
                sku_text, _sep, qty_text = value.partition(":")
                sku_id, quantity = _int(sku_text), _int(qty_text, high=MAX_QUANTITY)
                if sku_id is None or quantity is None:
                    raise ValueError(value)
                items[sku_id] = quantity
        except ValueError as exc:
            raise ValidationFailed("Choose an item and a quantity from 1 to 999.", code="invalid_item") from exc
        return [{"sku_id": k, "quantity": v} for k, v in items.items()], True
    return service.checkout_items(session, actor=customer), True


def _typed_checkout(values: Any) -> dict[str, str]:
    keys = ("sku_id", "quantity", "type", "address_id", "store_id", "note", "idem_key", "lat", "lng",
            "save_address", "use_balance", "points", "coupon_pick", *PROMO_FIELDS, *ADDRESS_FIELDS)
    typed = {k: (values.get(k) or "").strip()[:200] if isinstance(values.get(k), str) else "" for k in keys}
    coupons = [v.strip() for v in values.getlist("coupon_id") if isinstance(v, str) and v.strip()][:10]
    typed["coupon_ids"] = ",".join(c for c in coupons if c.isascii() and c.isdigit() and len(c) <= 15)
    return typed


# The campaign a buy-now checkout is for (promotions prices it), carried in the page's query and form.
PROMO_FIELDS = ("promo_kind", "promo_campaign_id", "promo_team_id", "promo_bargain_id")


def _request_extras(typed: dict[str, str]) -> dict[str, Any]:
    """The coupons chosen and the campaign bought through, as CheckoutRequest fields (validated there)."""
    extras: dict[str, Any] = {"coupon_ids": [int(c) for c in typed.get("coupon_ids", "").split(",") if c]}
    if typed.get("promo_kind"):
        promotion: dict[str, Any] = {"kind": typed["promo_kind"]}
        for field in ("campaign_id", "team_id", "bargain_id"):
            raw = typed.get(f"promo_{field}", "")
            if raw:
                promotion[field] = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 15 else raw
        extras["promotion"] = promotion
    return extras


def promo_query(typed: dict[str, str]) -> dict[str, str]:
    """The campaign fields to carry in links back to this checkout."""
    return {k: typed[k] for k in PROMO_FIELDS if typed.get(k)}


def _points(typed: dict[str, str]) -> int:
    """The points typed to pay with (membership prices them); anything else counts as none."""
    raw = typed.get("points", "")
    return min(int(raw), 2**31 - 1) if raw.isascii() and raw.isdigit() else 0


def _parse_address(typed: dict[str, str]) -> tuple[AddressIn | None, dict[str, str]]:
    try:
        return AddressIn.model_validate({k: typed[k] for k in ADDRESS_FIELDS}), {}
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err.get("loc") else "detail"
            errors[field] = _(ADDRESS_ERRORS.get(field, "Not valid."))
        return None, errors


def _fulfilment(typed: dict[str, str], addresses: list[Any], stores: list[Any]) -> tuple[
        Any, AddressIn | None, dict[str, str]]:
    """What the form chose: (fulfilment for the request or None, a new address or None, errors)."""
    errors: dict[str, str] = {}
    if typed["type"] == "pickup":
        try:
            store_id = _int(typed["store_id"])
        except ValueError:
            store_id = None
        if store_id is None and len(stores) == 1:
            store_id = stores[0][0].id
        if store_id is None:
            errors["store_id"] = _("Choose a store to pick up at.")
            return None, None, errors
        return PickupFulfilment(type="pickup", store_id=store_id), None, errors
    choice = typed["address_id"]
    if choice != "new" and addresses:
        try:
            address_id = _int(choice) or addresses[0].id
        except ValueError:
            errors["address_id"] = _("Choose a delivery address.")
            return None, None, errors
        return DeliveryFulfilment(type="delivery", address_id=address_id), None, errors
    address, errors = _parse_address(typed)
    if address is None:
        return None, None, errors
    return DeliveryFulfilment(type="delivery", address=address), address, errors


def _preselect_best_coupon(session: Any, customer: Principal, typed: dict[str, str], request_body: CheckoutRequest,
                           preview: dict[str, Any]) -> dict[str, Any]:
    """Until the customer picks in the coupon picker (`coupon_pick`), the best coupon a contributor
    suggested (`best_coupon` notice) is chosen for them."""
    best = next((n for n in preview["notices"] if n.get("kind") == "best_coupon"), None)
    if best is None or typed.get("coupon_pick") or typed.get("coupon_ids"):
        return preview
    try:
        chosen = service.preview(session, actor=customer,
                                 request=request_body.model_copy(update={"coupon_ids": [best["coupon_id"]]}))
    except AppError:
        return preview
    typed["coupon_ids"] = str(best["coupon_id"])
    return chosen


def _checkout_page(request: Request, session: Any, merchant: Merchant, customer: Principal, typed: dict[str, str], *,
                   items: list[dict[str, int]], from_cart: bool, errors: dict[str, str] | None = None,
                   error: str | None = None, status: int = 200, quiet: bool = False) -> Response:
    """The checkout page: items, fulfilment choice and, once the fulfilment is known, the price
    breakdown of the service's preview. `quiet`: the fulfilment was not chosen yet, so its missing
    fields are not reported as errors."""
    errors = dict(errors or {})
    addresses = service.list_addresses(session, actor=customer)
    lat, lng = _float(typed["lat"], -90, 90), _float(typed["lng"], -180, 180)
    stores = service.shop_stores(session, merchant_id=merchant.id, lat=lat, lng=lng)
    typed = dict(typed)
    typed["type"] = "pickup" if typed["type"] == "pickup" else "delivery"
    if typed["type"] == "delivery" and not typed["address_id"]:
        typed["address_id"] = str(addresses[0].id) if addresses else "new"
    if typed["type"] == "pickup" and not typed["store_id"] and stores:
        typed["store_id"] = str(stores[0][0].id)
    if not typed["idem_key"]:
        typed["idem_key"] = secrets.token_urlsafe(18)
    lines = service.basket(session, actor=customer, items=items)
    titles = {line["sku_id"]: line["title"] for line in lines}
    if not error:  # say what is wrong with the items before anything else
        for line in lines:
            if not line["available"]:
                error = _("{title} is no longer for sale.", title=line["title"]) if line["title"] \
                    else _("An item is no longer for sale.")
            elif line["stock"] < line["quantity"]:
                error = _("Not enough stock of {title}: only {n} left. Lower the quantity and try again.",
                          title=line["title"], n=max(line["stock"], 0))
            if error:
                status = 409 if status < 400 else status
                break
    preview = None
    fulfilment, _new, f_errors = _fulfilment(typed, addresses, stores)
    if not quiet:
        errors = {**f_errors, **errors}
    if fulfilment is not None and items and not error:
        try:
            request_body = CheckoutRequest(items=items, fulfilment=fulfilment, note=typed["note"][:200],
                                           use_balance=typed["use_balance"] == "1", points=_points(typed),
                                           **_request_extras(typed))
            preview = service.preview(session, actor=customer, request=request_body)
            preview = _preselect_best_coupon(session, customer, typed, request_body, preview)
        except ValidationError:
            error = _("Some fields are not valid.")
        except AppError as exc:
            if exc.status_code >= 500:
                raise
            fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
            if typed.get("coupon_ids") and (exc.code.startswith("coupon_") or exc.code == "one_coupon_per_order"):
                # The chosen coupon cannot be used: say why, and price without it so another can be picked.
                error, typed["coupon_ids"], typed["coupon_pick"] = exc.translated(), "", "1"
                try:
                    preview = service.preview(session, actor=customer,
                                              request=request_body.model_copy(update={"coupon_ids": []}))
                except AppError:
                    preview = None
            elif fields:
                for key, message in fields.items():
                    errors[key.rsplit(".", 1)[-1]] = message
            else:
                error = _stock_message(exc, titles)
    goods_preview = None
    if preview is None and typed.get("promo_kind") and items and not error and stores:
        # A campaign's price before the address is known: the goods priced as a store pickup would be
        # (no shipping), shown as the goods' total, so the customer sees the campaign price at once.
        try:
            goods_preview = service.preview(session, actor=customer, request=CheckoutRequest(
                items=items, fulfilment=PickupFulfilment(type="pickup", store_id=stores[0][0].id),
                **_request_extras(typed)))
        except (ValidationError, AppError):
            goods_preview = None
    buy_now_query = urlencode({"sku_id": typed["sku_id"], "quantity": typed["quantity"] or "1",
                               **promo_query(typed)}) if not from_cart else ""
    return render(request, "orders/shop_checkout.html", {
        "tab": "me", "typed": typed, "errors": errors, "flash": error, "flash_kind": "error",
        "lines": lines, "subtotal_cents": sum(line["subtotal_cents"] for line in lines), "preview": preview,
        "goods_preview": goods_preview,
        "addresses": addresses, "stores": stores, "from_cart": from_cart, "buy_now_query": buy_now_query,
        "labels": LABELS, "located": lat is not None and lng is not None,
    }, status_code=status)


@router.get("/shop/{m}/checkout")
def shop_checkout(request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: ShopPageCustomer) -> Response:
    typed = _typed_checkout(request.query_params)
    typed["save_address"] = "1"  # new addresses go to the address book unless unticked
    items, from_cart = _checkout_items(session, customer, request.query_params)
    if not items:
        return RedirectResponse(f"/shop/{merchant.slug}/cart?err=empty", status_code=303)
    return _checkout_page(request, session, merchant, customer, typed, items=items, from_cart=from_cart, quiet=True)


@router.post("/shop/{m}/checkout")
def shop_checkout_place(request: Request, merchant: ShopMerchant, session: DbSession,
                        customer: ShopPageCustomer, form: ShopForm) -> Response:
    typed = _typed_checkout(form)
    items, from_cart = _checkout_items(session, customer, form)
    if not items:
        return RedirectResponse(f"/shop/{merchant.slug}/cart?err=empty", status_code=303)
    page_args = {"items": items, "from_cart": from_cart}
    if form_str(form, "action") == "preview":
        return _checkout_page(request, session, merchant, customer, typed, **page_args)
    addresses = service.list_addresses(session, actor=customer)
    stores = service.shop_stores(session, merchant_id=merchant.id)
    if typed["type"] != "pickup" and not typed["address_id"]:
        typed["address_id"] = "new" if not addresses else str(addresses[0].id)
    fulfilment, new_address, errors = _fulfilment(typed, addresses, stores)
    if fulfilment is None:
        return _checkout_page(request, session, merchant, customer, typed, errors=errors,
                              error=_("Some fields are not valid."), status=422, **page_args)
    try:
        body = CheckoutRequest(items=items, fulfilment=fulfilment, note=typed["note"][:200],
                               use_balance=typed["use_balance"] == "1", points=_points(typed),
                               **_request_extras(typed))
    except ValidationError:
        return _checkout_page(request, session, merchant, customer, typed, error=_("Some fields are not valid."),
                              status=422, **page_args)
    key = typed["idem_key"] if 8 <= len(typed["idem_key"]) <= 64 else None
    try:
        order = service.place_order_once(session, actor=customer, request=body, key=key, from_cart=from_cart,
                                         new_address=new_address, save_address=typed["save_address"] == "1")
    except AppError as exc:
        if exc.status_code >= 500 or exc.status_code in (401, 403):
            raise
        if exc.code == "idempotency_key_reused":  # the form was sent before with other choices
            typed["idem_key"] = ""
        lines = service.basket(session, actor=customer, items=items)
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        errors = {k.rsplit(".", 1)[-1]: v for k, v in (fields or {}).items()}
        if isinstance(exc, NotFound):  # an address of the book that is gone meanwhile
            errors["address_id"] = _("Choose a delivery address.")
            typed["address_id"] = ""
        message = _stock_message(exc, {line["sku_id"]: line["title"] for line in lines})
        if exc.code == "idempotency_key_reused":
            message = _("This form was already sent with other choices; check them and place the order again.")
        return _checkout_page(request, session, merchant, customer, typed, errors=errors, error=message,
                              status=exc.status_code if exc.status_code != 404 else 422, **page_args)
    if order.status != S.PENDING_PAYMENT:  # nothing to pay: already paid
        return RedirectResponse(f"/shop/{merchant.slug}/orders/{order.id}?paid=1", status_code=303)
    url = service.sandbox_pay_url(session, order.id, actor=customer, slug=merchant.slug)
    return RedirectResponse(url, status_code=303)


# ==================================================================== H5: orders


@router.get("/shop/{m}/orders")
def shop_orders(request: Request, merchant: ShopMerchant, session: DbSession,
                customer: ShopPageCustomer) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in SHOP_TABS else ""
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    filters = service.OrderFilter(status=status or None)
    try:
        page = service.list_orders(session, actor=customer, filters=filters, cursor=cursor, limit=20)
    except AppError:  # a mangled cursor: the first page
        page = service.list_orders(session, actor=customer, filters=filters, limit=20)
    lines = service.lines_of(session, [o.id for o in page.items])
    next_url = None
    if page.next_cursor:
        next_url = f"/shop/{merchant.slug}/orders?" + urlencode({**({"status": status} if status else {}),
                                                                 "cursor": page.next_cursor})
    return render(request, "orders/shop_orders.html", {
        "tab": "me", "orders": page.items, "lines": lines, "status": status, "tabs": SHOP_TABS, "labels": LABELS,
        "next_url": next_url,
    })


def _refund_allowed(detail: Any) -> bool:
    order = detail.order
    if order.status not in REFUNDABLE:
        return False
    closes = detail.after_sales_closes_at
    return not (order.status == S.COMPLETED and closes is not None and clock.now() > closes)


def _shop_order_page(request: Request, session: Any, customer: Principal, order_id: int, *,
                     flash: str | None = None, flash_kind: str = "ok", errors: dict[str, str] | None = None,
                     typed: dict[str, str] | None = None, status: int = 200) -> Response:
    detail = service.order_detail(session, order_id, actor=customer)
    order = detail.order
    refundable = []
    if _refund_allowed(detail):
        left = {r["order_line_id"]: r["refundable_quantity"] for r in service.refundable_lines(session, order)}
        refundable = [(line, left.get(line.id, 0)) for line in detail.lines if left.get(line.id, 0) > 0]
    qr = None
    if order.status == S.READY_FOR_PICKUP and order.pickup_code:
        qr = Markup(service.pickup_qr_svg(order, scale=5))  # segno's own SVG of the digits
    if flash is None:
        flash = _flash(request, SHOP_FLASH)
        if request.query_params.get("paid") == "1":
            flash = _("Payment received.") if order.paid_at else _("Payment is being confirmed; refresh in a moment.")
    line_titles = {line.id: line.title for line in detail.lines}
    return render(request, "orders/shop_order.html", {
        "tab": "me", "d": detail, "order": order, "labels": LABELS, "refundable": refundable, "qr": qr,
        "line_titles": line_titles, "flash": flash, "flash_kind": flash_kind, "errors": errors or {},
        "typed": typed or {},
    }, status_code=status)


@router.get("/shop/{m}/orders/{order_id}")
def shop_order(order_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
               customer: ShopPageCustomer) -> Response:
    return _shop_order_page(request, session, customer, order_id)


def _shop_order_action(request: Request, merchant: Merchant, session: Any, customer: Principal,
                       order_id: int, action: Any, ok: str) -> Response:
    try:
        action()
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _shop_order_page(request, session, customer, order_id, flash=exc.translated(), flash_kind="error",
                                status=409)
    return RedirectResponse(f"/shop/{merchant.slug}/orders/{order_id}?ok={ok}", status_code=303)


@router.post("/shop/{m}/orders/{order_id}/pay")
def shop_order_pay(order_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                   customer: ShopPageCustomer, form: ShopForm) -> Response:
    try:
        url = service.sandbox_pay_url(session, order_id, actor=customer, slug=merchant.slug)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _shop_order_page(request, session, customer, order_id, flash=exc.translated(), flash_kind="error",
                                status=409)
    return RedirectResponse(url, status_code=303)


@router.post("/shop/{m}/orders/{order_id}/cancel")
def shop_order_cancel(order_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                      customer: ShopPageCustomer, form: ShopForm) -> Response:
    return _shop_order_action(request, merchant, session, customer, order_id,
                              lambda: service.cancel_order(session, order_id, actor=customer), "cancelled")


@router.post("/shop/{m}/orders/{order_id}/confirm-receipt")
def shop_order_confirm(order_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                       customer: ShopPageCustomer, form: ShopForm) -> Response:
    return _shop_order_action(request, merchant, session, customer, order_id,
                              lambda: service.confirm_receipt(session, order_id, actor=customer), "received")


@router.post("/shop/{m}/orders/{order_id}/refunds")
def shop_refund_request(order_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                        customer: ShopPageCustomer, form: ShopForm) -> Response:
    detail = service.order_detail(session, order_id, actor=customer)  # 404 for another customer's order
    typed = {"reason": form_str(form, "reason", max_length=1000)}
    errors: dict[str, str] = {}
    wanted: list[tuple[int, int]] = []
    for line in detail.lines:
        raw = form_str(form, f"qty_{line.id}", max_length=30)
        typed[f"qty_{line.id}"] = raw
        try:
            quantity = _int(raw, low=0, high=MAX_QUANTITY)
        except ValueError:
            errors[f"qty_{line.id}"] = _("Enter a number from 0 to {n}.", n=line.quantity)
            continue
        if quantity:
            wanted.append((line.id, quantity))
    if not wanted and not errors:
        errors["lines"] = _("Choose at least one item and how many.")
    if not typed["reason"]:
        errors["reason"] = _("Tell us why you want a refund.")
    elif len(typed["reason"]) > 200:
        errors["reason"] = _("At most {n} characters.", n=200)
    if errors:
        return _shop_order_page(request, session, customer, order_id, errors=errors, typed=typed, status=422,
                                flash=_("Some fields are not valid."), flash_kind="error")
    try:
        service.request_refund(session, order_id, actor=customer, reason=typed["reason"], lines=wanted)
    except AppError as exc:
        if exc.status_code not in (404, 409):
            raise
        return _shop_order_page(request, session, customer, order_id, typed=typed, status=409,
                                flash=exc.translated(), flash_kind="error")
    return RedirectResponse(f"/shop/{merchant.slug}/orders/{order_id}?ok=refund", status_code=303)


# ==================================================================== H5: address book


def _addresses_page(request: Request, session: Any, customer: Principal, *, typed: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, flash: str | None = None, flash_kind: str = "ok",
                    status: int = 200) -> Response:
    return render(request, "orders/shop_addresses.html", {
        "tab": "me", "addresses": service.list_addresses(session, actor=customer), "typed": typed or {},
        "errors": errors or {}, "flash": flash or _flash(request, SHOP_FLASH), "flash_kind": flash_kind,
    }, status_code=status)


@router.get("/shop/{m}/addresses")
def shop_addresses(request: Request, merchant: ShopMerchant, session: DbSession,
                   customer: ShopPageCustomer) -> Response:
    return _addresses_page(request, session, customer)


@router.post("/shop/{m}/addresses")
def shop_address_create(request: Request, merchant: ShopMerchant, session: DbSession,
                        customer: ShopPageCustomer, form: ShopForm) -> Response:
    typed = {k: form_str(form, k, max_length=300) for k in ADDRESS_FIELDS}
    typed["is_default"] = "1" if form_str(form, "is_default") == "1" else ""
    address, errors = _parse_address(typed)
    if address is None:
        return _addresses_page(request, session, customer, typed=typed, errors=errors, status=422,
                               flash=_("Some fields are not valid."), flash_kind="error")
    try:
        service.create_address(session, actor=customer, is_default=bool(typed["is_default"]), **address.model_dump())
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _addresses_page(request, session, customer, typed=typed, status=409, flash=exc.translated(),
                               flash_kind="error")
    return RedirectResponse(f"/shop/{merchant.slug}/addresses?ok=address_saved", status_code=303)


@router.post("/shop/{m}/addresses/{address_id}/default")
def shop_address_default(address_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                         customer: ShopPageCustomer, form: ShopForm) -> Response:
    service.update_address(session, address_id, actor=customer, is_default=True)
    return RedirectResponse(f"/shop/{merchant.slug}/addresses?ok=address_default", status_code=303)


@router.post("/shop/{m}/addresses/{address_id}/delete")
def shop_address_delete(address_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                        customer: ShopPageCustomer, form: ShopForm) -> Response:
    service.delete_address(session, address_id, actor=customer)
    return RedirectResponse(f"/shop/{merchant.slug}/addresses?ok=address_deleted", status_code=303)


# ==================================================================== console: list, export, bulk ship

FILTER_PARAMS = ("status", "store_id", "fulfilment_type", "customer_id", "created_from", "created_to", "q")


def _date(raw: str) -> dt.date | None:
    if not raw:
        return None
    return dt.date.fromisoformat(raw)


def _console_filters(params: Any) -> tuple[service.OrderFilter, dict[str, str], dict[str, str]]:
    """Filter bar values (as typed) → an OrderFilter; bad values are reported beside their field and ignored."""
    raw = {k: str(params.get(k) or "").strip()[:100] for k in FILTER_PARAMS}
    f = service.OrderFilter()
    errors: dict[str, str] = {}
    if raw["status"]:
        if raw["status"] in LABELS["status"]:
            f.status = raw["status"]
        else:
            errors["status"] = _("Not valid.")
    if raw["fulfilment_type"]:
        if raw["fulfilment_type"] in FULFILMENT_LABELS:
            f.fulfilment_type = raw["fulfilment_type"]
        else:
            errors["fulfilment_type"] = _("Not valid.")
    for key in ("store_id", "customer_id"):
        try:
            setattr(f, key, _int(raw[key]))
        except ValueError:
            errors[key] = _("Enter an id (a whole number).")
    for key in ("created_from", "created_to"):
        try:
            setattr(f, key, _date(raw[key]))
        except ValueError:
            errors[key] = _("Enter a date like 2024-05-01.")
    if raw["q"]:
        f.q = raw["q"][:40]
    return f, raw, errors


def _console_list(request: Request, session: Any, principal: Principal, *, bulk_report: list[Any] | None = None,
                  bulk_error: str | None = None, status: int = 200) -> Response:
    filters, raw, errors = _console_filters(request.query_params)
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    try:
        page = service.list_orders(session, actor=principal, filters=filters, cursor=cursor, limit=50)
    except AppError:  # a mangled cursor: the first page
        page = service.list_orders(session, actor=principal, filters=filters, limit=50)
        errors["cursor"] = _("The page link is not valid; showing the first page.")
    kept = {k: v for k, v in raw.items() if v and k not in errors}
    stores = service.staff_stores(session, actor=principal)
    next_url = ("/console/orders?" + urlencode({**kept, "cursor": page.next_cursor})) if page.next_cursor else None
    flash = " ".join(errors.values()) if errors else bulk_error
    return render(request, "orders/console_list.html", {
        "active_menu": "orders", "orders": page.items, "lines": service.lines_of(session, [o.id for o in page.items]),
        "raw": raw, "errors": errors, "labels": LABELS, "stores": stores,
        "store_names": {s.id: s.name for s in stores}, "filtered": bool(kept), "next_url": next_url,
        "first_url": ("/console/orders?" + urlencode(kept)) if cursor else None,
        "export_url": "/console/orders/export.csv" + (("?" + urlencode(kept)) if kept else ""),
        "can_export": principal.can("orders.export"), "can_fulfil": principal.can("orders.fulfil"),
        "bulk_report": bulk_report, "flash": flash, "flash_kind": "error" if flash else "ok",
    }, status_code=status if status != 200 else (422 if errors else 200))


@router.get("/console/orders")
def console_orders(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _console_list(request, session, principal)


@router.get("/console/orders/export.csv")
def console_orders_export(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, errors = _console_filters(request.query_params)
    if errors:
        raise ValidationFailed(details={"fields": errors})
    rows = service.export_rows(session, actor=principal, filters=filters)
    name = f"orders-{clock.today_local():%Y%m%d}.csv"
    return StreamingResponse(service.iter_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


MAX_UPLOAD = 1_000_000


@router.post("/console/orders/bulk-ship")
def console_bulk_ship(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    upload = form.get("file")
    text = form_str(form, "csv", max_length=MAX_UPLOAD + 1)
    data: bytes | None = None
    if upload is not None and not isinstance(upload, str):
        data = upload.file.read(MAX_UPLOAD + 1)
    if data:
        if len(data) > MAX_UPLOAD:
            return _console_list(request, session, principal, bulk_error=_("The file is too large (at most 1 MB)."),
                                 status=422)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                return _console_list(request, session, principal, status=422,
                                     bulk_error=_("The file is not a CSV text file (UTF-8 or GBK)."))
    if not text.strip():
        return _console_list(request, session, principal, status=422,
                             bulk_error=_("Choose a CSV file (order_no,carrier,tracking_no) or paste its rows."))
    if len(text) > MAX_UPLOAD:
        return _console_list(request, session, principal, bulk_error=_("The file is too large (at most 1 MB)."),
                             status=422)
    # Spreadsheet exports end lines with \r\n or a lone \r; the CSV reader wants \n.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    try:
        report = service.bulk_ship_csv(session, actor=principal, text=text)
    except csv.Error:
        return _console_list(request, session, principal, status=422,
                             bulk_error=_("The file is not a CSV text file (UTF-8 or GBK)."))
    return _console_list(request, session, principal, bulk_report=report)


# ==================================================================== console: pickup desk and after-sales


def _verify_page(request: Request, session: Any, principal: Principal, *, typed: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, found: Any = None, status: int = 200) -> Response:
    verified = None
    if request.query_params.get("ok") == "verified":
        try:
            verified = service.get_order(session, _int(request.query_params.get("order")) or 0, actor=principal)
        except (ValueError, NotFound):
            verified = None
    return render(request, "orders/console_verify.html", {
        "active_menu": "orders", "typed": typed or {}, "errors": errors or {}, "found": found,
        "found_lines": service.lines_of(session, [found.id])[found.id] if found else [],
        "people": service.order_people(session, found) if found else None, "verified": verified,
        "labels": LABELS, "flash": _("Pickup verified: the order is completed.") if verified else None,
    }, status_code=status)


@router.get("/console/orders/verify")
def console_verify_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _verify_page(request, session, principal)


@router.post("/console/orders/verify")
def console_verify(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    code = form_str(form, "code", max_length=20)
    typed = {"code": code}
    try:
        if form_str(form, "action") == "verify":
            order_id = _int(form_str(form, "order_id", max_length=30))
            if order_id is None:
                raise ValueError("order_id")
            order = service.verify_pickup(session, order_id, actor=principal, code=code)
            return RedirectResponse(f"/console/orders/verify?ok=verified&order={order.id}", status_code=303)
        found = service.find_pickup(session, actor=principal, code=code)
    except ValueError:
        return _verify_page(request, session, principal, typed=typed, status=422,
                            errors={"code": _("Enter the 6–8 digit pickup code.")})
    except AppError as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        message = (fields or {}).get("code") or (_("No order is waiting for pickup with this code at your store.")
                                                 if exc.status_code == 404 else exc.translated())
        return _verify_page(request, session, principal, typed=typed, errors={"code": message},
                            status=exc.status_code)
    return _verify_page(request, session, principal, typed=typed, found=found)


REFUND_TABS = ("pending", "processing", "refunded", "rejected", "all")


@router.get("/console/orders/refunds")
def console_refunds(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status") or "pending"
    status = status if status in REFUND_TABS else "pending"
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    wanted = None if status == "all" else status
    try:
        page = service.list_refunds(session, actor=principal, status=wanted, cursor=cursor, limit=50)
    except AppError:
        page = service.list_refunds(session, actor=principal, status=wanted, limit=50)
    orders = service.orders_by_ids(session, actor=principal, ids=[r.order_id for r in page.items])
    next_url = ("/console/orders/refunds?" + urlencode({"status": status, "cursor": page.next_cursor})) \
        if page.next_cursor else None
    return render(request, "orders/console_refunds.html", {
        "active_menu": "orders", "refunds": page.items, "orders": orders, "status": status, "tabs": REFUND_TABS,
        "labels": LABELS, "next_url": next_url, "waiting": service.waiting_count(session, actor=principal),
    })


# ==================================================================== console: order detail and actions


def _console_order_page(request: Request, session: Any, principal: Principal, order_id: int, *,
                        errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                        flash: str | None = None, flash_kind: str = "ok", status: int = 200) -> Response:
    detail = service.order_detail(session, order_id, actor=principal)
    order = detail.order
    address = dict((order.fulfilment or {}).get("address") or {})
    if address and not principal.can("customers.view_phone"):
        address["phone"] = mask_phone(address.get("phone", ""))
    return render(request, "orders/console_detail.html", {
        "active_menu": "orders", "d": detail, "order": order, "address": address, "labels": LABELS,
        "people": service.order_people(session, order),
        "names": service.actor_names(session, order.merchant_id, detail.history, detail.refunds),
        "line_titles": {line.id: line.title for line in detail.lines},
        "can_fulfil": principal.can("orders.fulfil"), "can_refund": principal.can("orders.refund"),
        "errors": errors or {}, "typed": typed or {}, "flash": flash or _flash(request, CONSOLE_FLASH),
        "flash_kind": flash_kind,
    }, status_code=status)


@router.get("/console/orders/{order_id}")
def console_order(order_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _console_order_page(request, session, principal, order_id)


@router.post("/console/orders/{order_id}/ship")
def console_order_ship(order_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                       form: ConsoleForm) -> Response:
    typed = {"carrier": form_str(form, "carrier", max_length=200), "tracking_no": form_str(form, "tracking_no",
                                                                                             max_length=200)}
    try:
        body = ShipRequest.model_validate(typed)
    except ValidationError as exc:
        messages = {"carrier": _("Enter the carrier (at most 40 characters)."),
                    "tracking_no": _("Enter the tracking number: 4–60 letters, digits or dashes.")}
        errors = {str(e["loc"][0]): messages.get(str(e["loc"][0]), _("Not valid.")) for e in exc.errors() if e["loc"]}
        return _console_order_page(request, session, principal, order_id, errors=errors, typed=typed, status=422)
    try:
        service.ship_order(session, order_id, actor=principal, carrier=body.carrier, tracking_no=body.tracking_no)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _console_order_page(request, session, principal, order_id, typed=typed, status=409,
                                   flash=exc.translated(), flash_kind="error")
    return RedirectResponse(f"/console/orders/{order_id}?ok=shipped", status_code=303)


@router.post("/console/orders/{order_id}/verify")
def console_order_verify(order_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                         form: ConsoleForm) -> Response:
    code = form_str(form, "code", max_length=20)
    if not code.isdigit() or not 6 <= len(code) <= 8:
        return _console_order_page(request, session, principal, order_id, typed={"code": code}, status=422,
                                   errors={"code": _("Enter the 6–8 digit pickup code.")})
    try:
        service.verify_pickup(session, order_id, actor=principal, code=code)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _console_order_page(request, session, principal, order_id, typed={"code": code}, status=409,
                                   errors={"code": exc.translated()})
    return RedirectResponse(f"/console/orders/{order_id}?ok=verified", status_code=303)


@router.get("/console/orders/{order_id}/cancel")
def console_order_cancel_confirm(order_id: PathId, request: Request, session: DbSession,
                                 principal: ConsoleStaff) -> Response:
    order = service.get_order(session, order_id, actor=principal)
    return render(request, "orders/console_cancel.html", {
        "active_menu": "orders", "order": order, "labels": LABELS,
        "lines": service.lines_of(session, [order.id])[order.id], "typed": {}, "errors": {},
    })


@router.post("/console/orders/{order_id}/cancel")
def console_order_cancel(order_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                         form: ConsoleForm) -> Response:
    if form_str(form, "confirm") != "yes":
        return RedirectResponse(f"/console/orders/{order_id}/cancel", status_code=303)
    reason = form_str(form, "reason", max_length=200)
    if len(reason) > 40:
        order = service.get_order(session, order_id, actor=principal)
        return render(request, "orders/console_cancel.html", {
            "active_menu": "orders", "order": order, "labels": LABELS,
            "lines": service.lines_of(session, [order.id])[order.id], "typed": {"reason": reason},
            "errors": {"reason": _("At most {n} characters.", n=40)}}, status_code=422)
    try:
        service.cancel_order(session, order_id, actor=principal, reason=reason)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _console_order_page(request, session, principal, order_id, status=409, flash=exc.translated(),
                                   flash_kind="error")
    return RedirectResponse(f"/console/orders/{order_id}?ok=cancelled", status_code=303)


@router.get("/console/orders/refunds/{refund_id}/approve")
def console_refund_approve_confirm(refund_id: PathId, request: Request, session: DbSession,
                                   principal: ConsoleStaff) -> Response:
    refund = service.get_refund(session, refund_id, actor=principal)
    detail = service.order_detail(session, refund.order_id, actor=principal)
    payment = next((p for p in detail.payments if p.id == detail.order.payment_id), None)
    return render(request, "orders/console_refund_approve.html", {
        "active_menu": "orders", "refund": refund, "order": detail.order, "payment": payment, "labels": LABELS,
        "refund_lines": service.refund_lines_of(session, [refund.id])[refund.id],
        "line_titles": {line.id: line.title for line in detail.lines},
    })


@router.post("/console/orders/refunds/{refund_id}/approve")
def console_refund_approve(refund_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                           form: ConsoleForm) -> Response:
    refund = service.get_refund(session, refund_id, actor=principal)
    try:
        refund = service.approve_refund(session, refund_id, actor=principal, restock=form_str(form, "restock") == "1")
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _console_order_page(request, session, principal, refund.order_id, status=409, flash=exc.translated(),
                                   flash_kind="error")
    ok = "refund_approved" if refund.status == RefundStatus.REFUNDED else "refund_processing"
    return RedirectResponse(f"/console/orders/{refund.order_id}?ok={ok}#refunds", status_code=303)


@router.post("/console/orders/refunds/{refund_id}/reject")
def console_refund_reject(refund_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                          form: ConsoleForm) -> Response:
    refund = service.get_refund(session, refund_id, actor=principal)
    reason = form_str(form, "reason", max_length=1000)
    key = f"reject_{refund.id}"
    if not reason or len(reason) > 200:
        message = _("Tell the customer why (at most 200 characters).")
        return _console_order_page(request, session, principal, refund.order_id, errors={key: message},
                                   typed={key: reason}, status=422)
    try:
        service.reject_refund(session, refund_id, actor=principal, reason=reason)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _console_order_page(request, session, principal, refund.order_id, status=409, flash=exc.translated(),
                                   flash_kind="error")
    return RedirectResponse(f"/console/orders/{refund.order_id}?ok=refund_rejected#refunds", status_code=303)
