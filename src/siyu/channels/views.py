"""Console pages of channels (/console/channels…): the official account's QR codes per store and
guide (create, print), the guides' WeCom contact-me states, subscription figures, the inbound
callback log, and the WeChat / WeCom settings. Every page calls the channels, merchants and
attribution services; none queries tables."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from siyu.attribution.service import posters
from siyu.channels.service import codes, figures
from siyu.channels.service import settings as channel_settings
from siyu.config import get_settings
from siyu.core.auth import Principal, Role
from siyu.core.errors import AppError, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff

router = APIRouter(include_in_schema=False)

PathId = Annotated[int, Path(gt=0, le=2**53)]
FLASHES = {
    "qr_created": "The QR code was created.",
    "qr_exists": "This QR code already exists.",
    "way_saved": "The WeCom contact way was saved.",
    "settings_saved": "WeChat settings saved.",
}
OUTCOME_LABELS = {"processed": "Processed", "duplicate": "Duplicate", "ignored": "Ignored", "rejected": "Rejected"}
CHANNEL_LABELS = {"oa": "Official account", "wecom": "WeCom"}


def _page(request: Request, session: Session, principal: Principal, name: str, ctx: dict[str, Any], *, tab: str,
          status_code: int = 200) -> Response:
    ok = request.query_params.get("ok")
    ctx = {"active_menu": "channels", "tab": tab,
           "merchant_name": merchants.get_merchant(session, principal.merchant_id).name,
           "can_settings": principal.can("merchant.manage"), **ctx}
    if "flash" not in ctx and ok in FLASHES:
        ctx["flash"] = _(FLASHES[ok])
    return render(request, name, ctx, status_code=status_code)


def _error_page(request: Request, session: Session, exc: AppError) -> Response:
    session.rollback()
    return render(request, "error.html", {"status": exc.status_code, "error": exc.to_dict()["error"]},
                  status_code=exc.status_code)


def _serving_staff(session: Session, principal: Principal) -> list[Any]:
    return [s for s in merchants.list_staff(session, actor=principal, active=True)
            if s.role in (Role.GUIDE.value, Role.STORE_MANAGER.value)]


def _overview(request: Request, session: Session, principal: Principal, *, errors: dict[str, str] | None = None,
              values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    stores = merchants.list_stores(session, actor=principal)
    staff = _serving_staff(session, principal)
    by_target = figures.codes_by_target(session, actor=principal)
    counts = figures.code_counts(session, actor=principal, code_ids=[c.id for c in by_target.values()])
    ways = figures.contact_ways_by_staff(session, actor=principal)
    contact_counts = figures.contact_counts(session, actor=principal, staff_ids=[s.id for s in staff])
    store_names = {s.id: s.name for s in stores}
    return _page(request, session, principal, "channels/index.html", {
        "stores": stores, "staff": staff, "by_target": by_target, "counts": counts, "ways": ways,
        "contact_counts": contact_counts, "store_names": store_names,
        "figures": figures.subscription_figures(session, actor=principal) if principal.can("merchant.manage") else None,
        "can_store_codes": principal.can("stores.manage"),
        "can_staff_codes": {s.id for s in staff if codes.may_manage_codes_of(principal, s.id)},
        "oa_ready": bool(channel_settings.oa_config(session, merchant_id=principal.merchant_id).secret),
        "errors": errors or {}, "values": values or {},
    }, tab="codes", status_code=status_code)


@router.get("/console/channels")
def channels_index(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _overview(request, session, principal)


@router.post("/console/channels/oa-qrcodes")
def create_qrcode(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    store_id, staff_id = form_str(form, "store_id", max_length=17), form_str(form, "staff_id", max_length=17)
    try:
        code, created = codes.create_oa_qr(session, actor=principal,
                                           store_id=int(store_id) if store_id.isdigit() else None,
                                           staff_id=int(staff_id) if staff_id.isdigit() else None)
    except AppError as exc:
        return _error_page(request, session, exc)
    return RedirectResponse(f"/console/channels/oa-qrcodes/{code.id}?ok={'qr_created' if created else 'qr_exists'}",
                            status_code=303)


@router.get("/console/channels/oa-qrcodes/{code_id}")
def qrcode_page(code_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    code = codes.get_oa_qr(session, code_id, actor=principal)
    counts = figures.code_counts(session, actor=principal, code_ids=[code.id])[code.id]
    store_name = merchants.get_store(session, code.store_id, actor=principal).name if code.store_id else ""
    # segno writes the SVG from the code's content URL; no user text goes into it.
    qr = Markup(posters.qr_svg_inline(code.url, scale=5))  # noqa: S704
    return _page(request, session, principal, "channels/qrcode.html",
                 {"code": code, "counts": counts, "qr": qr, "store_name": store_name}, tab="codes")


@router.post("/console/channels/wecom/contact-ways")
def save_contact_way(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    staff_id = form_str(form, "staff_id", max_length=17)
    values = {"staff_id": staff_id, "wecom_userid": form_str(form, "wecom_userid", max_length=64),
              "state": form_str(form, "state", max_length=30)}
    try:
        codes.set_contact_way(session, actor=principal, staff_id=int(staff_id) if staff_id.isdigit() else 0,
                              wecom_userid=values["wecom_userid"], state=values["state"])
    except ValidationFailed as exc:
        session.rollback()
        fields = (exc.details or {}).get("fields") or {"form": exc.translated()}
        return _overview(request, session, principal, errors=dict(fields), values=values, status_code=422)
    except AppError as exc:
        return _error_page(request, session, exc)
    return RedirectResponse("/console/channels?ok=way_saved#wecom", status_code=303)


@router.get("/console/channels/inbound")
def inbound_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("merchant.manage")
    params = request.query_params
    channel = params.get("channel") if params.get("channel") in figures.CHANNELS else ""
    outcome = params.get("outcome") if params.get("outcome") in figures.OUTCOMES else ""
    cursor = (params.get("cursor") or "")[:200] or None
    flash = None
    try:
        page = figures.list_inbound(session, actor=principal, channel=channel or None, outcome=outcome or None,
                                    cursor=cursor, limit=50)
    except AppError:
        page = figures.list_inbound(session, actor=principal, channel=channel or None, outcome=outcome or None,
                                    limit=50)
        flash = _("The page link is not valid; showing the first page.")
    kept = {k: v for k, v in (("channel", channel), ("outcome", outcome)) if v}
    next_url = ("/console/channels/inbound?" + urlencode({**kept, "cursor": page.next_cursor})) \
        if page.next_cursor else None
    ctx: dict[str, Any] = {"messages": page.items, "channel": channel, "outcome": outcome, "next_url": next_url,
                           "outcome_labels": OUTCOME_LABELS, "channel_labels": CHANNEL_LABELS}
    if flash:
        ctx.update(flash=flash, flash_kind="error")
    return _page(request, session, principal, "channels/inbound.html", ctx, tab="inbound")


SETTINGS_FIELDS = ("wechat_oa_appid", "wechat_oa_secret", "wechat_oa_token", "wechat_oa_aes_key", "wecom_corp_id",
                   "wecom_token", "wecom_aes_key")


def _settings_page(request: Request, session: Session, principal: Principal, *, values: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    principal.require("merchant.manage")
    view = channel_settings.public_view(session, merchant_id=principal.merchant_id)
    slug = merchants.get_merchant(session, principal.merchant_id).slug
    base = get_settings().public_base_url.rstrip("/")
    shown = {**view, **{k: v for k, v in (values or {}).items() if k in channel_settings.PLAIN_KEYS}}
    return _page(request, session, principal, "channels/settings.html", {
        "values": shown, "errors": errors or {}, "secret_keys": channel_settings.SECRET_KEYS,
        "oa_callback_url": f"{base}/webhooks/wechat/oa/{slug}", "wecom_callback_url": f"{base}/webhooks/wecom/{slug}",
    }, tab="settings", status_code=status_code)


@router.get("/console/channels/settings")
def settings_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _settings_page(request, session, principal)


@router.post("/console/channels/settings")
def settings_save(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = {name: form_str(form, name, max_length=100) for name in SETTINGS_FIELDS}
    clear = tuple(k for k in channel_settings.SECRET_KEYS if form_str(form, f"clear_{k}") == "1")
    try:
        channel_settings.update(session, actor=principal, values=values, clear=clear)
    except ValidationFailed as exc:
        session.rollback()
        fields = (exc.details or {}).get("fields") or {"form": exc.translated()}
        return _settings_page(request, session, principal, values=values, errors=dict(fields), status_code=422)
    except AppError as exc:
        return _error_page(request, session, exc)
    return RedirectResponse("/console/channels/settings?ok=settings_saved", status_code=303)
