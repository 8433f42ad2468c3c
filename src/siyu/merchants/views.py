"""Console pages of the merchants domain: sign in and out, and the settings area (merchant, stores,
agents, staff, API tokens, the role matrix). Every page calls merchants.service; the role rules live
there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core.auth import PERMISSIONS, ROLE_LABELS, Principal, Role, system_principal
from siyu.core.errors import AppError, Conflict, PermissionDenied, ValidationFailed
from siyu.core.errors import Unauthorized as UnauthorizedError
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, PostedForm, form_str
from siyu.merchants import service
from siyu.merchants.deps import SESSION_COOKIE, ConsoleForm, ConsoleStaff
from siyu.merchants.schemas import (
    AgentCreate,
    ApiTokenCreate,
    Id,
    MerchantUpdate,
    StaffCreate,
    StaffUpdate,
    StoreCreate,
    StoreUpdate,
)

router = APIRouter(include_in_schema=False)

# Flash messages by key: the redirect carries the key, never text, so nothing can be injected.
FLASHES = {
    "merchant_saved": "Merchant settings saved.",
    "store_created": "Store created.",
    "store_saved": "Store saved.",
    "store_activated": "Store activated.",
    "store_deactivated": "Store deactivated.",
    "agent_created": "Agent created.",
    "staff_created": "Staff member created.",
    "staff_saved": "Staff member saved.",
    "staff_disabled": "Staff member disabled: their sessions and tokens have ended.",
    "staff_enabled": "Staff member enabled.",
    "token_revoked": "API token revoked.",
}
ERROR_FLASHES = {
    "cannot_disable_self": "You cannot disable yourself.",
}

# (key, label, path, permission or None): the settings sub-navigation.
SETTINGS_NAV: list[tuple[str, str, str, str | None]] = [
    ("merchant", "Merchant", "/console/settings/merchant", "merchant.manage"),
    ("stores", "Stores", "/console/settings/stores", None),
    ("agents", "Agents", "/console/settings/agents", "stores.manage"),
    ("staff", "Staff", "/console/settings/staff", None),
    ("tokens", "API tokens", "/console/settings/tokens", None),
    ("roles", "Roles and permissions", "/console/settings/roles", None),
    ("wechat", "WeChat", "/console/channels/settings", "merchant.manage"),
]
SETTINGS_DESCRIPTIONS = {
    "merchant": "Brand name, WeChat mini-program and the customer protection period.",
    "stores": "Addresses, locations, opening hours; open or close a store.",
    "agents": "Agents between the brand and its stores.",
    "staff": "Brand and agent admins, store managers and guides; disable a leaver.",
    "tokens": "Bearer tokens for integrations with the REST API.",
    "roles": "What each role may do.",
    "wechat": "Official account and WeCom callbacks: AppID, tokens and EncodingAESKeys.",
}
PERMISSION_LABELS = {
    "catalog.manage": "Manage products, prices and stock",
    "customers.manage": "Manage customers in their scope",
    "customers.view_phone": "See customers' full phone numbers",
    "customers.export": "Export customers",
    "customers.export_phone": "Export customers with full phone numbers",
    "customers.merge": "Merge duplicate customers",
    "customers.transfer": "Transfer customers to another guide",
    "customers.tags_manage": "Manage customer tags",
    "staff.manage": "Manage staff below their own role",
    "stores.manage": "Create and edit stores",
    "merchant.manage": "Edit the merchant's settings and agents",
}
_RANK = {Role.BRAND_ADMIN: 4, Role.AGENT_ADMIN: 3, Role.STORE_MANAGER: 2, Role.GUIDE: 1}


# ---------------------------------------------------------------- helpers


def _safe_next(target: str) -> str:
    # Only our own console paths: never an open redirect.
    if target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


def console_page(request: Request, session: Session, principal: Principal, name: str, ctx: dict[str, Any] | None = None,
                 *, active_menu: str, status_code: int = 200) -> Response:
    """Render a console page with the merchant's name and the flash named in `?ok=` / `?err=`."""
    ctx = dict(ctx or {})
    ctx.setdefault("active_menu", active_menu)
    ctx.setdefault("merchant_name", service.get_merchant(session, principal.merchant_id).name)
    ok, err = request.query_params.get("ok"), request.query_params.get("err")
    if "flash" not in ctx:
        if ok in FLASHES:
            ctx["flash"] = _(FLASHES[ok])
        elif err in ERROR_FLASHES:
            ctx["flash"], ctx["flash_kind"] = _(ERROR_FLASHES[err]), "error"
    return render(request, name, ctx, status_code=status_code)


def _settings_page(request: Request, session: Session, principal: Principal, name: str, ctx: dict[str, Any],
                   *, tab: str, status_code: int = 200) -> Response:
    nav = [(key, label, path) for key, label, path, perm in SETTINGS_NAV if perm is None or principal.can(perm)]
    ctx = {"settings_nav": nav, "settings_tab": tab, **ctx}
    return console_page(request, session, principal, name, ctx, active_menu="settings", status_code=status_code)


def _redirect(path: str, ok: str | None = None, err: str | None = None) -> RedirectResponse:
    if ok:
        path += ("&" if "?" in path else "?") + f"ok={ok}"
    if err:
        path += ("&" if "?" in path else "?") + f"err={err}"
    return RedirectResponse(path, status_code=303)


def _error_page(request: Request, session: Session, exc: AppError) -> Response:
    """A refused form post (no permission, not found) as a page: nothing it changed is kept."""
    session.rollback()
    return render(request, "error.html", {"status": exc.status_code, "error": exc.to_dict()["error"]},
                  status_code=exc.status_code)


def _message_for(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and int(ctx.get("min_length", 1)) <= 1):
        return _("This field is required.")
    if kind == "string_too_short":
        return _("Use at least {n} characters.", n=ctx.get("min_length"))
    if kind == "string_too_long":
        return _("Use at most {n} characters.", n=ctx.get("max_length"))
    if kind == "string_pattern_mismatch":
        return _("This is not in the expected format.")
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type", "int_from_float", "finite_number"):
        return _("Enter a number.")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _("This number is out of range.")
    if kind == "enum":
        return _("Choose one of the options.")
    return _("This value is not valid.")


def validate_form(schema: type[BaseModel], data: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The form's values through the API's schema: (model, {}) or (None, {field: message})."""
    try:
        return schema.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc") or ("form",)
            errors.setdefault(str(loc[0]), _message_for(dict(err)))
        return None, errors


def _service_errors(exc: ValidationFailed) -> dict[str, str]:
    fields = (exc.details or {}).get("fields") or {}
    return dict(fields) if fields else {"form": exc.translated()}


def _submit(request: Request, session: Session, body: Any, errors: dict[str, str],
            action: Callable[[], Response]) -> tuple[Response | None, dict[str, str]]:
    """Run a valid form's service call. Returns its response (a redirect) on success, an error page when
    the service refuses outright, or no response and the field errors to show beside the fields (the
    failed call's writes rolled back)."""
    if body is None:
        return None, errors
    try:
        return action(), errors
    except ValidationFailed as exc:
        session.rollback()
        return None, _service_errors(exc)
    except AppError as exc:
        return _error_page(request, session, exc), errors


def _values(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: form_str(form, name) for name in names}


def _optional(values: dict[str, str], *names: str) -> dict[str, Any]:
    """Blank optional fields (numbers, choices) become None."""
    return {k: (None if k in names and v == "" else v) for k, v in values.items()}


def _password(form: Any, name: str = "password") -> str:
    value = form.get(name, "")
    return value[:500] if isinstance(value, str) else ""


def _manageable_roles(principal: Principal) -> list[Role]:
    if not principal.can("staff.manage"):
        return []
    if principal.role == Role.BRAND_ADMIN:
        return list(Role)
    return [r for r in Role if _RANK[r] < _RANK[Role(principal.role)]]


def _role_choices(roles: list[Role]) -> list[tuple[str, str]]:
    return [(r.value, _(ROLE_LABELS[r])) for r in roles]


# ---------------------------------------------------------------- sign in and out


@router.get("/console/login")
def login_page(request: Request, next: str = "/console/") -> Response:
    return render(request, "merchants/login.html", {"next": _safe_next(next[:500])})


@router.post("/console/login")
def login(request: Request, session: DbSession, form: PostedForm) -> Response:
    username = form_str(form, "username", max_length=60)
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    target = _safe_next(form_str(form, "next", "/console/", max_length=500))
    try:
        staff = service.authenticate(session, username=username, password=str(password)[:200])
    except UnauthorizedError:
        return render(request, "merchants/login.html",
                      {"next": target, "username": username, "error": _("Wrong username or password.")}, status_code=401)
    raw, _row = service.issue_token(session, staff, kind="session")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax", secure=get_settings().secure_cookies,
                        max_age=get_settings().session_days * 86400)
    return response


@router.post("/console/logout")
def logout(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.revoke_token(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# ---------------------------------------------------------------- settings index and roles


@router.get("/console/settings")
def settings_index(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _settings_page(request, session, principal, "merchants/settings_index.html",
                          {"descriptions": SETTINGS_DESCRIPTIONS}, tab="index")


@router.get("/console/settings/roles")
def roles_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    roles = [(r.value, _(ROLE_LABELS[r])) for r in Role]
    rows = [(key, _(PERMISSION_LABELS.get(key, key)), {r.value for r in allowed}) for key, allowed in sorted(PERMISSIONS.items())]
    return _settings_page(request, session, principal, "merchants/roles.html", {"roles": roles, "rows": rows}, tab="roles")


# ---------------------------------------------------------------- merchant


def _merchant_form_values(session: Session, principal: Principal) -> dict[str, Any]:
    merchant = service.get_merchant(session, principal.merchant_id)
    settings = service.public_settings(merchant)
    return {"name": merchant.name, "wechat_miniprogram_appid": settings["wechat_miniprogram_appid"],
            "protection_days": str(settings["protection_days"]),
            "secret_set": settings["wechat_miniprogram_secret_set"], "slug": merchant.slug}


@router.get("/console/settings/merchant")
def merchant_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    return _settings_page(request, session, principal, "merchants/merchant.html",
                          {"values": _merchant_form_values(session, principal), "errors": {}}, tab="merchant")


@router.post("/console/settings/merchant")
def merchant_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = _values(form, ("name", "wechat_miniprogram_appid", "protection_days"))
    secret = form_str(form, "wechat_miniprogram_secret", max_length=500)
    clear_secret = form_str(form, "clear_secret") == "1"
    data = {**values, "wechat_miniprogram_secret": secret or None}
    if data["protection_days"] == "":
        data["protection_days"] = service.DEFAULT_PROTECTION_DAYS
    body, errors = validate_form(MerchantUpdate, data)
    if body is None:
        shown = {**_merchant_form_values(session, principal), **values}
        return _settings_page(request, session, principal, "merchants/merchant.html",
                              {"values": shown, "errors": errors}, tab="merchant", status_code=422)
    settings: dict[str, Any] = {"wechat_miniprogram_appid": body.wechat_miniprogram_appid or "",
                                "protection_days": body.protection_days}
    if body.wechat_miniprogram_secret:
        settings["wechat_miniprogram_secret"] = body.wechat_miniprogram_secret
    elif clear_secret:
        settings["wechat_miniprogram_secret"] = ""
    try:
        service.update_merchant(session, actor=principal, name=body.name, settings=settings)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect("/console/settings/merchant", ok="merchant_saved")


# ---------------------------------------------------------------- stores

STORE_FIELDS = ("name", "address", "latitude", "longitude", "opening_hours", "phone", "agent_id")


def _store_form(request: Request, session: Session, principal: Principal, *, store: Any, values: dict[str, Any],
                errors: dict[str, str], status_code: int = 200) -> Response:
    agents = service.list_agents(session, actor=principal) if principal.role == Role.BRAND_ADMIN else []
    return _settings_page(request, session, principal, "merchants/store_form.html",
                          {"store": store, "values": values, "errors": errors, "agents": agents,
                           "can_edit": principal.can("stores.manage")}, tab="stores", status_code=status_code)


def _store_values(store: Any) -> dict[str, Any]:
    return {"name": store.name, "address": store.address,
            "latitude": "" if store.latitude is None else str(store.latitude),
            "longitude": "" if store.longitude is None else str(store.longitude),
            "opening_hours": store.opening_hours, "phone": store.phone,
            "agent_id": "" if store.agent_id is None else str(store.agent_id)}


@router.get("/console/settings/stores")
def stores_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    stores = service.list_stores(session, actor=principal)
    agents = {a.id: a.name for a in service.list_agents(session, actor=principal)}
    return _settings_page(request, session, principal, "merchants/stores.html",
                          {"stores": stores, "agents": agents, "can_manage": principal.can("stores.manage")}, tab="stores")


@router.get("/console/settings/stores/new")
def store_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("stores.manage")
    return _store_form(request, session, principal, store=None, values={}, errors={})


@router.post("/console/settings/stores")
def store_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("stores.manage")
    values = _values(form, STORE_FIELDS)
    if principal.role != Role.BRAND_ADMIN:
        values["agent_id"] = ""
    body, errors = validate_form(StoreCreate, _optional(values, "latitude", "longitude", "agent_id"))

    def create() -> Response:
        store = service.create_store(session, actor=principal, **body.model_dump())
        return _redirect(f"/console/settings/stores/{store.id}", ok="store_created")

    done, errors = _submit(request, session, body, errors, create)
    if done is not None:
        return done
    return _store_form(request, session, principal, store=None, values=values, errors=errors, status_code=422)


@router.get("/console/settings/stores/{store_id}")
def store_page(store_id: Id, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    store = service.get_store(session, store_id, actor=principal)
    return _store_form(request, session, principal, store=store, values=_store_values(store), errors={})


@router.post("/console/settings/stores/{store_id}")
def store_save(store_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("stores.manage")
    store = service.get_store(session, store_id, actor=principal)
    values = _values(form, STORE_FIELDS)
    data = _optional(values, "latitude", "longitude", "agent_id")
    if principal.role != Role.BRAND_ADMIN:
        data.pop("agent_id")  # only the brand moves a store between agents
        values["agent_id"] = "" if store.agent_id is None else str(store.agent_id)
    body, errors = validate_form(StoreUpdate, data)

    def save() -> Response:
        service.update_store(session, store.id, actor=principal, **body.model_dump(exclude_unset=True))
        return _redirect(f"/console/settings/stores/{store.id}", ok="store_saved")

    done, errors = _submit(request, session, body, errors, save)
    if done is not None:
        return done
    store = service.get_store(session, store_id, actor=principal)
    return _store_form(request, session, principal, store=store, values=values, errors=errors, status_code=422)


@router.post("/console/settings/stores/{store_id}/activate")
def store_activate(store_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        service.update_store(session, store_id, actor=principal, active=True)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect("/console/settings/stores", ok="store_activated")


@router.post("/console/settings/stores/{store_id}/deactivate")
def store_deactivate(store_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        service.update_store(session, store_id, actor=principal, active=False)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect("/console/settings/stores", ok="store_deactivated")


# ---------------------------------------------------------------- agents


def _agents_page(request: Request, session: Session, principal: Principal, *, values: dict[str, str],
                 errors: dict[str, str], status_code: int = 200) -> Response:
    agents = service.list_agents(session, actor=principal)
    stores = service.list_stores(session, actor=principal)
    store_counts = {a.id: sum(1 for s in stores if s.agent_id == a.id) for a in agents}
    return _settings_page(request, session, principal, "merchants/agents.html",
                          {"agents": agents, "store_counts": store_counts, "values": values, "errors": errors,
                           "can_create": principal.can("merchant.manage")}, tab="agents", status_code=status_code)


@router.get("/console/settings/agents")
def agents_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("stores.manage")
    return _agents_page(request, session, principal, values={}, errors={})


@router.post("/console/settings/agents")
def agent_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("merchant.manage")
    values = _values(form, ("name", "region"))
    body, errors = validate_form(AgentCreate, values)

    def create() -> Response:
        service.create_agent(session, actor=principal, name=body.name, region=body.region)
        return _redirect("/console/settings/agents", ok="agent_created")

    done, errors = _submit(request, session, body, errors, create)
    if done is not None:
        return done
    return _agents_page(request, session, principal, values=values, errors=errors, status_code=422)


# ---------------------------------------------------------------- staff

STAFF_CREATE_FIELDS = ("role", "username", "name", "phone", "store_id", "agent_id")


def _staff_form(request: Request, session: Session, principal: Principal, *, values: dict[str, Any],
                errors: dict[str, str], status_code: int = 200) -> Response:
    stores = service.list_stores(session, actor=principal, active_only=True)
    agents = service.list_agents(session, actor=principal)
    return _settings_page(request, session, principal, "merchants/staff_new.html",
                          {"values": values, "errors": errors, "stores": stores, "agents": agents,
                           "roles": _role_choices(_manageable_roles(principal))}, tab="staff", status_code=status_code)


@router.get("/console/settings/staff")
def staff_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    q = request.query_params
    role = q.get("role", "")
    role = role if role in {r.value for r in Role} else ""
    store_raw = q.get("store_id", "")
    store_id = int(store_raw) if store_raw.isdigit() and 0 < len(store_raw) < 16 and int(store_raw) > 0 else None
    active_raw = q.get("active", "")
    active = {"1": True, "0": False}.get(active_raw)
    rows = service.list_staff(session, actor=principal, role=role or None, store_id=store_id, active=active)
    stores = service.list_stores(session, actor=principal)
    agents = {a.id: a.name for a in service.list_agents(session, actor=principal)}
    return _settings_page(request, session, principal, "merchants/staff.html",
                          {"rows": rows, "stores": stores, "store_names": {s.id: s.name for s in stores},
                           "agent_names": agents, "role_labels": {r.value: _(ROLE_LABELS[r]) for r in Role},
                           "filters": {"role": role, "store_id": store_id, "active": active_raw if active is not None else ""},
                           "can_create": principal.can("staff.manage")}, tab="staff")


@router.get("/console/settings/staff/new")
def staff_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("staff.manage")
    return _staff_form(request, session, principal, values={"role": Role.GUIDE.value}, errors={})


@router.post("/console/settings/staff")
def staff_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("staff.manage")
    values = _values(form, STAFF_CREATE_FIELDS)
    data = {**_optional(values, "store_id", "agent_id"), "password": _password(form)}
    if data.get("role") == "":
        data["role"] = None
    body, errors = validate_form(StaffCreate, data)

    def create() -> Response:
        staff = service.create_staff(session, actor=principal, **body.model_dump())
        return _redirect(f"/console/settings/staff/{staff.id}", ok="staff_created")

    done, errors = _submit(request, session, body, errors, create)
    if done is not None:
        return done
    return _staff_form(request, session, principal, values=values, errors=errors, status_code=422)


def _staff_detail(request: Request, session: Session, principal: Principal, staff: Any, *, values: dict[str, Any],
                  errors: dict[str, str], status_code: int = 200) -> Response:
    role = Role(staff.role)
    is_self = staff.id == principal.staff_id
    can_manage = role in _manageable_roles(principal) and not is_self
    store_names = {s.id: s.name for s in service.list_stores(session, actor=principal)}
    if staff.store_id and staff.store_id not in store_names:
        store_names[staff.store_id] = service.get_store(session, staff.store_id,
                                                         actor=_system(principal)).name
    stores = service.list_stores(session, actor=principal, active_only=True) if can_manage else []
    agent_names = {a.id: a.name for a in service.list_agents(session, actor=_system(principal))}
    return _settings_page(request, session, principal, "merchants/staff_detail.html",
                          {"staff": staff, "values": values, "errors": errors, "is_self": is_self,
                           "can_manage": can_manage, "can_edit": can_manage or is_self,
                           "has_store": role in (Role.GUIDE, Role.STORE_MANAGER), "stores": stores,
                           "store_names": store_names, "agent_names": agent_names,
                           "role_label": _(ROLE_LABELS[role])}, tab="staff", status_code=status_code)


def _system(principal: Principal) -> Principal:
    # Names of the store and agent a visible staff member belongs to, even when the viewer's own
    # scope does not list them (an agent admin sees only their own agent).
    return system_principal(principal.merchant_id)


def _staff_values(staff: Any) -> dict[str, Any]:
    return {"name": staff.name, "phone": staff.phone, "store_id": "" if staff.store_id is None else str(staff.store_id)}


@router.get("/console/settings/staff/{staff_id}")
def staff_detail(staff_id: Id, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    staff = service.get_staff(session, staff_id, actor=principal)
    return _staff_detail(request, session, principal, staff, values=_staff_values(staff), errors={})


@router.post("/console/settings/staff/{staff_id}")
def staff_save(staff_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    staff = service.get_staff(session, staff_id, actor=principal)
    values = _values(form, ("name", "phone", "store_id"))
    password = _password(form)
    data: dict[str, Any] = {"name": values["name"], "phone": values["phone"]}
    if password:
        data["password"] = password
    if values["store_id"] and Role(staff.role) in (Role.GUIDE, Role.STORE_MANAGER) and staff.id != principal.staff_id:
        data["store_id"] = values["store_id"]
    body, errors = validate_form(StaffUpdate, data)

    def save() -> Response:
        service.update_staff(session, staff.id, actor=principal, **body.model_dump(exclude_unset=True))
        if password and staff.id == principal.staff_id:
            # A new password ends every session, this one included.
            return _redirect("/console/login")
        return _redirect(f"/console/settings/staff/{staff.id}", ok="staff_saved")

    done, errors = _submit(request, session, body, errors, save)
    if done is not None:
        return done
    staff = service.get_staff(session, staff_id, actor=principal)
    return _staff_detail(request, session, principal, staff, values=values, errors=errors, status_code=422)


@router.get("/console/settings/staff/{staff_id}/disable")
def staff_disable_confirm(staff_id: Id, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    staff = service.get_staff(session, staff_id, actor=principal)
    if staff.id == principal.staff_id:
        return _redirect(f"/console/settings/staff/{staff.id}", err="cannot_disable_self")
    if Role(staff.role) not in _manageable_roles(principal):
        raise PermissionDenied("You can only manage staff below your own role.")
    return _disable_page(request, session, principal, staff, values={"transfer_mode": "round_robin"}, errors={})


def _disable_page(request: Request, session: Session, principal: Principal, staff: Any, *, values: dict[str, str],
                  errors: dict[str, str], status_code: int = 200) -> Response:
    colleagues = [s for s in service.list_staff(session, actor=principal, active=True) if s.id != staff.id]
    return _settings_page(request, session, principal, "merchants/staff_disable.html",
                          {"staff": staff, "role_label": _(ROLE_LABELS[Role(staff.role)]), "colleagues": colleagues,
                           "values": values, "errors": errors}, tab="staff", status_code=status_code)


@router.post("/console/settings/staff/{staff_id}/disable")
def staff_disable(staff_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = _values(form, ("transfer_mode", "transfer_to_id"))
    mode = values["transfer_mode"] or "round_robin"
    to_id = int(values["transfer_to_id"]) if values["transfer_to_id"].isdigit() else None
    try:
        staff = service.disable_staff(session, staff_id, actor=principal, transfer_mode=mode,
                                      transfer_to_id=to_id if mode == "colleague" else None)
    except ValidationFailed as exc:
        session.rollback()
        staff = service.get_staff(session, staff_id, actor=principal)
        return _disable_page(request, session, principal, staff, values=values, errors=_service_errors(exc),
                             status_code=422)
    except Conflict as exc:
        session.rollback()
        if exc.code == "cannot_disable_self":
            return _redirect(f"/console/settings/staff/{staff_id}", err="cannot_disable_self")
        return _error_page(request, session, exc)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect(f"/console/settings/staff/{staff.id}", ok="staff_disabled")


@router.post("/console/settings/staff/{staff_id}/enable")
def staff_enable(staff_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        staff = service.enable_staff(session, staff_id, actor=principal)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect(f"/console/settings/staff/{staff.id}", ok="staff_enabled")


# ---------------------------------------------------------------- API tokens


def _tokens_page(request: Request, session: Session, principal: Principal, *, values: dict[str, str],
                 errors: dict[str, str], new_token: str | None = None, status_code: int = 200) -> Response:
    tokens = service.list_api_tokens(session, actor=principal)
    return _settings_page(request, session, principal, "merchants/tokens.html",
                          {"tokens": tokens, "values": values, "errors": errors, "new_token": new_token},
                          tab="tokens", status_code=status_code)


@router.get("/console/settings/tokens")
def tokens_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _tokens_page(request, session, principal, values={}, errors={})


@router.post("/console/settings/tokens")
def token_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = _values(form, ("label",))
    body, errors = validate_form(ApiTokenCreate, values)
    if body is None:
        return _tokens_page(request, session, principal, values=values, errors=errors, status_code=422)
    staff = service.get_staff(session, principal.staff_id or 0, actor=principal)
    raw, _row = service.issue_token(session, staff, kind="api", label=body.label)
    # The raw token is shown on this response only (it is stored as a digest): no redirect.
    return _tokens_page(request, session, principal, values={}, errors={}, new_token=raw, status_code=201)


@router.post("/console/settings/tokens/{token_id}/revoke")
def token_revoke(token_id: Id, request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        service.revoke_api_token(session, token_id, actor=principal)
    except AppError as exc:
        return _error_page(request, session, exc)
    return _redirect("/console/settings/tokens", ok="token_revoked")
