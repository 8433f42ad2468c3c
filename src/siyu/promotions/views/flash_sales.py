"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — console and H5 pages.

Console: /console/promotions/flash-sales (list by status), …/new and …/{id}/edit (the campaign builder:
title, window, items with SKU, flash price, allocation and limit), …/{id} (live figures: orders, units,
GMV, sold-out time; items' progress; schedule, pause, resume, end; share link). H5: /shop/{m}/flash (live
and coming flash sales), /shop/{m}/flash/{id} (countdown, items at flash vs normal price, progress,
"buy now" into the checkout with the campaign, sold-out state)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.core import clock
from siyu.core.errors import AppError, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import register_slot, render, templates
from siyu.core.web import DbSession, form_str
from siyu.customers.deps import OptionalShopCustomer
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.service import flash_sales as service
from siyu.promotions.states.flash_sales import FLASH_SALE_LABELS, FlashSaleStatus

router = APIRouter(include_in_schema=False)

CONSOLE = "/console/promotions/flash-sales"
PathId = Annotated[int, Path(gt=0, le=2**53)]
ITEM_ROWS = 5
LABELS = {"status": {s.value: label for s, label in FLASH_SALE_LABELS.items()}}
STATUSES = tuple(s.value for s in FlashSaleStatus)
ACTIONS = {"schedule": service.schedule, "unschedule": service.unschedule, "pause": service.pause,
           "resume": service.resume, "end": service.end}
# Which buttons a campaign offers, by what it is now.
ACTIONS_BY_STATUS = {"draft": ("schedule", "end"), "scheduled": ("unschedule", "pause", "end"),
                     "active": ("pause", "end"), "paused": ("resume", "end"), "ended": ()}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _local_input(value: dt.datetime | None) -> str:
    local = clock.local(value)
    return local.strftime(LOCAL_FORMAT) if local is not None else ""


def _parse_local(text: str) -> dt.datetime | None:
    """A datetime-local field (Asia/Shanghai) as UTC, or None when it is not one."""
    try:
        naive = dt.datetime.strptime(text.strip()[:16], LOCAL_FORMAT)
    except ValueError:
        return None
    if not 2000 <= naive.year <= 2200:
        return None
    return naive.replace(tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def _shown(data: dict[str, Any], sale: Any) -> dict[str, Any]:
    """The campaign's data with its times as shown (Asia/Shanghai)."""
    data["starts_local"] = clock.format_local(sale.starts_at)
    data["ends_local"] = clock.format_local(sale.ends_at)
    return data


# ==================================================================== console


def _require(staff: Any) -> None:
    service.require_manager(staff)


@router.get(CONSOLE)
def console_list(request: Request, session: DbSession, staff: ConsoleStaff,
                 status: Annotated[str, Query(max_length=12)] = "",
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    _require(staff)
    status = status if status in STATUSES else ""
    page = service.list_flash_sales(session, merchant_id=staff.merchant_id, status=status or None, cursor=cursor)
    by_sale = service.items_by_sale(session, [s.id for s in page.items])
    rows = [_shown(service.sale_data(session, s, staff=True, items=by_sale[s.id], facts={}), s) for s in page.items]
    next_url = f"{CONSOLE}?{urlencode({'status': status, 'cursor': page.next_cursor})}" if page.next_cursor else None
    return render(request, "promotions/flash_sales_console_list.html", {
        "active_menu": "promotions", "rows": rows, "status": status, "statuses": STATUSES, "labels": LABELS,
        "next_url": next_url, "flash": _("Saved.") if request.query_params.get("ok") else None})


def _blank_typed() -> dict[str, Any]:
    now = clock.now().replace(second=0, microsecond=0)
    return {"title": "", "description": "", "starts_at": _local_input(now + dt.timedelta(hours=1)),
            "ends_at": _local_input(now + dt.timedelta(hours=3)), "allow_coupons": False,
            "allow_member_discount": False, "items": [dict.fromkeys(("sku_id", "price", "allocation", "limit"), "")
                                                      for _ in range(ITEM_ROWS)]}


def _typed_of(session: Any, sale: Any) -> dict[str, Any]:
    items = [{"sku_id": str(i.sku_id), "price": cents_to_yuan_str(i.flash_price_cents),
              "allocation": str(i.allocation), "limit": str(i.per_customer_limit or "")}
             for i in service.items_of(session, sale.id)]
    items += [dict.fromkeys(("sku_id", "price", "allocation", "limit"), "")
              for _ in range(max(1, ITEM_ROWS - len(items)))]
    return {"title": sale.title, "description": sale.description, "starts_at": _local_input(sale.starts_at),
            "ends_at": _local_input(sale.ends_at), "allow_coupons": sale.allow_coupons,
            "allow_member_discount": sale.allow_member_discount, "items": items}


def _form_page(request: Request, *, sale: Any = None, typed: dict[str, Any], errors: dict[str, str] | None = None,
               status: int = 200) -> Response:
    return render(request, "promotions/flash_sales_console_form.html", {
        "active_menu": "promotions", "sale": sale, "typed": typed, "errors": errors or {},
        "flash": _("Some fields are not valid.") if errors else None, "flash_kind": "error"}, status_code=status)


def _read_form(form: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """What was typed (to show it again), the service's arguments, and the errors found here."""
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {k: form_str(form, k, max_length=300) for k in ("title", "description", "starts_at",
                                                                            "ends_at")}
    typed["allow_coupons"] = form_str(form, "allow_coupons", max_length=2) == "1"
    typed["allow_member_discount"] = form_str(form, "allow_member_discount", max_length=2) == "1"
    starts_at, ends_at = _parse_local(typed["starts_at"]), _parse_local(typed["ends_at"])
    if starts_at is None:
        errors["starts_at"] = _("Enter a date and time.")
    if ends_at is None:
        errors["ends_at"] = _("Enter a date and time.")
    typed["items"] = []
    items: list[service.FlashItemIn] = []
    for n in range(ITEM_ROWS * 4):
        row = {k: form_str(form, f"items-{n}-{k}", max_length=30).strip() for k in ("sku_id", "price", "allocation",
                                                                                     "limit")}
        if n >= ITEM_ROWS and not any(row.values()):
            continue
        typed["items"].append(row)
        if not any(row.values()):
            continue
        index = len(items)
        try:
            sku_id = int(row["sku_id"])
            allocation = int(row["allocation"])
            limit = int(row["limit"]) if row["limit"] else None
            price = yuan_to_cents(row["price"])
        except (ValueError, ArithmeticError):
            errors[f"items.{index}.sku_id"] = _("Enter the SKU id, the flash price in yuan and whole numbers.")
            continue
        if not (0 < sku_id < 2**53 and 0 <= price <= service.MAX_PRICE_CENTS and -1 < allocation < 2**31
                and (limit is None or -1 < limit < 2**31)):
            errors[f"items.{index}.sku_id"] = _("Enter the SKU id, the flash price in yuan and whole numbers.")
            continue
        items.append(service.FlashItemIn(sku_id=sku_id, flash_price_cents=price, allocation=allocation,
                                         per_customer_limit=limit))
    values = {"title": typed["title"], "description": typed["description"], "starts_at": starts_at, "ends_at": ends_at, "items": items,
              "allow_coupons": typed["allow_coupons"], "allow_member_discount": typed["allow_member_discount"]}
    return typed, values, errors


@router.get(f"{CONSOLE}/new")
def console_new(request: Request, staff: ConsoleStaff) -> Response:
    _require(staff)
    return _form_page(request, typed=_blank_typed())


@router.post(CONSOLE)
def console_create(request: Request, session: DbSession, staff: ConsoleStaff, form: ConsoleForm) -> Response:
    _require(staff)
    typed, values, errors = _read_form(form)
    if errors:
        return _form_page(request, typed=typed, errors=errors, status=422)
    try:
        sale = service.create_flash_sale(session, actor=staff, **values)
    except ValidationFailed as exc:
        return _form_page(request, typed=typed, errors=exc.details.get("fields", {}), status=422)
    return RedirectResponse(f"{CONSOLE}/{sale.id}?ok=1", status_code=303)


@router.get(f"{CONSOLE}/{{flash_sale_id}}/edit")
def console_edit(flash_sale_id: PathId, request: Request, session: DbSession, staff: ConsoleStaff) -> Response:
    _require(staff)
    sale = service.get_flash_sale(session, flash_sale_id, merchant_id=staff.merchant_id)
    return _form_page(request, sale=sale, typed=_typed_of(session, sale))


@router.post(f"{CONSOLE}/{{flash_sale_id}}/edit")
def console_save(flash_sale_id: PathId, request: Request, session: DbSession, staff: ConsoleStaff,
                 form: ConsoleForm) -> Response:
    _require(staff)
    sale = service.get_flash_sale(session, flash_sale_id, merchant_id=staff.merchant_id)
    typed, values, errors = _read_form(form)
    if errors:
        return _form_page(request, sale=sale, typed=typed, errors=errors, status=422)
    try:
        service.update_flash_sale(session, sale.id, actor=staff, **values)
    except ValidationFailed as exc:
        return _form_page(request, sale=sale, typed=typed, errors=exc.details.get("fields", {}), status=422)
    except AppError as exc:
        return _form_page(request, sale=sale, typed=typed, errors={"title": exc.translated()}, status=409)
    return RedirectResponse(f"{CONSOLE}/{sale.id}?ok=1", status_code=303)


@router.get(f"{CONSOLE}/{{flash_sale_id}}")
def console_detail(flash_sale_id: PathId, request: Request, session: DbSession, staff: ConsoleStaff) -> Response:
    _require(staff)
    sale = service.get_flash_sale(session, flash_sale_id, merchant_id=staff.merchant_id)
    data = _shown(service.sale_data(session, sale, staff=True), sale)
    error = request.query_params.get("error", "")[:200]
    return render(request, "promotions/flash_sales_console_detail.html", {
        "active_menu": "promotions", "sale": data, "figures": service.live_figures(session, sale),
        "orders": service.orders_of(session, sale.id, limit=20), "labels": LABELS,
        "actions": ACTIONS_BY_STATUS.get(data["status"], ()),
        "editable": sale.status == "draft" or (sale.status == "scheduled" and sale.starts_at > clock.now()),
        "shop_path": f"/shop/{merchants.get_merchant(session, staff.merchant_id).slug}/flash/{sale.id}",
        "flash": error or (_("Saved.") if request.query_params.get("ok") else None),
        "flash_kind": "error" if error else None})


@router.post(f"{CONSOLE}/{{flash_sale_id}}/{{action}}")
def console_action(flash_sale_id: PathId, action: Annotated[str, Path(max_length=20)], session: DbSession,
                   staff: ConsoleStaff, form: ConsoleForm) -> Response:
    _require(staff)
    fn = ACTIONS.get(action)
    if fn is None:
        return RedirectResponse(f"{CONSOLE}/{flash_sale_id}", status_code=303)
    try:
        fn(session, flash_sale_id, actor=staff)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return RedirectResponse(f"{CONSOLE}/{flash_sale_id}?{urlencode({'error': exc.translated()})}", status_code=303)
    return RedirectResponse(f"{CONSOLE}/{flash_sale_id}?ok=1", status_code=303)


# ==================================================================== H5


@router.get("/shop/{m}/flash")
def shop_list(request: Request, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer) -> Response:
    sales = service.shop_flash_sales(session, merchant_id=merchant.id)
    by_sale = service.items_by_sale(session, [s.id for s in sales])
    customer_id = customer.customer_id if customer is not None else None
    rows = [_shown(service.sale_data(session, s, staff=False, items=by_sale[s.id], customer_id=customer_id), s)
            for s in sales]
    return render(request, "promotions/flash_sales_shop_list.html", {"merchant": merchant, "sales": rows,
                                                                    "tab": "home"})


@router.get("/shop/{m}/flash/{flash_sale_id}")
def shop_detail(flash_sale_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                customer: OptionalShopCustomer) -> Response:
    sale = service.get_shop_flash_sale(session, flash_sale_id, merchant_id=merchant.id)
    data = _shown(service.sale_data(session, sale, staff=False,
                                    customer_id=customer.customer_id if customer is not None else None), sale)
    return render(request, "promotions/flash_sales_shop_detail.html", {"merchant": merchant, "sale": data,
                                                                      "tab": "home"})


def home_banner_slot(request: Request, **_context: Any) -> Markup:
    """On the shop home: the flash sale running now (ending soonest), or else the next one, with its
    countdown; nothing when there is none."""
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None:
        return Markup("")
    sales = service.shop_flash_sales(session, merchant_id=merchant.id, limit=5)
    if not sales:
        return Markup("")
    sale = sales[0]
    data = _shown(service.sale_data(session, sale, staff=False, facts={}), sale)
    html = templates.env.get_template("promotions/flash_sales_home_banner.html").render(
        request=request, merchant=merchant, sale=data, more=len(sales) > 1)
    return Markup(html)


register_slot("shop.home_banner", home_banner_slot)
