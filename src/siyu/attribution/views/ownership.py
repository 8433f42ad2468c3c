"""attribution: ownership console pages: the binding history, a customer's and an order's source, the
transfer tool (客户继承) and the protection periods (客户关系保护期)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from siyu.attribution.service import ownership, shares, source, transfer
from siyu.core.auth import Principal, Role
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff

router = APIRouter(include_in_schema=False)

PathId = Annotated[int, Path(gt=0, le=2**53)]
QText = Annotated[str, Query(max_length=100)]
Cursor = Annotated[str | None, Query(max_length=200)]

ACTION_LABELS = {"bind": "Bound", "rebind": "Rebound", "transfer": "Transferred", "departure": "Departure transfer",
                 "adopt": "Adopted owner", "owner_sync": "Owner changed"}
KIND_LABELS = {"guide": "Guide", "referrer": "Referrer"}
FLASHES = {"saved": "Protection periods saved.", "transferred": "{n} customers transferred."}


def _page(request: Request, session: Any, principal: Principal, template: str, **context: Any) -> Response:
    context.setdefault("merchant_name", merchants.get_merchant(session, principal.merchant_id).name)
    ok, n = request.query_params.get("ok", ""), request.query_params.get("n", "0")
    if "flash" not in context and ok in FLASHES:
        context["flash"] = _(FLASHES[ok], n=n if n.isdigit() else "0")
    status = context.pop("status_code", 200)
    return render(request, template, {"active_menu": "attribution", "channel_labels": shares.CHANNEL_LABELS,
                                      "target_labels": shares.TARGET_LABELS, "action_labels": ACTION_LABELS,
                                      "kind_labels": KIND_LABELS, **context}, status_code=status)


def _int(raw: str) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 2**53 else None


# ---------------------------------------------------------------- history and sources


@router.get("/console/attribution/ownership")
def history_list(request: Request, session: DbSession, principal: ConsoleStaff, kind: QText = "", action: QText = "",
                 guide: QText = "", cursor: Cursor = None) -> Response:
    raw = {"kind": kind if kind in KIND_LABELS else "", "action": action if action in ACTION_LABELS else "",
           "guide": str(_int(guide) or "")}
    data = source.history_page(session, actor=principal, kind=raw["kind"] or None, action=raw["action"] or None,
                               staff_id=_int(guide), cursor=cursor, limit=50)
    shown = {k: v for k, v in raw.items() if v}
    more_url = f"/console/attribution/ownership?{urlencode({**shown, 'cursor': data['next_cursor']})}" \
        if data["next_cursor"] else None
    guides = merchants.list_staff(session, actor=principal, role=Role.GUIDE.value)
    return _page(request, session, principal, "attribution/ownership_history.html", tab="ownership",
                 lines=data["items"], raw=raw, guides=guides, more_url=more_url, filtered=bool(shown))


@router.get("/console/attribution/source/customers/{customer_id}")
def customer_source(customer_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    data = source.customer_source(session, actor=principal, customer_id=customer_id)
    return _page(request, session, principal, "attribution/source_customer.html", tab="ownership", d=data)


@router.get("/console/attribution/source/orders/{order_id}")
def order_source(order_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    try:
        data = source.order_source(session, actor=principal, order_id=order_id)
    except NotFound:
        # Orders written before attribution kept its copy (imports, the demo's history) have no recorded source.
        return _page(request, session, principal, "attribution/source_order_missing.html", tab="ownership",
                     order_id=order_id, status_code=404)
    return _page(request, session, principal, "attribution/source_order.html", tab="ownership", d=data,
                 keys=ownership.SNAPSHOT_KEYS)


# ---------------------------------------------------------------- transfer tool


def _transfer_page(request: Request, session: Any, principal: Principal, *, params: Any,
                   errors: dict[str, str] | None = None, typed: dict[str, Any] | None = None,
                   status_code: int = 200) -> Response:
    principal.require("customers.transfer")
    raw = {k: str(params.get(k, ""))[:100].strip() for k in ("q", "owner", "store", "cursor")}
    f = customers.CustomerFilter(q=raw["q"], owner_id=_int(raw["owner"]), store_id=_int(raw["store"]))
    page = customers.list_customers(session, actor=principal, filters=f, cursor=raw["cursor"] or None, limit=50)
    rows = customers.summaries(session, page.items, actor=principal, unmask=False)
    shown = {k: v for k, v in raw.items() if v and k != "cursor"}
    choices = customers.staff_choices(session, actor=principal)
    targets = [s for s in merchants.list_staff(session, actor=principal, active=True)
               if s.role in (Role.GUIDE.value, Role.STORE_MANAGER.value)]
    return _page(request, session, principal, "attribution/transfer.html", tab="transfer", rows=rows, raw=raw,
                 guides=choices["guides"], stores=choices["stores"], targets=targets, errors=errors or {},
                 typed=typed or {"customer_ids": [], "to_guide_id": "", "reason": ""},
                 back_query=urlencode(shown), filtered=bool(shown),
                 next_url=f"/console/attribution/transfer?{urlencode({**shown, 'cursor': page.next_cursor})}"
                 if page.next_cursor else None, status_code=status_code)


@router.get("/console/attribution/transfer")
def transfer_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _transfer_page(request, session, principal, params=request.query_params)


@router.post("/console/attribution/transfer")
def transfer_submit(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    ids = [int(v) for v in form.getlist("customer_ids") if isinstance(v, str) and v.isdigit() and len(v) < 17]
    to_raw = form_str(form, "to_guide_id", max_length=20)
    reason = form_str(form, "reason", max_length=200)
    back = form_str(form, "back", max_length=500)
    params = dict(parse_qsl(back))
    typed = {"customer_ids": ids, "to_guide_id": to_raw, "reason": reason}
    errors: dict[str, str] = {}
    if not ids:
        errors["customer_ids"] = _("Choose at least one customer.")
    if _int(to_raw) is None:
        errors["to_guide_id"] = _("Choose an active colleague.")
    if not errors:
        try:
            result = transfer.transfer_customers(session, actor=principal, customer_ids=ids,
                                                 to_guide_id=_int(to_raw) or 0, reason=reason)
        except ValidationFailed as exc:
            session.rollback()
            errors = dict((exc.details or {}).get("fields") or {"form": exc.translated()})
        except AppError as exc:
            session.rollback()
            return render(request, "error.html", {"status": exc.status_code, "error": exc.to_dict()["error"]},
                          status_code=exc.status_code)
        else:
            query = urlencode({**{k: v for k, v in params.items() if k in ("q", "owner", "store")},
                               "ok": "transferred", "n": result.moved})
            return RedirectResponse(f"/console/attribution/transfer?{query}", status_code=303)
    return _transfer_page(request, session, principal, params=params, errors=errors, typed=typed, status_code=422)


# ---------------------------------------------------------------- protection periods


def _settings_values(session: Any, principal: Principal) -> dict[str, str]:
    current = ownership.protection_settings(session, merchant_id=principal.merchant_id)
    values: dict[str, str] = {}
    for key, days in current.items():
        values[key] = "" if days is None else str(days)
        values[key + "_permanent"] = "1" if days is None else ""
    return values


@router.get("/console/attribution/ownership/settings")
def settings_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    return _page(request, session, principal, "attribution/ownership_settings.html", tab="protection",
                 values=_settings_values(session, principal), errors={})


@router.post("/console/attribution/ownership/settings")
def settings_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("merchant.manage")
    values: dict[str, str] = {}
    changes: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for key in ownership.KIND_SETTINGS.values():
        typed = form_str(form, key, max_length=10)
        permanent = form_str(form, key + "_permanent") == "1"
        values[key], values[key + "_permanent"] = typed, "1" if permanent else ""
        if permanent:
            changes[key] = None
        elif typed.isdigit() and 1 <= int(typed) <= ownership.MAX_PROTECTION_DAYS:
            changes[key] = int(typed)
        else:
            errors[key] = _("Enter a whole number of days from 1 to {n}, or choose permanent.",
                            n=ownership.MAX_PROTECTION_DAYS)
    if errors:
        return _page(request, session, principal, "attribution/ownership_settings.html", tab="protection",
                     values=values, errors=errors, status_code=422)
    ownership.update_protection_settings(session, actor=principal, **changes)
    return RedirectResponse("/console/attribution/ownership/settings?ok=saved", status_code=303)
