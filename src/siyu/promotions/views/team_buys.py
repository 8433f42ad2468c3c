"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — console and H5 pages.

Console (/console/promotions/team-buys): campaigns with live figures (participants, teams forming /
complete / failed, orders, GMV), the builder (create, edit), schedule / pause / resume / end, the
detail with its teams and share tools.
H5: the campaign page /shop/{m}/team-buy/{id} (team price against the normal price, start a team, the
open teams to join, 凑团), the team page /shop/{m}/team/{id} (progress, members, countdown, share,
join), and a link back to the team on the paid order page (slot `shop.order_paid`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import NotFound
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import register_slot, render, templates
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import OptionalShopCustomer
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.models.team_buys import TeamBuyCampaign
from siyu.promotions.schemas.team_buys import TeamBuyIn
from siyu.promotions.service import team_buys as service
from siyu.promotions.states.team_buys import CAMPAIGN_LABELS, MEMBER_LABELS, TEAM_LABELS, TeamBuyStatus
from siyu.promotions.views import common

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/team-buys"
SKU_ROWS = 5
LABELS = {"campaign": {k.value: v for k, v in CAMPAIGN_LABELS.items()},
          "team": {k.value: v for k, v in TEAM_LABELS.items()},
          "member": {k.value: v for k, v in MEMBER_LABELS.items()}}
ON_FULL_LABELS = {"refund": "Refund the late payment automatically",
                  "new_team": "Open a new team for the late payer"}
FLASH = {"saved": "Saved.", "schedule": "Scheduled: the campaign runs in its window.",
         "unschedule": "Back to draft.", "pause": "Paused: no new teams or joins.",
         "resume": "Resumed.", "end": "Ended. Forming teams fill or fail on their own clocks."}
ACTIONS = ("schedule", "unschedule", "pause", "resume", "end")


def _console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
             status: int = 200) -> Response:
    service.require_manager(principal)
    return common.console_page(request, session, principal, name, ctx, labels=LABELS, flashes=FLASH,
                               status_of=service.status_of, extra={"on_full_labels": ON_FULL_LABELS}, status=status)


_local_input, _local_dt = common.local_input, common.local_dt


# ================================================================= console


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in LABELS["campaign"] else ""
    page = service.list_campaigns(session, actor=principal, status=status or None,
                                  cursor=(request.query_params.get("cursor") or "")[:200] or None, limit=50)
    return _console(request, session, principal, "team_buys_list.html", {
        "page": page, "status": status,
        "figures": service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in page.items])})


def _typed_of(session: Any, campaign: TeamBuyCampaign | None) -> dict[str, Any]:
    if campaign is None:
        now = clock.now().replace(second=0, microsecond=0)
        return {"title": "", "description": "", "team_size": "3", "time_limit_hours": "24", "per_customer_limit": "",
                "starts_at": _local_input(now), "ends_at": _local_input(now + dt.timedelta(days=7)),
                "on_full": "refund", "allow_coupons": False, "allow_member_discount": False,
                "lucky_draw": False, "lucky_winners": "", "skus": [{} for _ in range(SKU_ROWS)]}
    skus = [{"sku_id": str(s.sku_id), "price": cents_to_yuan_str(s.team_price_cents)}
            for s in service.campaign_skus(session, campaign.id)]
    hours = campaign.time_limit_minutes / 60
    return {"title": campaign.title, "description": campaign.description, "team_size": str(campaign.team_size),
            "time_limit_hours": str(int(hours)) if hours == int(hours) else f"{hours:.2f}",
            "per_customer_limit": str(campaign.per_customer_limit or ""),
            "starts_at": _local_input(campaign.starts_at), "ends_at": _local_input(campaign.ends_at),
            "on_full": campaign.on_full, "allow_coupons": campaign.allow_coupons,
            "allow_member_discount": campaign.allow_member_discount, "lucky_draw": campaign.lucky_draw,
            "lucky_winners": str(campaign.lucky_winners or ""),
            "skus": skus + [{} for _ in range(max(0, SKU_ROWS - len(skus)))]}


def _int(raw: str, *, default: int | None = None) -> int | None:
    return default if not raw.strip() else common.parse_int(raw)


def _parse(form: Any) -> tuple[dict[str, Any], TeamBuyIn | None, dict[str, str]]:
    typed: dict[str, Any] = {k: form_str(form, k, max_length=400) for k in (
        "title", "description", "team_size", "time_limit_hours", "per_customer_limit", "starts_at", "ends_at",
        "on_full", "lucky_winners")}
    typed["allow_coupons"] = bool(form_str(form, "allow_coupons", max_length=5))
    typed["allow_member_discount"] = bool(form_str(form, "allow_member_discount", max_length=5))
    typed["lucky_draw"] = bool(form_str(form, "lucky_draw", max_length=5))
    errors: dict[str, str] = {}
    rows, skus = [], []
    for n in range(SKU_ROWS):
        row = {k: form_str(form, f"skus-{n}-{k}", max_length=20) for k in ("sku_id", "price")}
        rows.append(row)
        if not row["sku_id"]:
            continue
        try:
            skus.append({"sku_id": _int(row["sku_id"]), "team_price_cents": yuan_to_cents(row["price"])})
        except ValueError:
            errors[f"skus.{n}"] = _("Choose a SKU and type its team price in yuan.")
    typed["skus"] = rows
    values: dict[str, Any] = {"title": typed["title"], "description": typed["description"], "skus": skus,
                              "on_full": typed["on_full"] or "refund", "allow_coupons": typed["allow_coupons"],
                              "allow_member_discount": typed["allow_member_discount"],
                              "lucky_draw": typed["lucky_draw"]}
    try:
        values["team_size"] = _int(typed["team_size"], default=0)
    except ValueError:
        errors["team_size"] = _("A team has 2 to 50 people.")
    try:
        hours = float(typed["time_limit_hours"] or "24")
        if hours != hours or not 0 < hours <= 168:
            raise ValueError(hours)
        values["time_limit_minutes"] = round(hours * 60)
    except ValueError:
        errors["time_limit_hours"] = _("A team has 5 minutes to 7 days (168 hours) to fill.")
    try:
        values["lucky_winners"] = _int(typed["lucky_winners"]) if typed["lucky_draw"] else None
    except ValueError:
        errors["lucky_winners"] = _("Winners: at least 1 and fewer than the team size.")
    try:
        values["per_customer_limit"] = _int(typed["per_customer_limit"])
    except ValueError:
        errors["per_customer_limit"] = _("Leave empty for no limit, or 1 to 999.")
    try:
        values["starts_at"], values["ends_at"] = _local_dt(typed["starts_at"]), _local_dt(typed["ends_at"])
    except ValueError:
        errors["ends_at"] = _("Enter the start and the end.")
    if errors:
        return typed, None, errors
    try:
        return typed, TeamBuyIn.model_validate(values), {}
    except ValidationError as exc:
        messages = {"title": _("A title of 1 to 60 characters."), "skus": _("Choose at least one SKU, each once."),
                    "team_size": _("A team has 2 to 50 people."),
                    "time_limit_minutes": _("A team has 5 minutes to 7 days (168 hours) to fill."),
                    "per_customer_limit": _("Leave empty for no limit, or 1 to 999."),
                    "on_full": _("Choose what a late payment gets."), "description": _("At most 300 characters."),
                    "lucky_winners": _("Winners: at least 1 and fewer than the team size.")}
        for err in exc.errors():
            field = str(err["loc"][0]) if err.get("loc") else ""
            if field == "time_limit_minutes":
                errors["time_limit_hours"] = messages[field]
            elif field in messages:
                errors[field] = messages[field]
            elif typed["lucky_draw"] and "lucky_winners" in str(err.get("msg", "")):
                errors["lucky_winners"] = messages["lucky_winners"]
            else:
                errors["ends_at"] = _("The end must come after the start.")
        return typed, None, errors


def _builder(request: Request, session: Any, principal: Principal, *, campaign: TeamBuyCampaign | None,
             typed: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _console(request, session, principal, "team_buys_form.html", {
        "campaign": campaign, "typed": typed, "errors": errors or {}, "skus": common.sku_choices(session, principal)},
        status=status)


def _save(request: Request, session: Any, principal: Principal, form: Any, campaign: TeamBuyCampaign | None) -> Response:
    typed, data, errors = _parse(form)
    if data is not None:
        done, errors = common.save_campaign(session, base=BASE, data=data, campaign=campaign, actor=principal,
                                            create=service.create_campaign, update=service.update_campaign,
                                            field_key=lambda k: "skus" if k.startswith("skus") else k)
        if done is not None:
            return done
    return _builder(request, session, principal, campaign=campaign, typed=typed, errors=errors, status=422)


@router.get(f"{BASE}/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    return _builder(request, session, principal, campaign=None, typed=_typed_of(session, None))


@router.post(f"{BASE}/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.require_manager(principal)
    return _save(request, session, principal, form, None)


@router.get(f"{BASE}/{{campaign_id}}/edit")
def console_edit(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _builder(request, session, principal, campaign=campaign, typed=_typed_of(session, campaign))


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
    status = request.query_params.get("team_status", "")
    status = status if status in LABELS["team"] else ""
    page = service.list_teams(session, merchant_id=principal.merchant_id, campaign_id=campaign.id,
                              status=status or None, cursor=(request.query_params.get("cursor") or "")[:200] or None,
                              limit=50)
    members = service.members_of(session, [t.id for t in page.items])
    names = customers.nicknames_of(session, principal.merchant_id, [m.customer_id for ms in members.values() for m in ms])
    return _console(request, session, principal, "team_buys_detail.html", {
        "campaign": campaign, "figures": service.figures(session, merchant_id=principal.merchant_id,
                                                         campaign_ids=[campaign.id])[campaign.id],
        "offers": service.offers(session, merchant_id=principal.merchant_id, campaign=campaign), "page": page,
        "members": members, "names": names, "team_status": status, "actions": ACTIONS,
        "error": (request.query_params.get("error") or "")[:200]})


@router.post(f"{BASE}/{{campaign_id}}/{{action}}")
def console_action(campaign_id: PathId, action: str, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    return common.status_action(session, base=BASE, campaign_id=campaign_id, action=action, actions=ACTIONS, nested=False,
                                change=lambda: service.change_status(session, campaign_id, actor=principal, action=action))


# ================================================================= H5


def _shop_campaign(session: Any, merchant_id: int, campaign_id: int) -> TeamBuyCampaign:
    campaign = service.get_campaign(session, campaign_id, merchant_id=merchant_id)
    if campaign.status == TeamBuyStatus.DRAFT:
        raise NotFound()
    return campaign


@router.get("/shop/{m}/team-buy/{campaign_id}")
def shop_campaign(campaign_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: OptionalShopCustomer) -> Response:
    """The campaign: team price against the normal price, start a team, or join an open one (凑团)."""
    campaign = _shop_campaign(session, merchant.id, campaign_id)
    now = clock.now()
    teams = service.open_teams(session, merchant_id=merchant.id, campaign_id=campaign.id, now=now)
    paid = service.members_of(session, [t.id for t in teams], statuses=("paid",))
    offers = service.offers(session, merchant_id=merchant.id, campaign=campaign)
    return render(request, "promotions/team_buys_shop_campaign.html", {
        "campaign": campaign, "offers": offers, "running": service.is_running(campaign, now), "tab": "home",
        "teams": [(t, service.people(session, merchant_id=merchant.id, members=paid[t.id]),
                   service.seconds_left(t, now)) for t in teams],
        "start_url": service.checkout_url(merchant.slug, sku_id=offers[0].sku_id, campaign_id=campaign.id)
        if offers else None,
        "join_url": lambda team: service.checkout_url(merchant.slug, sku_id=offers[0].sku_id,
                                                      campaign_id=campaign.id, team_id=team.id) if offers else None})


@router.get("/shop/{m}/team/{team_id}")
def shop_team(team_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
              customer: OptionalShopCustomer) -> Response:
    """A team: progress (paid / N), members, countdown, share it, or join it."""
    team = service.get_team(session, team_id, merchant_id=merchant.id)
    campaign = service.get_campaign(session, team.campaign_id, merchant_id=merchant.id)
    now = clock.now()
    paid = service.members_of(session, [team.id], statuses=("paid",))[team.id]
    mine = service.membership(session, team_id=team.id, customer_id=customer.customer_id if customer else None)
    offers = service.offers(session, merchant_id=merchant.id, campaign=campaign)
    joinable = (team.status == "forming" and team.paid_count < team.size and team.expires_at > now
                and service.is_running(campaign, now) and mine is None and bool(offers))
    return render(request, "promotions/team_buys_shop_team.html", {
        "team": team, "campaign": campaign, "offers": offers, "tab": "home", "mine": mine,
        "people": service.people(session, merchant_id=merchant.id, members=paid),
        "seconds_left": service.seconds_left(team, now), "joinable": joinable,
        "join_url": service.checkout_url(merchant.slug, sku_id=offers[0].sku_id, campaign_id=campaign.id,
                                         team_id=team.id) if offers else None,
        "labels": LABELS})


def order_paid_slot(request: Request | None, *, order: Any = None, **_kw: Any) -> Markup:
    """On a paid team-buy order's page: where its team stands, with a link to the team page."""
    if request is None or order is None:
        return Markup("")
    session = getattr(request.state, "db_session", None)
    merchant = getattr(request.state, "merchant", None)
    if session is None or merchant is None:
        return Markup("")
    member = service.member_of_order(session, merchant_id=merchant.id, order_id=order.id)
    if member is None:
        return Markup("")
    team = service.get_team(session, member.team_id, merchant_id=merchant.id) if member.team_id else None
    html = templates.env.get_template("promotions/team_buys_slot.html").render(
        request=request, merchant=merchant, member=member, team=team, labels=LABELS)
    return Markup(html)


register_slot("shop.order_paid", order_paid_slot)
