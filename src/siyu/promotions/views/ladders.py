"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — console and H5 pages.

Console (/console/promotions/ladders): campaigns with live figures (participants, orders, units, GMV,
refunded differences), the builder (tiers), schedule / pause / resume / end, the detail with its
orders and their refunds, and share tools. H5: the ladder page /shop/{m}/ladder/{id} (tiers,
participants, current price, next tier, countdown, buy, share) and /shop/{m}/ladders.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import NotFound
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import OptionalShopCustomer
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.models.ladders import LadderCampaign
from siyu.promotions.service import ladders as service
from siyu.promotions.service.common import require_manager
from siyu.promotions.states.ladders import ENTRY_LABELS, LADDER_LABELS, LadderStatus
from siyu.promotions.views import common

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/ladders"
TIER_ROWS = 5
LABELS = {"campaign": {**{k.value: v for k, v in LADDER_LABELS.items()}, "upcoming": "Upcoming",
                       "running": "Running", "finished": "Over"},
          "entry": {k.value: v for k, v in ENTRY_LABELS.items()}}
FLASH = {"saved": "Saved.", "schedule": "Scheduled: the campaign runs in its window.", "draft": "Back to draft.",
         "pause": "Paused: no new orders.", "resume": "Resumed.",
         "end": "Ended. The final price is fixed and the differences are refunded shortly."}
ACTIONS = ("schedule", "draft", "pause", "resume", "end")


def _console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
             status: int = 200) -> Response:
    require_manager(principal)
    return common.console_page(request, session, principal, name, ctx, labels=LABELS, flashes=FLASH,
                               status_of=service.display_status, status=status)


_local_input, _local_dt, _int = common.local_input, common.local_dt, common.parse_int


# ================================================================= console


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in {s.value for s in LadderStatus} else ""
    rows = service.list_campaigns(session, merchant_id=principal.merchant_id, status=status or None)
    return _console(request, session, principal, "ladders_list.html", {
        "rows": rows, "status": status, "view": service.ladder_view,
        "figures": service.campaign_figures(session, merchant_id=principal.merchant_id,
                                            campaign_ids=[c.id for c in rows])})


def _typed_of(campaign: LadderCampaign | None) -> dict[str, Any]:
    if campaign is None:
        now = clock.now().replace(second=0, microsecond=0)
        return {"title": "", "sku_id": "", "per_customer_limit": "", "starts_at": _local_input(now),
                "ends_at": _local_input(now + dt.timedelta(days=3)), "allow_coupons": False,
                "allow_member_discount": False, "tiers": [{} for _ in range(TIER_ROWS)]}
    tiers = [{"min": str(t["min_participants"]), "price": cents_to_yuan_str(int(t["price_cents"]))}
             for t in campaign.tiers]
    return {"title": campaign.title, "sku_id": str(campaign.sku_id),
            "per_customer_limit": str(campaign.per_customer_limit or ""),
            "starts_at": _local_input(campaign.starts_at), "ends_at": _local_input(campaign.ends_at),
            "allow_coupons": campaign.allow_coupons, "allow_member_discount": campaign.allow_member_discount,
            "tiers": tiers + [{} for _ in range(max(0, TIER_ROWS - len(tiers)))]}


def _parse(form: Any) -> tuple[dict[str, Any], service.CampaignIn | None, dict[str, str]]:
    typed: dict[str, Any] = {k: form_str(form, k, max_length=100) for k in (
        "title", "sku_id", "per_customer_limit", "starts_at", "ends_at")}
    typed["allow_coupons"] = bool(form_str(form, "allow_coupons", max_length=5))
    typed["allow_member_discount"] = bool(form_str(form, "allow_member_discount", max_length=5))
    errors: dict[str, str] = {}
    rows, tiers = [], []
    for n in range(TIER_ROWS):
        row = {k: form_str(form, f"tiers-{n}-{k}", max_length=20) for k in ("min", "price")}
        rows.append(row)
        if not row["min"] and not row["price"]:
            continue
        try:
            tiers.append((_int(row["min"]), yuan_to_cents(row["price"])))
        except (ValueError, ArithmeticError):
            errors["tiers"] = _("Each tier needs a participant count and a price in yuan.")
    typed["tiers"] = rows
    values: dict[str, Any] = {"title": typed["title"][:60], "tiers": tiers, "allow_coupons": typed["allow_coupons"],
                              "allow_member_discount": typed["allow_member_discount"]}
    try:
        values["sku_id"] = _int(typed["sku_id"])
    except ValueError:
        errors["sku_id"] = _("Choose a product.")
    try:
        values["per_customer_limit"] = _int(typed["per_customer_limit"]) if typed["per_customer_limit"] else None
    except ValueError:
        errors["per_customer_limit"] = _("Leave empty for no limit, or 1 to 999.")
    try:
        values["starts_at"], values["ends_at"] = _local_dt(typed["starts_at"]), _local_dt(typed["ends_at"])
    except ValueError:
        errors["ends_at"] = _("Enter the start and the end.")
    if errors:
        return typed, None, errors
    return typed, service.CampaignIn(**values), {}


def _builder(request: Request, session: Any, principal: Principal, *, campaign: LadderCampaign | None,
             typed: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _console(request, session, principal, "ladders_form.html", {
        "campaign": campaign, "typed": typed, "errors": errors or {}, "skus": common.sku_choices(session, principal)},
        status=status)


def _save(request: Request, session: Any, principal: Principal, form: Any, campaign: LadderCampaign | None) -> Response:
    typed, data, errors = _parse(form)
    if data is not None:
        done, errors = common.save_campaign(session, base=BASE, data=data, campaign=campaign, actor=principal,
                                            create=service.create_campaign, update=service.update_campaign)
        if done is not None:
            return done
    return _builder(request, session, principal, campaign=campaign, typed=typed, errors=errors, status=422)


@router.get(f"{BASE}/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    return _builder(request, session, principal, campaign=None, typed=_typed_of(None))


@router.post(f"{BASE}/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    require_manager(principal)
    return _save(request, session, principal, form, None)


@router.get(f"{BASE}/{{campaign_id}}/edit")
def console_edit(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _builder(request, session, principal, campaign=campaign, typed=_typed_of(campaign))


@router.post(f"{BASE}/{{campaign_id}}/edit")
def console_update(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _save(request, session, principal, form, campaign)


@router.get(f"{BASE}/{{campaign_id}}")
def console_detail(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    entries = service.entries_of(session, merchant_id=principal.merchant_id, campaign_id=campaign.id)
    return _console(request, session, principal, "ladders_detail.html", {
        "campaign": campaign, "view": service.ladder_view(campaign), "entries": entries, "actions": ACTIONS,
        "names": customers.nicknames_of(session, principal.merchant_id, [e.customer_id for e in entries]),
        "figures": service.campaign_figures(session, merchant_id=principal.merchant_id,
                                            campaign_ids=[campaign.id])[campaign.id],
        "error": (request.query_params.get("error") or "")[:200]})


@router.post(f"{BASE}/{{campaign_id}}/{{action}}")
def console_action(campaign_id: PathId, action: str, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    return common.status_action(session, base=BASE, campaign_id=campaign_id, action=action, actions=ACTIONS,
                                change=lambda: service.change_campaign_status(session, campaign_id, actor=principal,
                                                                              action=action))


# ================================================================= H5


@router.get("/shop/{m}/ladders")
def shop_ladders(request: Request, merchant: ShopMerchant, session: DbSession) -> Response:
    return render(request, "promotions/ladders_shop_list.html", {
        "ladders": [service.ladder_view(c) for c in service.running_campaigns(session, merchant_id=merchant.id)],
        "tab": "home"})


@router.get("/shop/{m}/ladder/{campaign_id}")
def shop_ladder(campaign_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                customer: OptionalShopCustomer) -> Response:
    """Tiers, participants, the current price, the next tier, a countdown; buy and share."""
    campaign = service.get_campaign(session, campaign_id, merchant_id=merchant.id)
    if campaign.status == LadderStatus.DRAFT:
        raise NotFound()
    view = service.ladder_view(campaign)
    mine = service.units_of_customer(session, campaign_id=campaign.id, customer_id=customer.customer_id) \
        if customer and customer.customer_id else 0
    return render(request, "promotions/ladders_shop_ladder.html", {
        "l": view, "labels": LABELS, "mine": mine, "signed_in": customer is not None, "tab": "home",
        "buy_url": f"/shop/{merchant.slug}/checkout?sku_id={campaign.sku_id}&quantity=1&promo_kind=ladder"
                   f"&promo_campaign_id={campaign.id}"})
