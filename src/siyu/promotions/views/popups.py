"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — console and H5 pages.

Console (/console/promotions/popups): rules with their figures (impressions, people reached, dismissals, clicks,
claims, conversions), builder, pause / resume / end. H5: the pop-up itself on every shop page (the `shop.popup`
slot: an open <dialog> that works without JavaScript), and its dismiss, claim and link routes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.attribution.service.shares import valid_visitor_id
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, ValidationFailed
from siyu.core.templating import register_slot, templates
from siyu.core.web import DbSession, PostedForm, form_str
from siyu.customers import service as customers
from siyu.customers.deps import (
    OptionalShopCustomer,
    ShopForm,
    ShopPageCustomer,
    current_shop_customer,
    visitor_id_of,
)
from siyu.membership.service import tiers as tiers_service
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.service import popups as service
from siyu.promotions.service.split_coupons import require_manager, require_staff
from siyu.promotions.views.split_coupons import (
    console,
    fields_of,
    local_input,
    parse_dt,
    parse_int,
    status_action,
    template_choices,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/popups"
FORM_FIELDS = ("name", "priority", "audience", "dormant_days", "tier_id", "tag_id", "content_kind", "template_id",
               "link_url", "title", "body", "image_url", "pages", "cap_per_day", "cap_total", "conversion_days",
               "starts_at", "ends_at")
AUDIENCE_LABELS = {"everyone": "Everyone", "new_visitor": "New visitors (not signed in)",
                   "new_customer": "New customers (no paid order yet)", "returning": "Returning customers",
                   "dormant": "Dormant customers (no order for N days)", "tier": "A member tier",
                   "tag": "Customers with a tag"}
PAGE_LABELS = {"all": "Every page", "home": "Home page", "product": "Product pages"}
CONTENT_LABELS = {"coupon": "A coupon", "link": "A link"}
# Pages where a pop-up would get in the way of paying.
QUIET = re.compile(r"^/shop/[^/]+/(checkout|pay|login|orders/\d+/pay)")


def _typed_of(r: Any | None) -> dict[str, str]:
    if r is None:
        now = clock.now()
        return {"name": "", "priority": "100", "audience": "new_visitor", "dormant_days": "30", "tier_id": "",
                "tag_id": "", "content_kind": "link", "template_id": "", "link_url": "", "title": "", "body": "",
                "image_url": "", "pages": "home", "cap_per_day": "1", "cap_total": "3", "conversion_days": "7",
                "starts_at": local_input(now), "ends_at": local_input(now + dt.timedelta(days=30))}
    return {"name": r.name, "priority": str(r.priority), "audience": r.audience, "dormant_days": str(r.dormant_days),
            "tier_id": str(r.tier_id or ""), "tag_id": str(r.tag_id or ""), "content_kind": r.content_kind,
            "template_id": str(r.template_id or ""), "link_url": r.link_url, "title": r.title, "body": r.body,
            "image_url": r.image_url, "pages": r.pages, "cap_per_day": str(r.cap_per_day),
            "cap_total": str(r.cap_total), "conversion_days": str(r.conversion_days),
            "starts_at": local_input(r.starts_at), "ends_at": local_input(r.ends_at)}


def _parse(typed: dict[str, str]) -> service.PopupRuleIn:
    errors: dict[str, str] = {}
    data = dict(
        name=typed["name"], audience=typed["audience"], content_kind=typed["content_kind"], title=typed["title"],
        priority=parse_int(typed, errors, "priority", high=10_000),
        dormant_days=parse_int(typed, errors, "dormant_days", high=3650, optional=True) or 0,
        tier_id=parse_int(typed, errors, "tier_id", low=1, high=2**53, optional=True),
        tag_id=parse_int(typed, errors, "tag_id", low=1, high=2**53, optional=True),
        template_id=parse_int(typed, errors, "template_id", low=1, high=2**53, optional=True),
        link_url=typed["link_url"], body=typed["body"], image_url=typed["image_url"], pages=typed["pages"],
        cap_per_day=parse_int(typed, errors, "cap_per_day", low=1, high=100),
        cap_total=parse_int(typed, errors, "cap_total", low=1, high=10_000),
        conversion_days=parse_int(typed, errors, "conversion_days", low=1, high=90),
        starts_at=parse_dt(typed, errors, "starts_at"), ends_at=parse_dt(typed, errors, "ends_at"))
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return service.PopupRuleIn(**data)  # type: ignore[arg-type]


def _labels() -> dict[str, Any]:
    return {"audience_labels": AUDIENCE_LABELS, "page_labels": PAGE_LABELS, "content_labels": CONTENT_LABELS}


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    page = service.list_rules(session, actor=principal, cursor=request.query_params.get("cursor") or None, limit=50)
    figures = service.figures(session, merchant_id=principal.merchant_id, rule_ids=[r.id for r in page.items])
    return console(request, session, principal, "popups_list.html", {"page": page, "figures": figures, **_labels()})


def _form_page(request: Request, session: Any, principal: Principal, rule: Any | None, typed: dict[str, str],
               errors: dict[str, str], status: int = 200) -> Response:
    return console(request, session, principal, "popups_form.html", {
        "rule": rule, "typed": typed, "errors": errors, **_labels(),
        "templates": template_choices(session, principal.merchant_id, "campaign"),
        "tiers": tiers_service.list_tiers(session, principal.merchant_id, active_only=True),
        "tag_groups": customers.list_tag_groups(session, actor=principal)}, status=status)


@router.get(BASE + "/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    return _form_page(request, session, principal, None, _typed_of(None), {})


def _save(request: Request, session: Any, principal: Principal, form: Any, rule: Any | None) -> Response:
    require_manager(principal)
    typed = {f: form_str(form, f, max_length=300) for f in FORM_FIELDS}
    try:
        data = _parse(typed)
        if rule is None:
            rule = service.create_rule(session, actor=principal, data=data)
        else:
            service.update_rule(session, rule.id, actor=principal, data=data)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _form_page(request, session, principal, rule, typed, fields_of(exc, known=FORM_FIELDS),
                          status=exc.status_code)
    return RedirectResponse(f"{BASE}/{rule.id}?ok=saved", status_code=303)


@router.post(BASE + "/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _save(request, session, principal, form, None)


@router.get(BASE + "/{rule_id}")
def console_detail(rule_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_staff(principal)
    r = service.get_rule(session, rule_id, merchant_id=principal.merchant_id)
    return console(request, session, principal, "popups_detail.html", {
        "r": r, **_labels(),
        "figures": service.figures(session, merchant_id=principal.merchant_id, rule_ids=[r.id])[r.id]})


@router.get(BASE + "/{rule_id}/edit")
def console_edit(rule_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    r = service.get_rule(session, rule_id, merchant_id=principal.merchant_id)
    return _form_page(request, session, principal, r, _typed_of(r), {})


@router.post(BASE + "/{rule_id}/edit")
def console_update(rule_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    r = service.get_rule(session, rule_id, merchant_id=principal.merchant_id)
    return _save(request, session, principal, form, r)


@router.post(BASE + "/{rule_id}/{action}")
def console_action(rule_id: PathId, action: Annotated[str, Path(max_length=10)], session: DbSession,
                   principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return status_action(session, principal, rule_id, action, service.change_status, BASE)


# ================================================================= H5


def _page_kind(path: str, slug: str) -> str:
    rest = path[len(f"/shop/{slug}"):]
    if rest in ("", "/"):
        return "home"
    if re.match(r"^/p/\d+/?$", rest):
        return "product"
    return "other"


def popup_slot(request: Request | None, **_: Any) -> Markup:
    """The pop-up of this H5 page view (`shop.popup`). Without a running rule: one indexed query, nothing more."""
    if request is None or request.method != "GET":
        return Markup("")
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None or QUIET.match(request.url.path) or request.query_params.get("paid"):
        return Markup("")  # never over paying, nor over the payment result page's own offer
    now = clock.now()
    rules = service.live_rules(session, merchant_id=merchant.id, now=now)
    if not rules:
        return Markup("")
    customer = getattr(request.state, "customer", None)
    if customer is None:
        customer = current_shop_customer(request, session, merchant)
    customer_id = customer.customer_id if customer is not None else None
    visitor_id = valid_visitor_id(visitor_id_of(request))
    # A savepoint: should recording the impression fail, the page's own transaction stays usable.
    with session.begin_nested():
        rule = service.next_popup(session, merchant_id=merchant.id, customer_id=customer_id, visitor_id=visitor_id,
                                  page=_page_kind(request.url.path, merchant.slug), rules=rules)
    if rule is None:
        return Markup("")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = templates.env.get_template("promotions/popups_slot.html").render(
        request=request, merchant=merchant, rule=rule, here=here, signed_in=customer_id is not None,
        csrf=getattr(request.state, "csrf_token", ""), coupon=_coupon_label(session, merchant.id, rule.template_id))
    return Markup(html)


def _coupon_label(session: Any, merchant_id: int, template_id: int | None) -> str:
    if template_id is None:
        return ""
    from siyu.promotions.service import coupons

    found = coupons.templates_by_id(session, merchant_id, [template_id])
    return coupons.describe(found[template_id]) if template_id in found else ""


register_slot("shop.popup", popup_slot)


def _back(merchant: Any, raw: str) -> str:
    home = f"/shop/{merchant.slug}/"
    return raw if raw.startswith(home) and "//" not in raw[1:] and "\\" not in raw and len(raw) <= 500 else home


def _who(request: Request, customer: Any) -> tuple[int | None, str | None]:
    return (customer.customer_id if customer else None), valid_visitor_id(visitor_id_of(request))


@router.post("/shop/{m}/popups/{rule_id}/dismiss")
def shop_dismiss(rule_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                 customer: OptionalShopCustomer, form: PostedForm) -> Response:
    """Dismissing only records that the person closed it (no harm in a forged one), so visitors need no token."""
    customer_id, visitor_id = _who(request, customer)
    service.dismiss(session, merchant_id=merchant.id, rule_id=rule_id, customer_id=customer_id, visitor_id=visitor_id)
    return RedirectResponse(_back(merchant, form_str(form, "next", max_length=500)), status_code=303)


@router.get("/shop/{m}/popups/{rule_id}/go")
def shop_go(rule_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
            customer: OptionalShopCustomer) -> Response:
    customer_id, visitor_id = _who(request, customer)
    url = service.click(session, merchant_id=merchant.id, rule_id=rule_id, customer_id=customer_id,
                        visitor_id=visitor_id)
    return RedirectResponse(url, status_code=303)


@router.post("/shop/{m}/popups/{rule_id}/claim")
def shop_claim(rule_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
               form: ShopForm) -> Response:
    try:
        service.claim(session, actor=customer, rule_id=rule_id)
    except AppError as exc:
        if exc.status_code != 409:
            raise
    return RedirectResponse(f"/shop/{merchant.slug}/coupons", status_code=303)
