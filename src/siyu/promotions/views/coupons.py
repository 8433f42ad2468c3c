"""promotions: coupons — console and H5 pages.

Console (/console/promotions/coupons): the list with live figures (claimed, used, GMV of the orders
using them), the builder (create, edit), the detail with figures, status actions (publish, pause,
resume, end), sending to customers and share tools (a share link and QR code for the coupon).
H5: /shop/{m}/coupons — my coupons (available, used, expired) and the coupon centre with claim buttons.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.attribution.service import shares
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, percent_to_bps, yuan_to_cents
from siyu.core.templating import register_slot, render
from siyu.core.web import DbSession, form_str
from siyu.customers.deps import OptionalShopCustomer, ShopForm, ShopPageCustomer, current_shop_customer
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.service import coupons as service
from siyu.promotions.service.common import can_manage, require_manager
from siyu.promotions.states.coupons import COUPON_LABELS, TEMPLATE_LABELS

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/coupons"
STATUS_LABELS = {k.value: v for k, v in TEMPLATE_LABELS.items()}
COUPON_STATUS_LABELS = {k.value: v for k, v in COUPON_LABELS.items()}
ACTIONS = {"publish": service.publish_template, "pause": service.pause_template,
           "resume": service.resume_template, "end": service.end_template}
FLASH = {"saved": "Saved.", "publish": "Published.", "pause": "Paused.", "resume": "Running again.",
         "end": "Ended.", "issued": "Coupons sent.", "claimed": "Claimed: it is in your coupons now."}
SHOP_ERRORS = {"coupon_sold_out": "This coupon has all been claimed.",
               "coupon_limit_reached": "You already have as many of this coupon as one customer may claim.",
               "coupon_not_claimable": "This coupon cannot be claimed now.",
               "coupon_template_not_found": "This coupon does not exist."}
LABELS = {"kinds": service.KIND_LABELS, "channels": service.CHANNEL_LABELS, "status": STATUS_LABELS,
          "coupon_status": COUPON_STATUS_LABELS}
FORM_FIELDS = ("name", "description", "kind", "amount", "threshold", "percent", "cap", "exchange_sku_id",
               "scope", "scope_product_ids", "scope_category_ids", "excluded_product_ids", "validity", "starts_at",
               "ends_at", "valid_days", "total_stock", "per_customer_limit")
RENAME = {"amount_cents": "amount", "threshold_cents": "threshold", "percent_bps": "percent", "cap_cents": "cap",
          "exchange_product_id": "exchange_sku_id"}


# ==================================================================== share target


def _coupon_url(slug: str, template_id: int) -> str:
    return f"/shop/{slug}/coupons?tab=centre&template={template_id}"


def _describe(session: Any, merchant_id: int, template_id: int) -> shares.TargetInfo:
    template = service.get_template(session, template_id, merchant_id=merchant_id)
    return shares.TargetInfo(title=template.name, subtitle=service.describe(template))


shares.register_target("coupon", _coupon_url, describe=_describe)


# ==================================================================== form parsing


def _local_input(value: dt.datetime | None) -> str:
    return clock.format_local(value, "%Y-%m-%dT%H:%M") if value else ""


def _typed_of(t: Any | None) -> dict[str, Any]:
    if t is None:
        now = clock.now()
        return {"name": "", "description": "", "kind": "threshold", "amount": "", "threshold": "", "percent": "",
                "cap": "", "exchange_sku_id": "", "scope": "all", "scope_product_ids": "", "scope_category_ids": "",
                "excluded_product_ids": "", "validity": "fixed", "starts_at": _local_input(now),
                "ends_at": _local_input(now + dt.timedelta(days=30)), "valid_days": "7", "total_stock": "",
                "per_customer_limit": "1", "channels": ["centre"]}
    return {"name": t.name, "description": t.description, "kind": t.kind,
            "amount": cents_to_yuan_str(t.amount_cents) if t.amount_cents else "",
            "threshold": cents_to_yuan_str(t.threshold_cents) if t.threshold_cents else "",
            "percent": f"{t.percent_bps / 100:g}" if t.percent_bps else "",
            "cap": cents_to_yuan_str(t.cap_cents) if t.cap_cents else "",
            "exchange_sku_id": str(t.exchange_sku_id or ""), "scope": t.scope,
            "scope_product_ids": ", ".join(map(str, t.scope_product_ids or [])),
            "scope_category_ids": ", ".join(map(str, t.scope_category_ids or [])),
            "excluded_product_ids": ", ".join(map(str, t.excluded_product_ids or [])), "validity": t.validity,
            "starts_at": _local_input(t.starts_at), "ends_at": _local_input(t.ends_at),
            "valid_days": str(t.valid_days or ""), "total_stock": str(t.total_stock or ""),
            "per_customer_limit": str(t.per_customer_limit), "channels": list(t.channels or [])}


def _yuan(typed: dict[str, Any], errors: dict[str, str], name: str) -> int | None:
    raw = str(typed.get(name) or "").strip()
    if not raw:
        return None
    try:
        cents = yuan_to_cents(raw[:20])
        if cents < 0 or cents > 10**9:
            raise ValueError(raw)
        return cents
    except (ValueError, ArithmeticError):
        errors[name] = _("Enter an amount in yuan, like 12.50.")
        return None


def _int(typed: dict[str, Any], errors: dict[str, str], name: str, high: int = 10**9) -> int | None:
    raw = str(typed.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12 or int(raw) > high:
        errors[name] = _("Enter a whole number.")
        return None
    return int(raw)


def _id_list(typed: dict[str, Any], errors: dict[str, str], name: str) -> list[int]:
    parts = [p for p in re.split(r"[\s,，]+", str(typed.get(name) or "")) if p]
    if len(parts) > 500 or not all(p.isdigit() and 0 < int(p) < 2**53 for p in parts):
        errors[name] = _("List ids separated by commas.")
        return []
    return [int(p) for p in parts]


def _dt(typed: dict[str, Any], errors: dict[str, str], name: str) -> dt.datetime | None:
    raw = str(typed.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.datetime.fromisoformat(raw[:19]).replace(tzinfo=clock.SHANGHAI).astimezone(dt.UTC)
    except ValueError:
        errors[name] = _("Enter a date and time.")
        return None


def _parse(typed: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    percent_raw = str(typed.get("percent") or "").strip()
    percent_bps = None
    if percent_raw:
        try:
            percent_bps = percent_to_bps(percent_raw[:8])
        except ValueError:
            errors["percent"] = _("Enter the percentage off, like 15.")
    sku = _int(typed, errors, "exchange_sku_id", high=2**53)
    data = {"name": typed["name"], "description": typed["description"], "kind": typed["kind"],
            "amount_cents": _yuan(typed, errors, "amount"), "threshold_cents": _yuan(typed, errors, "threshold"),
            "percent_bps": percent_bps, "cap_cents": _yuan(typed, errors, "cap"), "exchange_sku_id": sku,
            "scope": typed["scope"], "scope_product_ids": _id_list(typed, errors, "scope_product_ids"),
            "scope_category_ids": _id_list(typed, errors, "scope_category_ids"),
            "excluded_product_ids": _id_list(typed, errors, "excluded_product_ids"), "validity": typed["validity"],
            "starts_at": _dt(typed, errors, "starts_at"), "ends_at": _dt(typed, errors, "ends_at"),
            "valid_days": _int(typed, errors, "valid_days"), "total_stock": _int(typed, errors, "total_stock"),
            "per_customer_limit": _int(typed, errors, "per_customer_limit"),
            "channels": [c for c in typed["channels"] if c in service.CHANNELS]}
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return data


def _fields_of(exc: AppError) -> dict[str, str]:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not isinstance(fields, dict):
        return {"form": exc.translated()}
    out: dict[str, str] = {}
    for key, message in fields.items():
        name = RENAME.get(key, key)
        if name in FORM_FIELDS or name == "channels":
            out[name] = str(message)
        else:
            out["form"] = f"{out.get('form', '')} {message}".strip()
    return out


# ==================================================================== console


def _console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
             status: int = 200) -> Response:
    key = request.query_params.get("ok", "")
    base = {"active_menu": "promotions", "labels": LABELS, "flash": _(FLASH[key]) if key in FLASH else None,
            "describe": service.describe, "can_manage": can_manage(principal)}
    return render(request, f"promotions/{name}", {**base, **ctx}, status_code=status)




@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    page = service.list_templates(session, actor=principal, status=status, cursor=cursor, limit=50)
    figures = service.figures(session, merchant_id=principal.merchant_id, template_ids=[t.id for t in page.items])
    return _console(request, session, principal, "coupons_list.html",
                    {"page": page, "figures": figures, "status": status})


def _form_page(request: Request, session: Any, principal: Principal, template: Any | None, typed: dict[str, Any],
               errors: dict[str, str], status: int = 200) -> Response:
    return _console(request, session, principal, "coupons_form.html",
                    {"template": template, "typed": typed, "errors": errors}, status=status)


@router.get(BASE + "/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    return _form_page(request, session, principal, None, _typed_of(None), {})


def _save(request: Request, session: Any, principal: Principal, form: Any, template: Any | None) -> Response:
    require_manager(principal)
    typed: dict[str, Any] = {f: form_str(form, f, max_length=4000 if f.endswith("_ids") else 300)
                             for f in FORM_FIELDS}
    typed["channels"] = [str(c)[:20] for c in form.getlist("channels")][:10]
    try:
        data = _parse(typed)
        if template is None:
            template = service.create_template(session, actor=principal, publish=bool(form.get("publish")), **data)
        else:
            service.update_template(session, actor=principal, template_id=template.id, **data)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _form_page(request, session, principal, template, typed, _fields_of(exc), status=exc.status_code)
    return RedirectResponse(f"{BASE}/{template.id}?ok=saved", status_code=303)


@router.post(BASE + "/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _save(request, session, principal, form, None)


@router.get(BASE + "/{template_id}")
def console_detail(template_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    template = service.get_template(session, template_id, merchant_id=principal.merchant_id)
    summary = service.template_summary(session, merchant_id=principal.merchant_id, template_id=template.id)
    slug = merchants.get_merchant(session, principal.merchant_id).slug
    code = (request.query_params.get("share") or "")[:40]
    share = {"url": f"/s/{code}", "qr_png_url": f"/s/{code}/qr.png"} if re.fullmatch(r"[A-Za-z0-9_-]+", code) \
        else None
    issued = request.query_params.get("issued")
    return _console(request, session, principal, "coupons_detail.html", {
        "t": template, "summary": summary, "shop_url": _coupon_url(slug, template.id), "share": share,
        "issued": int(issued) if issued and issued.isdigit() and len(issued) < 8 else None,
        "refused": {k: v for k, v in request.query_params.items() if k.startswith("coupon_") and v.isdigit()}})


@router.get(BASE + "/{template_id}/edit")
def console_edit(template_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    template = service.get_template(session, template_id, merchant_id=principal.merchant_id)
    return _form_page(request, session, principal, template, _typed_of(template), {})


@router.post(BASE + "/{template_id}/edit")
def console_update(template_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    template = service.get_template(session, template_id, merchant_id=principal.merchant_id)
    return _save(request, session, principal, form, template)


@router.post(BASE + "/{template_id}/share")
def console_share(template_id: PathId, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    template = service.get_template(session, template_id, merchant_id=principal.merchant_id)
    share = shares.create_share(session, actor=principal, target_type="coupon", target_id=template.id)
    return RedirectResponse(f"{BASE}/{template.id}?share={share.code}", status_code=303)


@router.post(BASE + "/{template_id}/issue")
def console_issue(template_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                  form: ConsoleForm) -> Response:
    """Send one coupon each to the customers listed by id (a guide: to their own customers)."""
    raw = form_str(form, "customer_ids", max_length=60_000)
    ids = [int(p) for p in re.split(r"[\s,，]+", raw) if p.isdigit() and 0 < int(p) < 2**53][:service.MAX_BULK]
    channel = "guide" if principal.role == "guide" else (form_str(form, "channel", max_length=20) or "guide")
    result = service.issue_to_customers(session, actor=principal, template_id=template_id, customer_ids=ids,
                                        channel=channel if channel in ("guide", "segment", "campaign") else "guide")
    query = "&".join(f"{k}={v}" for k, v in sorted(result["refused"].items()))
    return RedirectResponse(f"{BASE}/{template_id}?issued={result['issued']}" + (f"&{query}" if query else ""),
                            status_code=303)


@router.post(BASE + "/{template_id}/{action}")
def console_action(template_id: PathId, action: Annotated[str, Path(max_length=10)], session: DbSession,
                   principal: ConsoleStaff, form: ConsoleForm) -> Response:
    change = ACTIONS.get(action)
    if change is None:
        raise NotFound()
    change(session, actor=principal, template_id=template_id)
    return RedirectResponse(f"{BASE}/{template_id}?ok={action}", status_code=303)


# ==================================================================== H5


@router.get("/shop/{m}/coupons")
def shop_coupons(request: Request, merchant: ShopMerchant, session: DbSession,
                 customer: OptionalShopCustomer) -> Response:
    """My coupons (by status) and the coupon centre (claim buttons)."""
    tab = request.query_params.get("tab") or ("mine" if customer else "centre")
    tab = tab if tab in ("mine", "centre") else "mine"
    status = request.query_params.get("status") or "available"
    status = status if status in COUPON_STATUS_LABELS else "available"
    mine = service.my_coupons(session, merchant_id=merchant.id, customer_id=customer.customer_id, status=status) \
        if customer and tab == "mine" else []
    centre = service.centre(session, merchant_id=merchant.id, customer_id=customer.customer_id if customer else None) \
        if tab == "centre" else []
    error = request.query_params.get("error", "")
    ok = request.query_params.get("ok", "")
    return render(request, "promotions/coupons_shop.html", {
        "tab": "me", "page_tab": tab, "status": status, "mine": mine, "centre": centre, "customer": customer,
        "labels": LABELS, "describe": service.describe, "now": clock.now(),
        "highlight": request.query_params.get("template", ""),
        "flash": _(SHOP_ERRORS[error]) if error in SHOP_ERRORS else (_(FLASH[ok]) if ok in FLASH else None),
        "flash_kind": "error" if error in SHOP_ERRORS else "ok"})


@router.post("/shop/{m}/coupons/claim/{template_id}")
def shop_claim(template_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
               form: ShopForm) -> Response:
    back = f"/shop/{merchant.slug}/coupons?tab=centre"
    try:
        service.claim(session, actor=customer, template_id=template_id)
    except AppError as exc:
        if exc.status_code not in (404, 409):
            raise
        return RedirectResponse(f"{back}&error={exc.code}", status_code=303)
    return RedirectResponse(f"{back}&ok=claimed", status_code=303)


def member_links_slot(request: Request | None, **_context: Any) -> Markup:
    """`shop.member_links` (the member centre): "My coupons" with how many the customer can use now."""
    if request is None:
        return Markup("")
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None:
        return Markup("")
    customer = current_shop_customer(request, session, merchant)
    if customer is None or customer.customer_id is None:
        return Markup("")
    n = service.available_count(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    return Markup('<nav class="section me-links"><a class="row" href="/shop/{slug}/coupons" data-testid="my-coupons">'
                  '{label} <span class="muted" data-testid="my-coupons-count">{n} ›</span></a></nav>').format(
        slug=merchant.slug, label=_("My coupons"), n=n)


register_slot("shop.member_links", member_links_slot)


def product_coupons_slot(request: Request | None, product: Any = None, **_context: Any) -> Markup:
    """`shop.product_coupons` (the product page): coupons in the coupon centre that could apply to this
    product, with a link to claim them. One query; nothing shown when there are none."""
    if request is None or product is None:
        return Markup("")
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None:
        return Markup("")
    entries = service.centre(session, merchant_id=merchant.id, customer_id=None, product_id=product.id,
                             category_id=getattr(product, "category_id", None))[:3]
    if not entries:
        return Markup("")
    labels = Markup(" · ").join(Markup('<span class="o-tag">{}</span>').format(e["label"]) for e in entries)
    return Markup('<a class="section row" href="/shop/{slug}/coupons?tab=centre" data-testid="product-coupons">'
                  '{title} {labels} <span class="muted">{claim} ›</span></a>').format(
        slug=merchant.slug, title=_("Coupons"), labels=labels, claim=_("Claim"))


register_slot("shop.product_coupons", product_coupons_slot)
