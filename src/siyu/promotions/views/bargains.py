"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — console and H5 pages.

Console (/console/promotions/bargains): campaigns with live figures (bargains, assists, at the floor,
orders, GMV), the builder (create, edit), schedule / pause / resume / end, the detail with its
bargains and their assists, and share tools.
H5: the campaign page /shop/{m}/bargain-campaign/{id} (start a bargain), the bargain page
/shop/{m}/bargain/{id} (progress bar start → floor, assists, countdown, share; "help cut" for friends,
"buy now at ¥x" for the starter) and /shop/{m}/bargains (running campaigns and my bargains).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.attribution.service import posters
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import OptionalShopCustomer, ShopForm, ShopPageCustomer, visitor_id_of
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.models.bargains import BargainCampaign
from siyu.promotions.service import bargains as service
from siyu.promotions.states.bargains import BARGAIN_LABELS, CAMPAIGN_LABELS, BargainCampaignStatus
from siyu.promotions.views import common

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/bargains"
DEVICE_COOKIE = "siyu_did"
LABELS = {"campaign": {**{k.value: v for k, v in CAMPAIGN_LABELS.items()}, "upcoming": "Upcoming",
                       "running": "Running", "finished": "Over"},
          "bargain": {k.value: v for k, v in BARGAIN_LABELS.items()}}
FLASH = {"saved": "Saved.", "schedule": "Scheduled: the campaign runs in its window.", "draft": "Back to draft.",
         "pause": "Paused: no new bargains or assists.", "resume": "Resumed.",
         "end": "Ended. Open bargains have expired."}
ACTIONS = ("schedule", "draft", "pause", "resume", "end")
FIELDS = ("title", "sku_id", "start_price", "floor_price", "expected_assists", "time_limit_minutes",
          "max_bargains_per_customer", "new_customer_weight", "starts_at", "ends_at")


def _console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
             status: int = 200) -> Response:
    service.require_manager(principal)
    return common.console_page(request, session, principal, name, ctx, labels=LABELS, flashes=FLASH,
                               status_of=service.display_status, status=status)


_local_input, _local_dt, _int = common.local_input, common.local_dt, common.parse_int


# ================================================================= console


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in {s.value for s in BargainCampaignStatus} else ""
    rows = service.list_campaigns(session, merchant_id=principal.merchant_id, status=status or None)
    return _console(request, session, principal, "bargains_list.html", {
        "rows": rows, "status": status,
        "figures": service.campaign_figures(session, merchant_id=principal.merchant_id,
                                            campaign_ids=[c.id for c in rows])})


def _typed_of(campaign: BargainCampaign | None) -> dict[str, Any]:
    if campaign is None:
        now = clock.now().replace(second=0, microsecond=0)
        return {"title": "", "sku_id": "", "start_price": "", "floor_price": "", "expected_assists": "5",
                "time_limit_minutes": "1440", "max_bargains_per_customer": "1", "new_customer_weight": "1.5",
                "starts_at": _local_input(now), "ends_at": _local_input(now + dt.timedelta(days=7)),
                "allow_buy_at_current": True}
    return {"title": campaign.title, "sku_id": str(campaign.sku_id),
            "start_price": cents_to_yuan_str(campaign.start_price_cents),
            "floor_price": cents_to_yuan_str(campaign.floor_price_cents),
            "expected_assists": str(campaign.expected_assists), "time_limit_minutes": str(campaign.time_limit_minutes),
            "max_bargains_per_customer": str(campaign.max_bargains_per_customer),
            "new_customer_weight": f"{campaign.new_customer_weight_bps / 10000:g}",
            "starts_at": _local_input(campaign.starts_at), "ends_at": _local_input(campaign.ends_at),
            "allow_buy_at_current": campaign.allow_buy_at_current}


def _parse(form: Any) -> tuple[dict[str, Any], service.CampaignIn | None, dict[str, str]]:
    typed: dict[str, Any] = {k: form_str(form, k, max_length=100) for k in FIELDS}
    typed["allow_buy_at_current"] = bool(form_str(form, "allow_buy_at_current", max_length=5))
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"title": typed["title"][:60], "allow_buy_at_current": typed["allow_buy_at_current"]}
    checks = {
        "sku_id": (lambda: _int(typed["sku_id"]), "Choose a product."),
        "start_price_cents": (lambda: yuan_to_cents(typed["start_price"]), "Type a price in yuan."),
        "floor_price_cents": (lambda: yuan_to_cents(typed["floor_price"]), "Type a price in yuan."),
        "expected_assists": (lambda: _int(typed["expected_assists"]), "Between 1 and 500 assists."),
        "time_limit_minutes": (lambda: _int(typed["time_limit_minutes"]), "Between 1 minute and 30 days."),
        "max_bargains_per_customer": (lambda: _int(typed["max_bargains_per_customer"], default=1), "Between 1 and 100."),
    }
    field_of = {"start_price_cents": "start_price", "floor_price_cents": "floor_price"}
    for key, (parse, message) in checks.items():
        try:
            values[key] = parse()
        except (ValueError, ArithmeticError):
            errors[field_of.get(key, key)] = _(message)
    try:
        weight = float((typed["new_customer_weight"] or "1")[:6])
        if weight != weight or not 1 <= weight <= 3:
            raise ValueError(weight)
        values["new_customer_weight_bps"] = round(weight * 10000)
    except ValueError:
        errors["new_customer_weight"] = _("Between 1× and 3×.")
    try:
        values["starts_at"], values["ends_at"] = _local_dt(typed["starts_at"]), _local_dt(typed["ends_at"])
    except ValueError:
        errors["ends_at"] = _("Enter the start and the end.")
    if errors:
        return typed, None, errors
    return typed, service.CampaignIn(**values), {}


def _builder(request: Request, session: Any, principal: Principal, *, campaign: BargainCampaign | None,
             typed: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _console(request, session, principal, "bargains_form.html", {
        "campaign": campaign, "typed": typed, "errors": errors or {}, "skus": common.sku_choices(session, principal)},
        status=status)


RENAME = {"start_price_cents": "start_price", "floor_price_cents": "floor_price",
          "new_customer_weight_bps": "new_customer_weight"}


def _save(request: Request, session: Any, principal: Principal, form: Any,
          campaign: BargainCampaign | None) -> Response:
    typed, data, errors = _parse(form)
    if data is not None:
        done, errors = common.save_campaign(session, base=BASE, data=data, campaign=campaign, actor=principal,
                                            create=service.create_campaign, update=service.update_campaign,
                                            field_key=lambda k: RENAME.get(k, k))
        if done is not None:
            return done
    return _builder(request, session, principal, campaign=campaign, typed=typed, errors=errors, status=422)


@router.get(f"{BASE}/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    return _builder(request, session, principal, campaign=None, typed=_typed_of(None))


@router.post(f"{BASE}/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.require_manager(principal)
    return _save(request, session, principal, form, None)


@router.get(f"{BASE}/{{campaign_id}}/edit")
def console_edit(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _builder(request, session, principal, campaign=campaign, typed=_typed_of(campaign))


@router.post(f"{BASE}/{{campaign_id}}/edit")
def console_update(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _save(request, session, principal, form, campaign)


@router.get(f"{BASE}/{{campaign_id}}")
def console_detail(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    rows = service.bargains_of_campaign(session, merchant_id=principal.merchant_id, campaign_id=campaign.id)
    assists = service.assists_of(session, [b.id for b in rows])
    names = customers.nicknames_of(session, principal.merchant_id, [b.customer_id for b in rows])
    slug = merchants.get_merchant(session, principal.merchant_id).slug
    link = f"{str(request.base_url).rstrip('/')}/shop/{slug}/bargain-campaign/{campaign.id}"
    return _console(request, session, principal, "bargains_detail.html", {
        "campaign_link": link, "qr": Markup(posters.qr_svg_inline(link, scale=4)), "campaign": campaign, "rows": rows, "assists": assists, "names": names, "actions": ACTIONS,
        "figures": service.campaign_figures(session, merchant_id=principal.merchant_id,
                                            campaign_ids=[campaign.id])[campaign.id],
        "error": (request.query_params.get("error") or "")[:200]})


@router.post(f"{BASE}/{{campaign_id}}/{{action}}")
def console_action(campaign_id: PathId, action: str, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    return common.status_action(session, base=BASE, campaign_id=campaign_id, action=action, actions=ACTIONS,
                                change=lambda: service.change_campaign_status(session, campaign_id, actor=principal, action=action))


# ================================================================= H5


def _shop_campaign(session: Any, merchant_id: int, campaign_id: int) -> BargainCampaign:
    campaign = service.get_campaign(session, campaign_id, merchant_id=merchant_id)
    if campaign.status == BargainCampaignStatus.DRAFT:
        raise NotFound()
    return campaign


@router.get("/shop/{m}/bargains")
def shop_bargains(request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: OptionalShopCustomer) -> Response:
    mine = service.customer_bargains(session, merchant_id=merchant.id, customer_id=customer.customer_id) \
        if customer and customer.customer_id else []
    titles = {c.id: c for c in service.list_campaigns(session, merchant_id=merchant.id)}
    return render(request, "promotions/bargains_shop_list.html", {
        "campaigns": service.running_campaigns(session, merchant_id=merchant.id), "mine": mine, "titles": titles,
        "labels": LABELS, "now": clock.now(), "tab": "home"})


@router.get("/shop/{m}/bargain-campaign/{campaign_id}")
def shop_campaign(campaign_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: OptionalShopCustomer) -> Response:
    """The campaign: start price, floor price, how many friends it takes; start (or go back to) my bargain."""
    campaign = _shop_campaign(session, merchant.id, campaign_id)
    mine = [b for b in service.customer_bargains(session, merchant_id=merchant.id, customer_id=customer.customer_id)
            if b.campaign_id == campaign.id] if customer and customer.customer_id else []
    return render(request, "promotions/bargains_shop_campaign.html", {
        "campaign": campaign, "running": service.is_running(campaign), "mine": mine, "labels": LABELS,
        "error": (request.query_params.get("error") or "")[:200], "tab": "home"})


@router.post("/shop/{m}/bargain-campaign/{campaign_id}/start")
def shop_start(campaign_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
               customer: ShopPageCustomer, form: ShopForm) -> Response:
    try:
        with session.begin_nested():
            bargain = service.start_bargain(session, actor=customer, campaign_id=campaign_id)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return RedirectResponse(f"/shop/{merchant.slug}/bargain-campaign/{campaign_id}?error="
                                f"{quote(exc.translated())}", status_code=303)
    return RedirectResponse(f"/shop/{merchant.slug}/bargain/{bargain.id}", status_code=303)


def _bargain_page(request: Request, session: Any, merchant: Any, customer: Principal | None, bargain_id: int, *,
                  flash: str | None = None, flash_kind: str | None = None, status: int = 200) -> Response:
    bargain = service.get_bargain(session, bargain_id, merchant_id=merchant.id)
    view = service.bargain_view(session, bargain, viewer_id=customer.customer_id if customer else None)
    starter = customers.nicknames_of(session, merchant.id, [bargain.customer_id]).get(bargain.customer_id, "")
    buy_url = (f"/shop/{merchant.slug}/checkout?sku_id={view['sku_id']}&quantity=1&promo_kind=bargain"
               f"&promo_bargain_id={bargain.id}")
    response = render(request, "promotions/bargains_shop_bargain.html", {
        "b": view, "starter": starter, "buy_url": buy_url, "labels": LABELS, "flash": flash,
        "flash_kind": flash_kind, "signed_in": customer is not None, "tab": "home"}, status_code=status)
    if not request.cookies.get(DEVICE_COOKIE):
        # A device id for the assist rate limit (the mini-program sends X-Device-Id instead).
        response.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(18), max_age=365 * 86400, httponly=True,
                            samesite="lax")
    return response


@router.get("/shop/{m}/bargain/{bargain_id}")
def shop_bargain(bargain_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                 customer: OptionalShopCustomer) -> Response:
    ok = request.query_params.get("ok", "")
    cut = request.query_params.get("cut", "")
    flash = None
    if ok == "helped" and cut.isdigit() and len(cut) < 12:
        flash = _("You cut ¥{amount} off!", amount=cents_to_yuan_str(int(cut)))
    return _bargain_page(request, session, merchant, customer, bargain_id, flash=flash,
                         flash_kind="success" if flash else None)


@router.post("/shop/{m}/bargain/{bargain_id}/assist")
def shop_assist(bargain_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                customer: ShopPageCustomer, form: ShopForm) -> Response:
    device = request.headers.get("x-device-id") or request.cookies.get(DEVICE_COOKIE)
    try:
        with session.begin_nested():
            row = service.assist(session, actor=customer, bargain_id=bargain_id, visitor_id=visitor_id_of(request),
                                 device_id=device)
    except AppError as exc:
        if exc.status_code not in (409, 429):
            raise
        return _bargain_page(request, session, merchant, customer, bargain_id, flash=exc.translated(),
                             flash_kind="error", status=exc.status_code)
    return RedirectResponse(f"/shop/{merchant.slug}/bargain/{bargain_id}?ok=helped&cut={row.cut_cents}",
                            status_code=303)
