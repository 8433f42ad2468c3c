"""promotions: payment marketing (支付营销): what the payment result page offers — console and H5 pages.

Console (/console/promotions/payment-offers): rules by priority with their figures (shown, claimed, clicked,
converted), builder, pause / resume / end. H5: the offer on the paid order page (the `shop.order_paid` slot),
its claim form and the link's redirect route that counts the click.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, ValidationFailed
from siyu.core.money import cents_to_yuan_str
from siyu.core.templating import register_slot, templates
from siyu.core.web import DbSession, form_str
from siyu.customers.deps import OptionalShopCustomer, ShopForm, ShopPageCustomer
from siyu.membership.service import tiers as tiers_service
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.service import payment_offers as service
from siyu.promotions.service.split_coupons import require_manager, require_staff
from siyu.promotions.views.split_coupons import (
    console,
    fields_of,
    local_input,
    parse_dt,
    parse_int,
    parse_yuan,
    status_action,
    template_choices,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/payment-offers"
FORM_FIELDS = ("name", "priority", "min_paid", "max_paid", "customer_type", "tier_id", "store_id", "offer_kind",
               "link_url", "title", "conversion_days", "starts_at", "ends_at")
KIND_LABELS = {"coupon": "A coupon", "gift_pack": "A gift pack of coupons", "link": "A link"}
TYPE_LABELS = {"any": "Everyone", "new": "New customers (first paid order)", "returning": "Returning customers"}


def _typed_of(r: Any | None) -> dict[str, Any]:
    if r is None:
        now = clock.now()
        return {"name": "", "priority": "100", "min_paid": "0", "max_paid": "", "customer_type": "any", "tier_id": "",
                "store_id": "", "offer_kind": "coupon", "template_ids": [], "link_url": "", "title": "",
                "conversion_days": "7", "starts_at": local_input(now), "ends_at": local_input(now + dt.timedelta(days=30))}
    return {"name": r.name, "priority": str(r.priority), "min_paid": cents_to_yuan_str(r.min_paid_cents),
            "max_paid": cents_to_yuan_str(r.max_paid_cents) if r.max_paid_cents is not None else "",
            "customer_type": r.customer_type, "tier_id": str(r.tier_id or ""), "store_id": str(r.store_id or ""),
            "offer_kind": r.offer_kind, "template_ids": [str(t) for t in r.template_ids or []], "link_url": r.link_url,
            "title": r.title, "conversion_days": str(r.conversion_days), "starts_at": local_input(r.starts_at),
            "ends_at": local_input(r.ends_at)}


def _parse(typed: dict[str, Any]) -> service.OfferRuleIn:
    errors: dict[str, str] = {}
    template_ids = []
    for raw in typed["template_ids"]:
        if not raw.isdigit() or len(raw) > 16 or not 0 < int(raw) < 2**53:
            errors["template_ids"] = "Choose one coupon (a gift pack: up to five different coupons)."
        else:
            template_ids.append(int(raw))
    data = dict(
        name=typed["name"], offer_kind=typed["offer_kind"], priority=parse_int(typed, errors, "priority", high=10_000),
        min_paid_cents=parse_yuan(typed, errors, "min_paid", optional=True) or 0,
        max_paid_cents=parse_yuan(typed, errors, "max_paid", optional=True), customer_type=typed["customer_type"],
        tier_id=parse_int(typed, errors, "tier_id", low=1, high=2**53, optional=True),
        store_id=parse_int(typed, errors, "store_id", low=1, high=2**53, optional=True),
        template_ids=template_ids, link_url=typed["link_url"], title=typed["title"],
        conversion_days=parse_int(typed, errors, "conversion_days", low=1, high=90),
        starts_at=parse_dt(typed, errors, "starts_at"), ends_at=parse_dt(typed, errors, "ends_at"))
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return service.OfferRuleIn(**data)  # type: ignore[arg-type]


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    page = service.list_rules(session, actor=principal, cursor=request.query_params.get("cursor") or None, limit=50)
    figures = service.figures(session, merchant_id=principal.merchant_id, rule_ids=[r.id for r in page.items])
    return console(request, session, principal, "payment_offers_list.html", {
        "page": page, "figures": figures, "kind_labels": KIND_LABELS, "type_labels": TYPE_LABELS})


def _form_page(request: Request, session: Any, principal: Principal, rule: Any | None, typed: dict[str, Any],
               errors: dict[str, str], status: int = 200) -> Response:
    return console(request, session, principal, "payment_offers_form.html", {
        "rule": rule, "typed": typed, "errors": errors, "kind_labels": KIND_LABELS, "type_labels": TYPE_LABELS,
        "templates": template_choices(session, principal.merchant_id, "payment"),
        "tiers": tiers_service.list_tiers(session, principal.merchant_id, active_only=True),
        "stores": merchants.list_stores(session, actor=principal, active_only=True)}, status=status)


@router.get(BASE + "/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    return _form_page(request, session, principal, None, _typed_of(None), {})


def _save(request: Request, session: Any, principal: Principal, form: Any, rule: Any | None) -> Response:
    require_manager(principal)
    typed: dict[str, Any] = {f: form_str(form, f, max_length=300) for f in FORM_FIELDS}
    typed["template_ids"] = [v.strip()[:20] for v in form.getlist("template_ids") if isinstance(v, str) and v.strip()][:10]
    try:
        data = _parse(typed)
        if rule is None:
            rule = service.create_rule(session, actor=principal, data=data)
        else:
            service.update_rule(session, rule.id, actor=principal, data=data)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = fields_of(exc, known=(*FORM_FIELDS, "template_ids"),
                           rename={"min_paid_cents": "min_paid", "max_paid_cents": "max_paid"})
        return _form_page(request, session, principal, rule, typed, errors, status=exc.status_code)
    return RedirectResponse(f"{BASE}/{rule.id}?ok=saved", status_code=303)


@router.post(BASE + "/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _save(request, session, principal, form, None)


@router.get(BASE + "/{rule_id}")
def console_detail(rule_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_staff(principal)
    r = service.get_rule(session, rule_id, merchant_id=principal.merchant_id)
    return console(request, session, principal, "payment_offers_detail.html", {
        "r": r, "kind_labels": KIND_LABELS, "type_labels": TYPE_LABELS,
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


def _coupon_labels(session: Any, merchant_id: int, template_ids: list[int]) -> list[str]:
    from siyu.promotions.service import coupons

    found = coupons.templates_by_id(session, merchant_id, [int(t) for t in template_ids])
    return [f"{found[t].name} · {coupons.describe(found[t])}" for t in template_ids if t in found]


def order_paid_slot(request: Request | None, *, order: Any = None, **_: Any) -> Markup:
    """The payment result page's offer (`shop.order_paid`): recorded as shown once per rule and order."""
    if request is None or order is None or order.paid_at is None:
        return Markup("")
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None:
        return Markup("")
    with session.begin_nested():  # should recording the show fail, the page's own transaction stays usable
        offer = service.show_for_order(session, order=order)
    if offer is None:
        return Markup("")
    html = templates.env.get_template("promotions/payment_offers_slot.html").render(
        request=request, merchant=merchant, rule=offer.rule, show=offer.show,
        coupons=_coupon_labels(session, merchant.id, list(offer.rule.template_ids or [])),
        csrf=getattr(request.state, "csrf_token", ""))
    return Markup(html)


register_slot("shop.order_paid", order_paid_slot)


@router.post("/shop/{m}/offers/{show_id}/claim")
def shop_claim(show_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
               form: ShopForm) -> Response:
    show = service.own_show(session, actor=customer, show_id=show_id)
    try:
        service.claim(session, actor=customer, show_id=show_id)
        ok = "claimed"
    except AppError as exc:
        if exc.status_code != 409:
            raise
        ok = exc.code
    return RedirectResponse(f"/shop/{merchant.slug}/orders/{show.order_id}?paid=1&offer={ok}", status_code=303)


@router.get("/shop/{m}/offers/{show_id}/go")
def shop_go(show_id: PathId, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer) -> Response:
    url = service.click(session, merchant_id=merchant.id, show_id=show_id,
                        customer_id=customer.customer_id if customer else None)
    return RedirectResponse(url, status_code=303)
