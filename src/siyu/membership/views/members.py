"""membership: console pages (/console/membership…: tiers, points rules, points mall, paid plans,
members, counter lookup) and the H5 member centre (/shop/{m}/member…)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import pass_context

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, PermissionDenied, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import yuan_to_cents
from siyu.core.templating import render, templates
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.membership.service import members, points, points_mall, tiers
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest, DeliveryFulfilment, PickupFulfilment

router = APIRouter(include_in_schema=False)

ObjId = Annotated[int, Path(gt=0, le=2**53)]

FLASH = {
    "saved": "Saved.",
    "created": "Created.",
    "adjusted": "Points adjusted.",
    "checked_in": "Checked in: +{n} points.",
    "activated": "Your member card is active.",
    "paid": "Paid membership is active.",
    "refunded": "Refunded: the days are taken off the paid tier.",
}

REASONS = {
    "order_earn": "Earned on an order", "order_points": "Paid at checkout", "order_mall": "Points mall",
    "checkin": "Daily check-in", "profile": "Profile completed", "first_purchase": "First purchase",
    "birthday": "Birthday gift", "adjust": "Staff adjustment", "expire": "Points expired", "return": "Points returned",
    "refund_reverse": "Taken back by a refund", "merge_in": "Moved from a merged customer",
    "merge_out": "Moved to a merged customer",
}


def _stored_value(session: Any, merchant_id: int, customer_id: int) -> Any:
    """The stored-value summary for the include boxes H5 (stored value) provides, when that area exists."""
    from siyu.membership.service import stored_value

    summary = getattr(stored_value, "summary", None)
    return summary(session, merchant_id=merchant_id, customer_id=customer_id) if summary else None


def _flash(request: Request) -> str | None:
    key = request.query_params.get("ok", "")
    n = request.query_params.get("n", "")
    return _(FLASH[key], n=n if n.isdigit() else "0") if key in FLASH else None


def reason_label(reason: str) -> str:
    return _(REASONS.get(reason, reason))


templates.env.filters["points_reason"] = reason_label


@pass_context
def member_summary(context: Any, customer_id: int, merchant_id: int) -> dict[str, Any] | None:
    """For the customers detail page (a Jinja global, so `customers` needs no import of membership):
    the member's card, tier, points, balance and profile, or None without the request's session.
    Reads through the request's own session (a second one would wait on SQLite's write lock)."""
    request = context.get("request")
    session = getattr(getattr(request, "state", None), "db_session", None)
    if session is None:
        return None
    member = members.member_of(session, merchant_id=merchant_id, customer_id=customer_id)
    profile = members.customer_profile(session, merchant_id=merchant_id, customer_id=customer_id)
    if member is None:
        return {"member": None, "profile": profile}
    tier = tiers.effective_tier(session, member)
    return {"member": {"id": member.id, "card_no": member.card_no, "growth": member.growth},
            "tier": tier.name if tier else None, "profile": profile,
            "points": points.balance(session, merchant_id=merchant_id, customer_id=customer_id),
            "stored_value": _stored_value(session, merchant_id, customer_id)}


templates.env.globals["membership_summary"] = member_summary


# ==================================================================== console


def _require_manage(principal: Principal) -> None:
    if not principal.can("membership.manage"):
        raise PermissionDenied()


def _tiers_page(request: Request, session: Any, principal: Principal, *, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, edit_id: int | None = None, status: int = 200) -> Response:
    rows = tiers.list_tiers(session, principal.merchant_id)
    counts = tiers.members_per_tier(session, principal.merchant_id)
    return render(request, "membership/console_tiers.html", {
        "active_menu": "membership", "sub": "tiers", "tiers": rows, "counts": counts, "typed": typed or {},
        "errors": errors or {}, "edit_id": edit_id, "can_manage": principal.can("membership.manage"),
        "flash": _flash(request), "members_total": members.count_members(session, principal.merchant_id),
        "benefits": tiers.benefits,
    }, status_code=status)


TIER_FORM = ("name", "growth_threshold", "discount_percent", "discount_product_ids", "discount_category_ids",
             "points_multiplier", "birthday_points")


def _tier_changes(form: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    typed = {k: form_str(form, k, max_length=2000) for k in TIER_FORM}
    typed["free_shipping"] = "1" if form.get("free_shipping") else ""
    typed["active"] = "1" if form.get("active") else ""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {"name": typed["name"], "growth_threshold": typed["growth_threshold"] or "0",
                               "discount_product_ids": typed["discount_product_ids"],
                               "discount_category_ids": typed["discount_category_ids"],
                               "birthday_points": typed["birthday_points"] or "0",
                               "free_shipping": bool(typed["free_shipping"]), "active": bool(typed["active"])}
    try:  # percentages as typed (5 or 2.5) → bps
        changes["discount_bps"] = yuan_to_cents(typed["discount_percent"] or "0")
    except (ValidationFailed, ValueError):
        errors["discount_percent"] = _("Enter a percentage like 5 or 2.5.")
    try:
        changes["points_multiplier_bps"] = yuan_to_cents(typed["points_multiplier"] or "1") * 100
    except (ValidationFailed, ValueError):
        errors["points_multiplier"] = _("Enter a multiplier like 1 or 1.5.")
    return typed, changes, errors


@router.get("/console/membership")
def console_tiers(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _tiers_page(request, session, principal, typed={"active": "1", "points_multiplier": "1"})


@router.post("/console/membership/tiers")
def console_tier_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    _require_manage(principal)
    typed, changes, errors = _tier_changes(form)
    try:
        if errors:
            raise ValidationFailed(details={"fields": errors})
        tiers.create_tier(session, actor=principal, **changes)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        fields = exc.details.get("fields") or {}
        fields = {("discount_percent" if k == "discount_bps" else "points_multiplier"
                   if k == "points_multiplier_bps" else k): v for k, v in fields.items()}
        return _tiers_page(request, session, principal, typed=typed, errors={**errors, **fields}, status=exc.status_code)
    return RedirectResponse("/console/membership?ok=created", status_code=303)


@router.get("/console/membership/tiers/{tier_id}")
def console_tier_edit(tier_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    tier = tiers.get_tier(session, tier_id, merchant_id=principal.merchant_id)
    typed = {"name": tier.name, "growth_threshold": str(tier.growth_threshold),
             "discount_percent": f"{tier.discount_bps / 100:g}",
             "discount_product_ids": ",".join(str(i) for i in tier.discount_product_ids or []),
             "discount_category_ids": ",".join(str(i) for i in tier.discount_category_ids or []),
             "points_multiplier": f"{tier.points_multiplier_bps / 10_000:g}", "birthday_points": str(tier.birthday_points),
             "free_shipping": "1" if tier.free_shipping else "", "active": "1" if tier.active else ""}
    return _tiers_page(request, session, principal, typed=typed, edit_id=tier.id)


@router.post("/console/membership/tiers/{tier_id}")
def console_tier_update(tier_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff,
                        form: ConsoleForm) -> Response:
    _require_manage(principal)
    typed, changes, errors = _tier_changes(form)
    try:
        if errors:
            raise ValidationFailed(details={"fields": errors})
        tiers.update_tier(session, tier_id, actor=principal, **changes)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _tiers_page(request, session, principal, typed=typed, errors={**errors, **(exc.details.get("fields") or {})},
                           edit_id=tier_id, status=exc.status_code)
    return RedirectResponse("/console/membership?ok=saved", status_code=303)


def _rules_page(request: Request, session: Any, principal: Principal, *, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> Response:
    current = {k: str(v) for k, v in members.rules(session, principal.merchant_id).as_dict().items()}
    return render(request, "membership/console_rules.html", {
        "active_menu": "membership", "sub": "rules", "typed": {**current, **(typed or {})}, "errors": errors or {},
        "fields": list(members.RULE_LIMITS), "limits": members.RULE_LIMITS,
        "can_manage": principal.can("membership.manage"), "flash": _flash(request),
    }, status_code=status)


@router.get("/console/membership/rules")
def console_rules(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _rules_page(request, session, principal)


@router.post("/console/membership/rules")
def console_rules_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    _require_manage(principal)
    typed = {k: form_str(form, k, max_length=20) for k in members.RULE_LIMITS}
    try:
        members.update_rules(session, actor=principal, **typed)
    except ValidationFailed as exc:
        return _rules_page(request, session, principal, typed=typed, errors=exc.details.get("fields") or {}, status=422)
    return RedirectResponse("/console/membership/rules?ok=saved", status_code=303)


def _mall_page(request: Request, session: Any, principal: Principal, *, typed: dict[str, str] | None = None,
               errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return render(request, "membership/console_mall.html", {
        "active_menu": "membership", "sub": "mall", "items": points_mall.list_items(session, principal.merchant_id),
        "typed": typed or {"per_order_limit": "1", "cash": "0"}, "errors": errors or {},
        "can_manage": principal.can("membership.manage"), "flash": _flash(request),
    }, status_code=status)


@router.get("/console/membership/mall")
def console_mall(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _mall_page(request, session, principal)


@router.post("/console/membership/mall")
def console_mall_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    _require_manage(principal)
    typed = {k: form_str(form, k, max_length=20) for k in ("item_id", "sku_id", "points", "cash", "per_order_limit")}
    typed["active"] = "1" if form.get("active") or not typed["item_id"] else ""
    try:
        cash = yuan_to_cents(typed["cash"] or "0")
    except (ValidationFailed, ValueError):
        return _mall_page(request, session, principal, typed=typed, status=422,
                          errors={"cash": _("Enter an amount like 9.90.")})
    try:
        item_id = int(typed["item_id"]) if typed["item_id"].isdigit() else None
        points_mall.save_item(session, actor=principal, item_id=item_id, sku_id=typed["sku_id"], points=typed["points"],
                              cash_cents=cash, per_order_limit=typed["per_order_limit"], active=bool(typed["active"]))
    except ValidationFailed as exc:
        return _mall_page(request, session, principal, typed=typed, errors=exc.details.get("fields") or {}, status=422)
    return RedirectResponse("/console/membership/mall?ok=saved", status_code=303)


def _plans_page(request: Request, session: Any, principal: Principal, *, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return render(request, "membership/console_plans.html", {
        "active_menu": "membership", "sub": "plans", "plans": tiers.list_plans(session, principal.merchant_id),
        "tiers": tiers.list_tiers(session, principal.merchant_id), "typed": typed or {}, "errors": errors or {},
        "can_manage": principal.can("membership.manage"), "flash": _flash(request),
    }, status_code=status)


@router.get("/console/membership/plans")
def console_plans(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _plans_page(request, session, principal)


@router.post("/console/membership/plans")
def console_plan_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    _require_manage(principal)
    typed = {k: form_str(form, k, max_length=40) for k in ("plan_id", "name", "tier_id", "days", "price")}
    typed["active"] = "1" if form.get("active") or not typed["plan_id"] else ""
    try:
        price = yuan_to_cents(typed["price"]) if typed["price"] else None
    except (ValidationFailed, ValueError):
        return _plans_page(request, session, principal, typed=typed, status=422,
                           errors={"price": _("Enter an amount like 99.00.")})
    fields = {"name": typed["name"], "tier_id": typed["tier_id"] or None, "days": typed["days"] or None,
              "price_cents": price, "active": bool(typed["active"])}
    try:
        if typed["plan_id"].isdigit():
            tiers.update_plan(session, int(typed["plan_id"]), actor=principal, **fields)
        else:
            tiers.create_plan(session, actor=principal, **fields)
    except ValidationFailed as exc:
        errors = {("price" if k == "price_cents" else k): v for k, v in (exc.details.get("fields") or {}).items()}
        return _plans_page(request, session, principal, typed=typed, errors=errors, status=422)
    return RedirectResponse("/console/membership/plans?ok=saved", status_code=303)


@router.get("/console/membership/members")
def console_members(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    q = (request.query_params.get("q") or "").strip()[:40]
    raw_tier = request.query_params.get("tier", "")
    tier_id = int(raw_tier) if raw_tier.isdigit() and 0 < int(raw_tier) < 2**53 else None
    cursor = request.query_params.get("cursor") or None
    page = members.list_members(session, actor=principal, q=q, tier_id=tier_id, cursor=cursor)
    balances = points.balances(session, merchant_id=principal.merchant_id,
                               customer_ids=[m.customer_id for m in page.items])
    names = {t.id: t.name for t in tiers.list_tiers(session, principal.merchant_id)}
    next_url = "/console/membership/members?" + urlencode({"q": q, "tier": raw_tier, "cursor": page.next_cursor}) \
        if page.next_cursor else None
    return render(request, "membership/console_members.html", {
        "active_menu": "membership", "sub": "members", "rows": page.items, "balances": balances, "tier_names": names,
        "q": q, "tier": raw_tier, "next_url": next_url, "unmask": customers.may_see_phone(principal),
    })


def _member_page(request: Request, session: Any, principal: Principal, member_id: int, *,
                 typed: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 status: int = 200) -> Response:
    member = members.get_member(session, member_id, actor=principal)
    cursor = request.query_params.get("cursor") or None
    history = points.history(session, merchant_id=principal.merchant_id, customer_id=member.customer_id,
                             cursor=cursor, limit=30)
    customer = customers.get_customer(session, member.customer_id, actor=principal)
    return render(request, "membership/console_member.html", {
        "active_menu": "membership", "sub": "members", "m": member, "customer": customer,
        "progress": tiers.progress(session, member), "tier_history": tiers.tier_history(session, member),
        "tier_names": {t.id: t.name for t in tiers.list_tiers(session, principal.merchant_id)},
        "summary": points.summary(session, merchant_id=principal.merchant_id, customer_id=member.customer_id),
        "history": history.items, "next_cursor": history.next_cursor, "typed": typed or {}, "errors": errors or {},
        "can_adjust": principal.can("membership.adjust"),
        "flash": _flash(request) or (request.query_params.get("err") or "")[:200] or None,
        "flash_kind": "error" if request.query_params.get("err") else "ok",
        "profile": members.customer_profile(session, merchant_id=principal.merchant_id, customer_id=member.customer_id),
        "unmask": customers.may_see_phone(principal), "purchases": tiers.purchases_of(session, member),
        "card_svg": members.card_qr_svg(member, scale=3),
        "stored_value": _stored_value(session, principal.merchant_id, member.customer_id),
    }, status_code=status)


@router.get("/console/membership/members/{member_id}")
def console_member(member_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _member_page(request, session, principal, member_id)


@router.post("/console/membership/members/{member_id}/adjust")
def console_member_adjust(member_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff,
                          form: ConsoleForm) -> Response:
    member = members.get_member(session, member_id, actor=principal)
    typed = {"delta": form_str(form, "delta", max_length=12), "reason": form_str(form, "reason", max_length=200)}
    raw = typed["delta"].replace("+", "")
    try:
        delta = int(raw) if raw.lstrip("-").isdigit() else 0
        points.adjust(session, actor=principal, customer_id=member.customer_id, delta=delta, reason=typed["reason"])
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = exc.details.get("fields") or {"delta": _("Not enough points for this change.")}
        return _member_page(request, session, principal, member_id, typed=typed, errors=errors,
                            status=exc.status_code)
    return RedirectResponse(f"/console/membership/members/{member_id}?ok=adjusted", status_code=303)


@router.post("/console/membership/purchases/{purchase_id}/refund")
def console_purchase_refund(purchase_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff,
                            form: ConsoleForm) -> Response:
    member_id = form_str(form, "member_id", max_length=20)
    back = f"/console/membership/members/{member_id}" if member_id.isdigit() else "/console/membership/members"
    try:
        tiers.refund_purchase(session, purchase_id, actor=principal, reason=form_str(form, "reason", max_length=200))
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        fields = exc.details.get("fields") or {}
        return RedirectResponse(back + "?" + urlencode({"err": fields.get("reason") or exc.translated()}),
                                status_code=303)
    return RedirectResponse(back + "?ok=refunded", status_code=303)


@router.get("/console/membership/customers/{customer_id}")
def console_customer_member(customer_id: ObjId, request: Request, session: DbSession,
                            principal: ConsoleStaff) -> Response:
    """From the customer's page: their member card, or a page saying they have none."""
    customers.get_customer(session, customer_id, actor=principal)
    member = members.member_of(session, merchant_id=principal.merchant_id, customer_id=customer_id)
    if member is None:
        raise NotFound("This customer has no member card.", code="not_a_member")
    return RedirectResponse(f"/console/membership/members/{member.id}", status_code=303)


@router.post("/console/membership/customers/{customer_id}/activate")
def console_customer_activate(customer_id: ObjId, request: Request, session: DbSession, principal: ConsoleStaff,
                              form: ConsoleForm) -> Response:
    """Staff open a card for a customer at the counter (with the phone they give)."""
    customer = customers.get_customer(session, customer_id, actor=principal)
    phone = form_str(form, "phone", max_length=20) or customer.phone
    try:
        member = members.activate(session, actor=principal, customer_id=customer_id, phone=phone)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        fields = exc.details.get("fields") or {}
        message = fields.get("phone") or exc.translated()
        return RedirectResponse(f"/console/customers/{customer_id}?" + urlencode({"member_error": message}),
                                status_code=303)
    return RedirectResponse(f"/console/membership/members/{member.id}?ok=activated", status_code=303)


@router.get("/console/membership/lookup")
def console_lookup(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    """Counter lookup: type or scan the card number (or the phone)."""
    code = (request.query_params.get("code") or "").strip()[:40]
    error = None
    if code:
        try:
            member = members.lookup(session, actor=principal, code=code)
            return RedirectResponse(f"/console/membership/members/{member.id}", status_code=303)
        except NotFound:
            error = _("No member has this card number or phone.")
    return render(request, "membership/console_lookup.html", {
        "active_menu": "membership", "sub": "lookup", "code": code, "error": error,
    }, status_code=404 if error else 200)


# ==================================================================== H5


def _shop_centre(request: Request, session: Any, merchant: Any, customer: Principal, *,
                 typed: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 flash: str | None = None, flash_kind: str = "ok", status: int = 200) -> Response:
    member = members.own_member(session, actor=customer)
    ctx: dict[str, Any] = {"tab": "me", "member": member, "typed": typed or {}, "errors": errors or {},
                           "flash": flash or _flash(request), "flash_kind": flash_kind,
                           "tiers": tiers.list_tiers(session, merchant.id, active_only=True), "benefits": tiers.benefits,
                           "rules": members.rules(session, merchant.id)}
    if member is not None:
        ctx.update({
            "progress": tiers.progress(session, member),
            "summary": points.summary(session, merchant_id=merchant.id, customer_id=member.customer_id),
            "history": points.history(session, merchant_id=merchant.id, customer_id=member.customer_id, limit=5).items,
            "card_svg": members.card_qr_svg(member),
            "checked_in_today": member.last_checkin_on == clock.today_local(),
            "plans": tiers.list_plans(session, merchant.id, active_only=True),
            "mall": points_mall.shop_items(session, merchant.id)[:4],
            "profile_done": members.profile_complete(member),
            "stored_value": _stored_value(session, merchant.id, member.customer_id),
        })
    else:
        me = customers.own_customer(session, actor=customer)
        ctx["typed"] = {"phone": me.phone or "", "name": me.name or "",
                        "birthday": me.birthday.isoformat() if me.birthday else "", **(typed or {})}
    return render(request, "membership/shop_member.html", ctx, status_code=status)


@router.get("/shop/{m}/member")
def shop_member(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    return _shop_centre(request, session, merchant, customer)


@router.post("/shop/{m}/member/activate")
def shop_member_activate(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                         form: ShopForm) -> Response:
    typed = {k: form_str(form, k, max_length=64) for k in ("phone", "name", "birthday")}
    try:
        members.activate(session, actor=customer, phone=typed["phone"], birthday=typed["birthday"] or None,
                         name=typed["name"])
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _shop_centre(request, session, merchant, customer, typed=typed,
                            errors=exc.details.get("fields") or {"phone": exc.translated()},
                            flash=_("Some fields are not valid."), flash_kind="error", status=exc.status_code)
    return RedirectResponse(f"/shop/{merchant.slug}/member?ok=activated", status_code=303)


@router.post("/shop/{m}/member/profile")
def shop_member_profile(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                        form: ShopForm) -> Response:
    typed = {k: form_str(form, k, max_length=64) for k in ("name", "birthday")}
    try:
        members.update_member_profile(session, actor=customer, name=typed["name"] or None,
                                      birthday=typed["birthday"] or None)
    except ValidationFailed as exc:
        return _shop_centre(request, session, merchant, customer, typed=typed, errors=exc.details.get("fields") or {},
                            flash=_("Some fields are not valid."), flash_kind="error", status=422)
    return RedirectResponse(f"/shop/{merchant.slug}/member?ok=saved", status_code=303)


@router.post("/shop/{m}/member/check-in")
def shop_member_check_in(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                         form: ShopForm) -> Response:
    try:
        result = members.check_in(session, actor=customer)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return _shop_centre(request, session, merchant, customer, flash=exc.translated(), flash_kind="error",
                            status=409)
    return RedirectResponse(f"/shop/{merchant.slug}/member?ok=checked_in&n={result['points']}", status_code=303)


@router.get("/shop/{m}/member/points")
def shop_member_points(request: Request, merchant: ShopMerchant, session: DbSession,
                       customer: ShopPageCustomer) -> Response:
    member = members.own_member(session, actor=customer)
    if member is None:
        return RedirectResponse(f"/shop/{merchant.slug}/member", status_code=303)
    page = points.history(session, merchant_id=merchant.id, customer_id=member.customer_id,
                          cursor=request.query_params.get("cursor") or None, limit=30)
    return render(request, "membership/shop_points.html", {
        "tab": "me", "member": member, "history": page.items, "next_cursor": page.next_cursor,
        "summary": points.summary(session, merchant_id=merchant.id, customer_id=member.customer_id),
    })


@router.get("/shop/{m}/member/mall")
def shop_member_mall(request: Request, merchant: ShopMerchant, session: DbSession,
                     customer: ShopPageCustomer) -> Response:
    member = members.own_member(session, actor=customer)
    return render(request, "membership/shop_mall.html", {
        "tab": "me", "member": member, "items": points_mall.shop_items(session, merchant.id),
        "summary": points.summary(session, merchant_id=merchant.id, customer_id=customer.customer_id or 0)
        if member else None,
    })


def _exchange_page(request: Request, session: Any, merchant: Any, customer: Principal, item_id: int, *,
                   typed: dict[str, str] | None = None, error: str | None = None, status: int = 200) -> Response:
    item = points_mall.get_item(session, item_id, merchant_id=merchant.id, active_only=True)
    addresses = orders.list_addresses(session, actor=customer)
    stores = orders.shop_stores(session, merchant_id=merchant.id)
    member = members.own_member(session, actor=customer)
    typed = {"idem_key": secrets.token_urlsafe(18), "choice": f"a{addresses[0].id}" if addresses else
             (f"s{stores[0][0].id}" if stores else ""), **(typed or {})}
    return render(request, "membership/shop_exchange.html", {
        "tab": "me", "item": item, "addresses": addresses, "stores": stores, "member": member, "typed": typed,
        "flash": error, "flash_kind": "error",
        "summary": points.summary(session, merchant_id=merchant.id, customer_id=customer.customer_id or 0)
        if member else None,
    }, status_code=status)


@router.get("/shop/{m}/member/mall/{item_id}")
def shop_member_exchange(item_id: ObjId, request: Request, merchant: ShopMerchant, session: DbSession,
                         customer: ShopPageCustomer) -> Response:
    return _exchange_page(request, session, merchant, customer, item_id)


@router.post("/shop/{m}/member/mall/{item_id}")
def shop_member_exchange_place(item_id: ObjId, request: Request, merchant: ShopMerchant, session: DbSession,
                               customer: ShopPageCustomer, form: ShopForm) -> Response:
    """Exchange points (plus any cash part) for the item through the normal checkout."""
    item = points_mall.get_item(session, item_id, merchant_id=merchant.id, active_only=True)
    typed = {"choice": form_str(form, "choice", max_length=30), "idem_key": form_str(form, "idem_key", max_length=64)}
    choice = typed["choice"]
    if choice[:1] == "a" and choice[1:].isdigit():
        fulfilment: Any = DeliveryFulfilment(type="delivery", address_id=int(choice[1:]))
    elif choice[:1] == "s" and choice[1:].isdigit():
        fulfilment = PickupFulfilment(type="pickup", store_id=int(choice[1:]))
    else:
        return _exchange_page(request, session, merchant, customer, item_id, typed=typed, status=422,
                              error=_("Choose a delivery address or a store."))
    body = CheckoutRequest(items=[{"sku_id": item.sku_id, "quantity": 1}], fulfilment=fulfilment,  # type: ignore[list-item]
                           points_mall_item_id=item.id)
    key = typed["idem_key"] if 8 <= len(typed["idem_key"]) <= 64 else None
    try:
        order = orders.place_order_once(session, actor=customer, request=body, key=key)
    except AppError as exc:
        if exc.status_code >= 500 or exc.status_code in (401, 403):
            raise
        typed["idem_key"] = ""
        message = _("Not enough points.") if exc.code == "insufficient_points" else exc.translated()
        return _exchange_page(request, session, merchant, customer, item_id, typed=typed, error=message,
                              status=exc.status_code if exc.status_code != 404 else 422)
    if order.status != "pending_payment":
        return RedirectResponse(f"/shop/{merchant.slug}/orders/{order.id}?paid=1", status_code=303)
    return RedirectResponse(orders.sandbox_pay_url(session, order.id, actor=customer, slug=merchant.slug),
                            status_code=303)


@router.post("/shop/{m}/member/plans/{plan_id}/buy")
def shop_member_buy_plan(plan_id: ObjId, request: Request, merchant: ShopMerchant, session: DbSession,
                         customer: ShopPageCustomer, form: ShopForm) -> Response:
    try:
        _purchase, order = tiers.buy_plan(session, actor=customer, plan_id=plan_id)
    except AppError as exc:
        if exc.status_code not in (404, 409):
            raise
        return _shop_centre(request, session, merchant, customer, flash=exc.translated(), flash_kind="error",
                            status=exc.status_code)
    return RedirectResponse(orders.sandbox_pay_url(session, order.id, actor=customer, slug=merchant.slug),
                            status_code=303)


@router.get("/shop/{m}/member/card.png")
def shop_member_card(request: Request, merchant: ShopMerchant, session: DbSession,
                     customer: ShopPageCustomer) -> Response:
    member = members.require_own_member(session, actor=customer)
    return Response(members.card_qr_png(member), media_type="image/png", headers={"Cache-Control": "private"})
