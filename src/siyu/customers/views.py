"""Console pages (/console/customers…) and H5 shop pages (/shop/{m}/login, /me, /logout)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from siyu.config import get_settings
from siyu.core.auth import Principal, new_token
from siyu.core.errors import AppError, NotFound, PermissionDenied, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, PostedForm, form_str
from siyu.customers import service, signin
from siyu.customers.deps import (
    OptionalShopCustomer,
    ShopForm,
    ShopPageCustomer,
    check_shop_csrf,
    cookie_name,
    visitor_id_of,
)
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant

router = APIRouter(include_in_schema=False)

CustomerId = Annotated[int, Path(gt=0, le=2**53)]

FLASH = {
    "saved": "Saved.",
    "tagged": "Tags added.",
    "untagged": "Tag removed.",
    "merged": "Customers merged.",
    "bulk": "Tagged {n} customers.",
    "group": "Tag group created.",
    "tag": "Tag created.",
}


FLASH_ERROR = {"bulk": "Choose customers and a tag, then try again."}


def _flash(request: Request) -> str | None:
    key = request.query_params.get("ok", "")
    if key not in FLASH:
        return None
    n = request.query_params.get("n", "")
    return _(FLASH[key], n=n if n.isdigit() else "0")


def _flash_error(request: Request) -> str | None:
    key = request.query_params.get("err", "")
    return _(FLASH_ERROR[key]) if key in FLASH_ERROR else None


def _int(raw: str, *, low: int, high: int) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(raw)
    return int(raw)


# ---------------------------------------------------------------- console: list


LIST_PARAMS = ("q", "tag", "owner", "store", "idle_days", "min_spent", "min_orders")


def _parse_filters(params: Any) -> tuple[service.CustomerFilter, dict[str, str], dict[str, str]]:
    """Filter bar values (as typed) → a CustomerFilter; bad values are reported and ignored."""
    raw = {k: str(params.get(k, ""))[:100].strip() for k in LIST_PARAMS}
    f = service.CustomerFilter(q=raw["q"])
    errors: dict[str, str] = {}
    ids = {"tag": "tag_id", "owner": "owner_id", "store": "store_id"}
    for key, attr in ids.items():
        try:
            setattr(f, attr, _int(raw[key], low=1, high=2**53))
        except ValueError:
            errors[key] = _("Not valid.")
    try:
        f.last_purchase_before_days = _int(raw["idle_days"], low=1, high=36500)
    except ValueError:
        errors["idle_days"] = _("Enter a number of days from 1 to 36500.")
    try:
        f.min_orders = _int(raw["min_orders"], low=0, high=2**31 - 1)
    except ValueError:
        errors["min_orders"] = _("Enter a whole number.")
    if raw["min_spent"]:
        try:
            cents = yuan_to_cents(raw["min_spent"])
            if not 0 <= cents <= 2**53:
                raise ValueError
            f.min_spent_cents = cents
        except ValueError:
            errors["min_spent"] = _("Enter an amount like 199 or 199.50.")
    return f, raw, errors


@router.get("/console/customers")
def customer_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _parse_filters(request.query_params)
    cursor = request.query_params.get("cursor") or None
    try:
        page = service.list_customers(session, actor=principal, filters=filters, cursor=cursor)
    except AppError:
        page = service.list_customers(session, actor=principal, filters=filters)
        errors["cursor"] = _("The page link is not valid; showing the first page.")
    unmask = service.may_see_phone(principal)
    rows = service.summaries(session, page.items, actor=principal, unmask=unmask)
    if unmask:
        service.audit_phone_view(session, actor=principal, customers=page.items)
    kept = {k: v for k, v in raw.items() if v and k not in errors}
    error = " ".join(errors.values()) or _flash_error(request)
    return render(request, "customers/list.html", {
        "active_menu": "customers", "rows": rows, "raw": raw, "errors": errors,
        "flash": error or _flash(request), "flash_kind": "error" if error else "ok",
        "filtered": bool(kept), "next_url": ("/console/customers?" + urlencode({**kept, "cursor": page.next_cursor}))
        if page.next_cursor else None,
        "first_url": "/console/customers?" + urlencode(kept) if cursor else None,
        "back_query": urlencode({**kept, **({"cursor": cursor} if cursor else {})}),
        "export_url": "/api/v1/admin/customers/export.csv?" + urlencode(filters.as_dict()),
        "can_export": principal.can("customers.export"), "tag_groups": service.list_tag_groups(session, actor=principal),
        **service.staff_choices(session, actor=principal),
    })


@router.post("/console/customers/bulk-tag")
def customer_bulk_tag(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    back = form_str(form, "back", max_length=1000)
    ids = [int(v) for v in form.getlist("customer_ids") if isinstance(v, str) and v.isdigit() and len(v) < 17][:1000]
    tag = form_str(form, "tag_id")
    if not ids or not tag.isdigit() or len(tag) > 16:
        query = back + ("&" if back else "") + "err=bulk"
        return RedirectResponse("/console/customers?" + query, status_code=303)
    result = service.bulk_tag(session, customer_ids=ids, tag_ids=[int(tag)], actor=principal)
    query = back + ("&" if back else "") + urlencode({"ok": "bulk", "n": result["customers"]})
    return RedirectResponse("/console/customers?" + query, status_code=303)


# ---------------------------------------------------------------- console: tags


def _tags_page(request: Request, session: DbSession, principal: Principal, **extra: Any) -> Response:
    status = 422 if extra.get("errors") else 200
    return render(request, "customers/tags.html", {
        "active_menu": "customers", "groups": service.list_tag_groups(session, actor=principal),
        "can_manage": principal.can("customers.tags_manage"), "flash": _flash(request), "errors": {},
        "typed": {}, **extra,
    }, status_code=status)


@router.get("/console/customers/tags")
def tags_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _tags_page(request, session, principal)


@router.post("/console/customers/tag-groups")
def tag_group_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    name = form_str(form, "name", max_length=200)
    try:
        service.create_tag_group(session, actor=principal, name=name)
    except ValidationFailed as exc:
        return _tags_page(request, session, principal, errors={"group_" + k: v for k, v in exc.details["fields"].items()},
                          typed={"group_name": name})
    return RedirectResponse("/console/customers/tags?ok=group", status_code=303)


@router.post("/console/customers/tags")
def tag_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    name = form_str(form, "name", max_length=200)
    group = form_str(form, "group_id")
    try:
        service.create_tag(session, actor=principal, group_id=int(group) if group.isdigit() and len(group) < 17 else 0,
                           name=name)
    except ValidationFailed as exc:
        return _tags_page(request, session, principal, errors={"tag_" + k: v for k, v in exc.details["fields"].items()},
                          typed={"tag_name": name, "tag_group_id": group})
    return RedirectResponse("/console/customers/tags?ok=tag", status_code=303)


# ---------------------------------------------------------------- console: detail


def _detail_page(request: Request, session: DbSession, principal: Principal, customer_id: int, *,
                 unmask: bool = False, errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                 status: int = 200) -> Response:
    customer = service.get_customer(session, customer_id, actor=principal)
    data = service.detail(session, customer, actor=principal, unmask=unmask)
    profile = {k: ("" if v is None else str(v)) for k, v in data["profile"].items()}
    if not unmask:
        profile.pop("phone")
    have = {t["id"] for t in data["tags"]}
    return render(request, "customers/detail.html", {
        "active_menu": "customers", "c": data, "customer": customer, "form": {**profile, **(typed or {})},
        "errors": errors or {}, "phone_shown": unmask, "can_view_phone": service.may_see_phone(principal),
        "can_merge": principal.can("customers.merge"), "flash": _flash(request),
        "tag_groups": [(g, [t for t in tags if t.id not in have]) for g, tags in service.list_tag_groups(session, actor=principal)],
    }, status_code=status)


@router.get("/console/customers/{customer_id}")
def customer_detail(customer_id: CustomerId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _detail_page(request, session, principal, customer_id)


@router.post("/console/customers/{customer_id}")
def customer_edit(customer_id: CustomerId, request: Request, session: DbSession, principal: ConsoleStaff,
                  form: ConsoleForm) -> Response:
    fields = ("nickname", "name", "gender", "birthday", "region", "notes", "avatar_url")
    typed = {k: form_str(form, k, max_length=3000) for k in fields}
    changes: dict[str, Any] = dict(typed)
    if service.may_see_phone(principal) and "phone" in form:
        typed["phone"] = changes["phone"] = form_str(form, "phone", max_length=100)
    try:
        service.update_profile(session, customer_id, actor=principal, **changes)
    except ValidationFailed as exc:
        return _detail_page(request, session, principal, customer_id, errors=exc.details["fields"], typed=typed,
                            unmask="phone" in typed, status=422)
    except AppError as exc:
        if exc.code not in ("phone_taken", "customer_merged"):
            raise
        return _detail_page(request, session, principal, customer_id, typed=typed, unmask="phone" in typed, status=409,
                            errors=exc.details.get("fields") or {"nickname": exc.translated()})
    return RedirectResponse(f"/console/customers/{customer_id}?ok=saved", status_code=303)


@router.post("/console/customers/{customer_id}/show-phone")
def customer_show_phone(customer_id: CustomerId, request: Request, session: DbSession, principal: ConsoleStaff,
                        form: ConsoleForm) -> Response:
    if not service.may_see_phone(principal):
        raise PermissionDenied()
    customer = service.get_customer(session, customer_id, actor=principal)
    service.audit_phone_view(session, actor=principal, customers=[customer])
    return _detail_page(request, session, principal, customer_id, unmask=True)


@router.post("/console/customers/{customer_id}/tags")
def customer_tag(customer_id: CustomerId, request: Request, session: DbSession, principal: ConsoleStaff,
                 form: ConsoleForm) -> Response:
    tag = form_str(form, "tag_id")
    if not tag.isdigit() or len(tag) > 16:
        return _detail_page(request, session, principal, customer_id, errors={"tag_id": _("Choose a tag.")}, status=422)
    service.add_tags(session, customer_id, tag_ids=[int(tag)], actor=principal)
    return RedirectResponse(f"/console/customers/{customer_id}?ok=tagged#tags", status_code=303)


@router.post("/console/customers/{customer_id}/tags/{tag_id}/remove")
def customer_untag(customer_id: CustomerId, tag_id: CustomerId, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    service.remove_tag(session, customer_id, tag_id=tag_id, actor=principal)
    return RedirectResponse(f"/console/customers/{customer_id}?ok=untagged#tags", status_code=303)


@router.post("/console/customers/{customer_id}/merge")
def customer_merge(customer_id: CustomerId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    source = form_str(form, "source_id")
    error = None
    if not source.isdigit() or len(source) > 16:
        error = _("Enter the id of the customer to merge into this one.")
    else:
        try:
            service.merge_customers(session, source_id=int(source), target_id=customer_id, actor=principal)
        except NotFound:
            error = _("No such customer.")
        except AppError as exc:
            if exc.status_code != 409:
                raise
            error = exc.translated()
    if error:
        return _detail_page(request, session, principal, customer_id, errors={"source_id": error},
                            typed={"source_id": source}, status=422)
    return RedirectResponse(f"/console/customers/{customer_id}?ok=merged", status_code=303)


# ---------------------------------------------------------------- H5 shop


def _safe_shop_next(slug: str, target: str) -> str:
    home = f"/shop/{slug}/"
    if target.startswith(f"/shop/{slug}/") and "//" not in target and "\\" not in target:
        return target[:500]
    return home


@router.get("/shop/{m}/login")
def shop_login_page(request: Request, merchant: ShopMerchant, customer: OptionalShopCustomer, next: str = "") -> Response:
    target = _safe_shop_next(merchant.slug, next[:500] or f"/shop/{merchant.slug}/me")
    if customer is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "customers/shop_login.html", {"tab": "me", "next": target, "dev_login": get_settings().dev_login,
                                                         "typed": {}, "errors": {}})


@router.post("/shop/{m}/login")
def shop_login(request: Request, merchant: ShopMerchant, session: DbSession, form: PostedForm) -> Response:
    if not get_settings().dev_login:
        raise NotFound("Demo login is disabled.", code="dev_login_disabled")
    nickname = form_str(form, "nickname", max_length=200)
    openid = form_str(form, "openid", max_length=500)
    target = _safe_shop_next(merchant.slug, form_str(form, "next", max_length=500))
    errors = {}
    if not nickname:
        errors["nickname"] = _("Enter a nickname.")
    elif len(nickname) > 64:
        errors["nickname"] = _("At most {n} characters.", n=64)
    if len(openid) > 128:
        errors["openid"] = _("At most {n} characters.", n=128)
    if errors:
        return render(request, "customers/shop_login.html", {
            "tab": "me", "next": target, "dev_login": True, "typed": {"nickname": nickname, "openid": openid},
            "errors": errors}, status_code=422)
    _customer, raw = signin.dev_login(session, merchant_id=merchant.id, openid=openid or "h5-" + new_token()[:20],
                                       nickname=nickname, visitor_id=visitor_id_of(request))
    response = RedirectResponse(target, status_code=303)
    settings = get_settings()
    response.set_cookie(cookie_name(merchant.slug), raw, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=settings.token_days * 86400)
    return response


def _me_page(request: Request, session: DbSession, customer: Principal, *, typed: dict[str, str] | None = None,
             errors: dict[str, str] | None = None, flash: str | None = None) -> Response:
    row = service.own_customer(session, actor=customer)
    form = {k: "" if getattr(row, k) is None else str(getattr(row, k))
            for k in ("nickname", "name", "gender", "birthday", "region")}
    return render(request, "customers/shop_me.html", {
        "tab": "me", "me": row, "form": {**form, **(typed or {})}, "errors": errors or {}, "flash": flash,
        "flash_kind": "error" if errors else "ok",
    }, status_code=422 if errors else 200)


@router.get("/shop/{m}/me")
def shop_me(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    flash = _("Saved.") if request.query_params.get("ok") == "saved" else None
    return _me_page(request, session, customer, flash=flash)


@router.post("/shop/{m}/me")
def shop_me_save(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                 form: ShopForm) -> Response:
    typed = {k: form_str(form, k, max_length=500) for k in ("nickname", "name", "gender", "birthday", "region")}
    try:
        service.update_own_profile(session, actor=customer, **typed)
    except ValidationFailed as exc:
        return _me_page(request, session, customer, typed=typed, errors=exc.details["fields"],
                        flash=_("Some fields are not valid."))
    return RedirectResponse(f"/shop/{merchant.slug}/me?ok=saved", status_code=303)


@router.post("/shop/{m}/logout")
def shop_logout(request: Request, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer,
                form: PostedForm) -> Response:
    if customer is not None:
        check_shop_csrf(request, form)
        signin.revoke_customer_token(session, request.cookies.get(cookie_name(merchant.slug), ""))
    response = RedirectResponse(f"/shop/{merchant.slug}/", status_code=303)
    response.delete_cookie(cookie_name(merchant.slug))
    return response
