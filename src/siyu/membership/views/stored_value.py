"""membership: stored value (储值) console and H5 pages.

Console: /console/membership/stored-value (recharge plans: create, edit, disable; recent
recharges), /console/membership/stored-value/customers/{id} (a customer's balance and ledger,
adjustments, recharge refunds). H5: /shop/{m}/me/balance (balance, history, recharge through the
normal pay page)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.membership.service import stored_value as service
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.orders import service as orders

router = APIRouter(include_in_schema=False)

CONSOLE = "/console/membership/stored-value"
RECHARGE_STATUS = {"pending": "Waiting for payment", "credited": "Credited", "cancelled": "Cancelled",
                   "refunded": "Refunded"}
REASONS = {"recharge": "Recharge", "recharge_bonus": "Recharge bonus", "spend": "Paid an order",
           "refund": "Refund", "order_cancelled": "Order cancelled", "adjustment": "Adjustment",
           "recharge_refund": "Recharge refunded", "bonus_forfeit": "Bonus forfeited",
           "merge_out": "Moved to a merged customer", "merge_in": "From a merged customer"}
ACCOUNT_LABELS = {"principal": "Principal", "bonus": "Bonus"}
LABELS = {"recharge_status": RECHARGE_STATUS, "reasons": REASONS, "accounts": ACCOUNT_LABELS}


def _cents_field(form: Any, name: str, errors: dict[str, str], *, allow_zero: bool = False,
                 signed: bool = False) -> int | None:
    text = form_str(form, name, max_length=30).strip()
    try:
        cents = yuan_to_cents(text)
    except (ValueError, ArithmeticError):
        cents = None
    if cents is None or (not signed and cents < 0) or (cents == 0 and not allow_zero) or abs(cents) > 2**31 - 1:
        errors[name] = _("Enter an amount in yuan, e.g. 500 or 12.50.")
        return None
    return cents


# ==================================================================== console: plans


def _plans_page(request: Request, session: Any, staff: Any, *, typed: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, flash: str | None = None, status: int = 200) -> Response:
    plans = service.list_plans(session, merchant_id=staff.merchant_id)
    recharges = service.list_recharges(session, merchant_id=staff.merchant_id, limit=20) \
        if staff.can(service.PERMISSION) else []
    return render(request, "membership/stored_value_plans.html", {
        "active_menu": "membership", "plans": plans, "recharges": recharges, "typed": typed or {},
        "errors": errors or {}, "flash": flash, "flash_kind": "error" if errors else None, "labels": LABELS,
        "can_manage": staff.can(service.PERMISSION),
    }, status_code=status)


@router.get(CONSOLE)
def console_plans(request: Request, session: DbSession, staff: ConsoleStaff) -> Response:
    flash = _("Saved.") if request.query_params.get("ok") else None
    return _plans_page(request, session, staff, flash=flash)


def _plan_fields(form: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    typed = {k: form_str(form, k, max_length=100) for k in ("name", "price", "bonus", "sort")}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": typed["name"].strip()}
    if not 1 <= len(values["name"]) <= 60:
        errors["name"] = _("Give the plan a name of 1–60 characters.")
    values["price_cents"] = _cents_field(form, "price", errors)
    values["bonus_cents"] = _cents_field(form, "bonus", errors, allow_zero=True) if typed["bonus"].strip() else 0
    try:
        values["sort"] = int(typed["sort"] or 0)
    except ValueError:
        errors["sort"] = _("Enter a whole number.")
    return values, typed, errors


@router.post(f"{CONSOLE}/plans")
def console_plan_create(request: Request, session: DbSession, staff: ConsoleStaff, form: ConsoleForm) -> Response:
    values, typed, errors = _plan_fields(form)
    if errors:
        return _plans_page(request, session, staff, typed=typed, errors=errors,
                           flash=_("Some fields are not valid."), status=422)
    try:
        service.create_plan(session, actor=staff, **values)
    except ValidationFailed as exc:
        return _plans_page(request, session, staff, typed=typed, errors=exc.details.get("fields", {}),
                           flash=exc.translated(), status=422)
    return RedirectResponse(f"{CONSOLE}?ok=1", status_code=303)


def _plan_edit_page(request: Request, session: Any, staff: Any, plan: Any, *, typed: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, status: int = 200) -> Response:
    typed = typed or {"name": plan.name, "price": cents_to_yuan_str(plan.price_cents),
                      "bonus": cents_to_yuan_str(plan.bonus_cents), "sort": str(plan.sort)}
    return render(request, "membership/stored_value_plan_edit.html", {
        "active_menu": "membership", "plan": plan, "typed": typed, "errors": errors or {},
        "flash": _("Some fields are not valid.") if errors else None, "flash_kind": "error"}, status_code=status)


@router.get(f"{CONSOLE}/plans/{{plan_id}}")
def console_plan_edit(plan_id: int, request: Request, session: DbSession, staff: ConsoleStaff) -> Response:
    return _plan_edit_page(request, session, staff, service.get_plan(session, plan_id, merchant_id=staff.merchant_id))


@router.post(f"{CONSOLE}/plans/{{plan_id}}")
def console_plan_save(plan_id: int, request: Request, session: DbSession, staff: ConsoleStaff,
                      form: ConsoleForm) -> Response:
    plan = service.get_plan(session, plan_id, merchant_id=staff.merchant_id)
    values, typed, errors = _plan_fields(form)
    if errors:
        return _plan_edit_page(request, session, staff, plan, typed=typed, errors=errors, status=422)
    service.update_plan(session, plan.id, actor=staff, **values)
    return RedirectResponse(f"{CONSOLE}?ok=1", status_code=303)


@router.post(f"{CONSOLE}/plans/{{plan_id}}/active")
def console_plan_toggle(plan_id: int, session: DbSession, staff: ConsoleStaff, form: ConsoleForm) -> Response:
    service.update_plan(session, plan_id, actor=staff, active=form_str(form, "active") == "1")
    return RedirectResponse(f"{CONSOLE}?ok=1", status_code=303)


# ==================================================================== console: a customer's stored value


def _customer_page(request: Request, session: Any, staff: Any, customer_id: int, *,
                   typed: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                   flash: str | None = None, flash_kind: str | None = None, status: int = 200) -> Response:
    customer = customers.get_customer(session, customer_id, actor=staff)
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    try:
        page = service.entries_of(session, merchant_id=staff.merchant_id, customer_id=customer.id, cursor=cursor)
    except AppError:
        page = service.entries_of(session, merchant_id=staff.merchant_id, customer_id=customer.id)
    next_url = f"{CONSOLE}/customers/{customer.id}?" + urlencode({"cursor": page.next_cursor}) \
        if page.next_cursor else None
    return render(request, "membership/stored_value_customer.html", {
        "active_menu": "membership", "customer": customer,
        "stored_value": service.summary(session, merchant_id=staff.merchant_id, customer_id=customer.id),
        "entries": page.items, "next_url": next_url,
        "recharges": service.list_recharges(session, merchant_id=staff.merchant_id, customer_id=customer.id),
        "typed": typed or {"account": "principal"}, "errors": errors or {}, "flash": flash,
        "flash_kind": flash_kind, "labels": LABELS, "can_manage": staff.can(service.PERMISSION),
    }, status_code=status)


@router.get(f"{CONSOLE}/customers/{{customer_id}}")
def console_customer(customer_id: int, request: Request, session: DbSession, staff: ConsoleStaff) -> Response:
    ok = request.query_params.get("ok")
    flash = {"adjusted": _("The balance was adjusted."), "refunded": _("The recharge was refunded.")}.get(ok or "")
    return _customer_page(request, session, staff, customer_id, flash=flash)


@router.post(f"{CONSOLE}/customers/{{customer_id}}/adjust")
def console_adjust(customer_id: int, request: Request, session: DbSession, staff: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    typed = {k: form_str(form, k, max_length=200) for k in ("account", "amount", "reason", "key")}
    errors: dict[str, str] = {}
    delta = _cents_field(form, "amount", errors, signed=True)
    if delta == 0:
        errors["amount"] = _("Enter a non-zero amount.")
    if typed["account"] not in service.ACCOUNTS:
        errors["account"] = _("Choose the principal or the bonus account.")
    if not typed["reason"].strip():
        errors["reason"] = _("Say why the balance is adjusted (1–200 characters).")
    if not errors:
        try:
            service.adjust(session, actor=staff, customer_id=customer_id, account=typed["account"],
                           delta_cents=delta or 0, reason=typed["reason"],
                           idempotency_key=f"console:{staff.subject_id}:{typed['key']}" if typed["key"] else None)
        except AppError as exc:
            if exc.status_code in (401, 403, 404) or exc.status_code >= 500:
                raise
            fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
            return _customer_page(request, session, staff, customer_id, typed=typed, errors=fields or {},
                                  flash=exc.translated(), flash_kind="error", status=exc.status_code)
        return RedirectResponse(f"{CONSOLE}/customers/{customer_id}?ok=adjusted", status_code=303)
    return _customer_page(request, session, staff, customer_id, typed=typed, errors=errors,
                          flash=_("Some fields are not valid."), flash_kind="error", status=422)


@router.post(f"{CONSOLE}/recharges/{{recharge_id}}/refund")
def console_recharge_refund(recharge_id: int, request: Request, session: DbSession, staff: ConsoleStaff,
                            form: ConsoleForm) -> Response:
    row = service.get_recharge(session, recharge_id, actor=staff)
    reason = form_str(form, "reason", max_length=200).strip() or _("Refunded at the customer's request.")
    try:
        service.refund_recharge(session, row.id, actor=staff, reason=reason)
    except AppError as exc:
        if exc.status_code in (401, 403, 404) or exc.status_code >= 500:
            raise
        return _customer_page(request, session, staff, row.customer_id, flash=exc.translated(), flash_kind="error",
                              status=exc.status_code)
    return RedirectResponse(f"{CONSOLE}/customers/{row.customer_id}?ok=refunded", status_code=303)


# ==================================================================== H5: my balance


def _balance_page(request: Request, session: Any, merchant: Any, customer: Any, *, flash: str | None = None,
                  flash_kind: str | None = None, status: int = 200) -> Response:
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    try:
        page = service.entries_of(session, merchant_id=merchant.id, customer_id=customer.customer_id, cursor=cursor,
                                  limit=30)
    except AppError:
        page = service.entries_of(session, merchant_id=merchant.id, customer_id=customer.customer_id, limit=30)
    next_url = f"/shop/{merchant.slug}/me/balance?" + urlencode({"cursor": page.next_cursor}) \
        if page.next_cursor else None
    return render(request, "membership/stored_value_shop.html", {
        "tab": "me", "stored_value": service.summary(session, merchant_id=merchant.id,
                                                     customer_id=customer.customer_id),
        "plans": service.list_plans(session, merchant_id=merchant.id, active_only=True), "entries": page.items,
        "next_url": next_url, "labels": LABELS, "flash": flash, "flash_kind": flash_kind,
    }, status_code=status)


@router.get("/shop/{m}/me/balance")
def shop_balance(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    return _balance_page(request, session, merchant, customer)


@router.post("/shop/{m}/me/balance/recharge")
def shop_recharge(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                  form: ShopForm) -> Response:
    """Buy a plan, then pay its order on the normal pay page (sandbox here; WeChat Pay in the app)."""
    try:
        plan_id = int(form_str(form, "plan_id", max_length=20) or 0)
        row = service.start_recharge(session, actor=customer, plan_id=plan_id)
    except (ValueError, NotFound, ValidationFailed):
        return _balance_page(request, session, merchant, customer, flash=_("Choose one of the recharge plans."),
                             flash_kind="error", status=422)
    except AppError as exc:
        if exc.status_code in (401, 403) or exc.status_code >= 500:
            raise
        return _balance_page(request, session, merchant, customer, flash=exc.translated(), flash_kind="error",
                             status=exc.status_code)
    assert row.order_id is not None
    url = orders.sandbox_pay_url(session, row.order_id, actor=customer, slug=merchant.slug)
    return RedirectResponse(url, status_code=303)
