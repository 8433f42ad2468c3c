"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — console and H5 pages.

Console (/console/promotions/split-coupons): list with live figures, builder (create, edit), detail with its
pools and share tools, publish / pause / resume / end. H5: the campaign page (open a pool) and the pool page
`/shop/{m}/split/{pool_id}` (progress, members, share link, join, the coupons once split).
Also the form helpers the payment-offer and pop-up pages share.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from siyu.attribution.service import shares
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import OptionalShopCustomer, ShopForm, ShopPageCustomer
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.promotions.service import split_coupons as service
from siyu.promotions.states.split_coupons import CAMPAIGN_LABELS, POOL_LABELS

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/promotions/split-coupons"
STATUS_LABELS = {k.value: v for k, v in CAMPAIGN_LABELS.items()}
POOL_STATUS_LABELS = {k.value: v for k, v in POOL_LABELS.items()}
ACTIONS = ("publish", "pause", "resume", "end")
FLASH = {"saved": "Saved.", "publish": "Published.", "pause": "Paused.", "resume": "Running again.",
         "end": "Ended."}


# ---------------------------------------------------------------- helpers shared by the three plays' pages


def local_dt(raw: str) -> dt.datetime:
    """A datetime-local field (Asia/Shanghai) as UTC."""
    return dt.datetime.fromisoformat(raw.strip()[:19]).replace(tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def local_input(value: dt.datetime | None) -> str:
    return clock.format_local(value, "%Y-%m-%dT%H:%M") if value else ""


def parse_int(typed: dict[str, str], errors: dict[str, str], name: str, *, low: int = 0, high: int = 10**9,
              optional: bool = False) -> int | None:
    raw = (typed.get(name) or "").strip()
    if not raw and optional:
        return None
    if not raw.isdigit() or len(raw) > 16 or not low <= int(raw) <= high:
        errors[name] = _("Enter a whole number from %(low)s to %(high)s.", low=low, high=high)
        return None
    return int(raw)


def parse_yuan(typed: dict[str, str], errors: dict[str, str], name: str, *, optional: bool = False) -> int | None:
    raw = (typed.get(name) or "").strip()
    if not raw and optional:
        return None
    try:
        cents = yuan_to_cents(raw[:20])
        if cents < 0 or cents > 10**10:
            raise ValueError(raw)
        return cents
    except ValueError:
        errors[name] = _("Enter an amount in yuan, like 12.50.")
        return None


def parse_dt(typed: dict[str, str], errors: dict[str, str], name: str) -> dt.datetime | None:
    try:
        return local_dt(typed.get(name) or "")
    except ValueError:
        errors[name] = _("Enter a date and time.")
        return None


def fields_of(exc: AppError, *, known: tuple[str, ...] = (), rename: dict[str, str] | None = None) -> dict[str, str]:
    """The errors by form field (the service's names renamed to the form's); an error on no field of the form
    shows at the top."""
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not isinstance(fields, dict):
        return {"form": exc.translated()}
    out: dict[str, str] = {}
    for key, message in fields.items():
        name = (rename or {}).get(key, key)
        if known and name not in known:
            out["form"] = f"{out['form']} {message}" if "form" in out else str(message)
        else:
            out[name] = str(message)
    return out


def flash_of(request: Request) -> str | None:
    key = request.query_params.get("ok", "")
    return _(FLASH[key]) if key in FLASH else None


def console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
            status: int = 200) -> Response:
    service.require_staff(principal)
    base = {"active_menu": "promotions", "status_labels": STATUS_LABELS, "flash": flash_of(request),
            "merchant_name": merchants.get_merchant(session, principal.merchant_id).name,
            "now": clock.now(), "display_status": service.display_status}
    return render(request, f"promotions/{name}", {**base, **ctx}, status_code=status)


def template_choices(session: Any, merchant_id: int, channel: str) -> list[Any]:
    from siyu.promotions.service import coupons

    try:
        return list(coupons.list_claimable(session, merchant_id=merchant_id, channel=channel))
    except AppError:
        return []


def status_action(session: Any, principal: Principal, row_id: int, action: str, change: Any, base: str) -> Response:
    if action not in ACTIONS:
        raise NotFound()
    change(session, row_id, actor=principal, action=action)
    return RedirectResponse(f"{base}/{row_id}?ok={action}", status_code=303)


# ================================================================= console


FORM_FIELDS = ("name", "template_id", "pool_amount", "team_size", "split_mode", "floor", "fill_minutes",
               "max_opens_per_customer", "max_joins_per_customer", "starts_at", "ends_at")


def _typed_of(c: Any | None) -> dict[str, str]:
    if c is None:
        now = clock.now()
        return {"name": "", "template_id": "", "pool_amount": "", "team_size": "3", "split_mode": "equal",
                "floor": "0", "fill_minutes": "1440", "max_opens_per_customer": "1", "max_joins_per_customer": "0",
                "starts_at": local_input(now), "ends_at": local_input(now + dt.timedelta(days=7))}
    return {"name": c.name, "template_id": str(c.template_id), "pool_amount": cents_to_yuan_str(c.pool_amount_cents),
            "team_size": str(c.team_size), "split_mode": c.split_mode, "floor": cents_to_yuan_str(c.floor_cents),
            "fill_minutes": str(c.fill_minutes), "max_opens_per_customer": str(c.max_opens_per_customer),
            "max_joins_per_customer": str(c.max_joins_per_customer), "starts_at": local_input(c.starts_at),
            "ends_at": local_input(c.ends_at)}


def _parse(typed: dict[str, str]) -> service.SplitCampaignIn:
    errors: dict[str, str] = {}
    data = dict(
        name=typed["name"], template_id=parse_int(typed, errors, "template_id", low=1, high=2**53),
        pool_amount_cents=parse_yuan(typed, errors, "pool_amount"),
        team_size=parse_int(typed, errors, "team_size", low=2, high=50), split_mode=typed["split_mode"],
        floor_cents=parse_yuan(typed, errors, "floor", optional=True) or 0,
        fill_minutes=parse_int(typed, errors, "fill_minutes", low=1, high=60 * 24 * 30),
        max_opens_per_customer=parse_int(typed, errors, "max_opens_per_customer", high=1000),
        max_joins_per_customer=parse_int(typed, errors, "max_joins_per_customer", high=1000),
        starts_at=parse_dt(typed, errors, "starts_at"), ends_at=parse_dt(typed, errors, "ends_at"))
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return service.SplitCampaignIn(**data)  # type: ignore[arg-type]


@router.get(BASE)
def console_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    page = service.list_campaigns(session, actor=principal, cursor=request.query_params.get("cursor") or None,
                                  limit=50)
    figures = service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in page.items])
    return console(request, session, principal, "split_coupons_list.html", {"page": page, "figures": figures})


def _form_page(request: Request, session: Any, principal: Principal, campaign: Any | None, typed: dict[str, str],
               errors: dict[str, str], status: int = 200) -> Response:
    return console(request, session, principal, "split_coupons_form.html", {
        "campaign": campaign, "typed": typed, "errors": errors,
        "templates": template_choices(session, principal.merchant_id, "split")}, status=status)


@router.get(BASE + "/new")
def console_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    return _form_page(request, session, principal, None, _typed_of(None), {})


def _save(request: Request, session: Any, principal: Principal, form: Any, campaign: Any | None) -> Response:
    service.require_manager(principal)
    typed = {f: form_str(form, f, max_length=80) for f in FORM_FIELDS}
    try:
        data = _parse(typed)
        if campaign is None:
            campaign = service.create_campaign(session, actor=principal, data=data)
        else:
            service.update_campaign(session, campaign.id, actor=principal, data=data)
    except (ValidationFailed, AppError) as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = fields_of(exc, known=FORM_FIELDS, rename={"pool_amount_cents": "pool_amount", "floor_cents": "floor"})
        return _form_page(request, session, principal, campaign, typed, errors, status=exc.status_code)
    return RedirectResponse(f"{BASE}/{campaign.id}?ok=saved", status_code=303)


@router.post(BASE + "/new")
def console_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _save(request, session, principal, form, None)


@router.get(BASE + "/{campaign_id}")
def console_detail(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_staff(principal)
    c = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    pools = service.list_pools(session, actor=principal, campaign_id=c.id,
                               cursor=request.query_params.get("cursor") or None, limit=50)
    openers = customers.nicknames_of(session, principal.merchant_id, [p.opener_id for p in pools.items])
    slug = merchants.get_merchant(session, principal.merchant_id).slug
    return console(request, session, principal, "split_coupons_detail.html", {
        "c": c, "pools": pools, "openers": openers, "pool_labels": POOL_STATUS_LABELS,
        "figures": service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id])[c.id],
        "pool_status": service.pool_status, "shop_url": f"/shop/{slug}/split-campaigns/{c.id}",
        "template": _template_summary(session, principal.merchant_id, c.template_id)})


def _template_summary(session: Any, merchant_id: int, template_id: int) -> dict[str, Any] | None:
    from siyu.promotions.service import coupons

    try:
        return coupons.template_summary(session, merchant_id=merchant_id, template_id=template_id)
    except AppError:
        return None


@router.get(BASE + "/{campaign_id}/edit")
def console_edit(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.require_manager(principal)
    c = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _form_page(request, session, principal, c, _typed_of(c), {})


@router.post(BASE + "/{campaign_id}/edit")
def console_update(campaign_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                   form: ConsoleForm) -> Response:
    c = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    return _save(request, session, principal, form, c)


@router.post(BASE + "/{campaign_id}/{action}")
def console_action(campaign_id: PathId, action: Annotated[str, Path(max_length=10)], session: DbSession,
                   principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return status_action(session, principal, campaign_id, action, service.change_status, BASE)


# ================================================================= H5


def _pool_url(slug: str, pool_id: int) -> str:
    return f"/shop/{slug}/split/{pool_id}"


def _describe_pool(session: Any, merchant_id: int, pool_id: int) -> shares.TargetInfo:
    pool = service.get_pool(session, pool_id, merchant_id=merchant_id)
    campaign = service.get_campaign(session, pool.campaign_id, merchant_id=merchant_id)
    return shares.TargetInfo(title=campaign.name, price_cents=pool.amount_cents,
                             subtitle=_("%(n)s friends share the pool", n=pool.team_size))


shares.register_target("split_coupon", _pool_url, describe=_describe_pool)


OPEN_ERRORS = {"campaign_not_running": "This campaign is not running.",
               "split_open_limit": "You have opened as many pools as this campaign allows."}


@router.get("/shop/{m}/split-campaigns")
def shop_campaigns(request: Request, merchant: ShopMerchant, session: DbSession) -> Response:
    return render(request, "promotions/split_coupons_shop_campaigns.html", {
        "tab": "home", "campaigns": service.live_campaigns(session, merchant_id=merchant.id)})


@router.get("/shop/{m}/split-campaigns/{campaign_id}")
def shop_campaign(campaign_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: OptionalShopCustomer) -> Response:
    c = service.get_shop_campaign(session, campaign_id, merchant_id=merchant.id)
    error = request.query_params.get("error", "")
    mine = service.pools_of_customer(session, merchant_id=merchant.id, customer_id=customer.customer_id,
                                     campaign_id=c.id) if customer else []
    return render(request, "promotions/split_coupons_shop_campaign.html", {
        "tab": "home", "c": c, "mine": mine, "customer": customer, "pool_status": service.pool_status,
        "pool_labels": POOL_STATUS_LABELS, "running": service.running(c.status, c.starts_at, c.ends_at),
        "flash": _(OPEN_ERRORS[error]) if error in OPEN_ERRORS else None, "flash_kind": "error"})


@router.post("/shop/{m}/split-campaigns/{campaign_id}/open")
def shop_open(campaign_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
              form: ShopForm) -> Response:
    try:
        pool = service.open_pool(session, actor=customer, campaign_id=campaign_id)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return RedirectResponse(f"/shop/{merchant.slug}/split-campaigns/{campaign_id}?error={exc.code}",
                                status_code=303)
    return RedirectResponse(_pool_url(merchant.slug, pool.id), status_code=303)


JOIN_ERRORS = {"split_pool_full": "This pool is already full.", "split_pool_expired": "This pool has expired.",
               "split_already_joined": "You are already in this pool.",
               "split_join_limit": "You have joined as many pools as this campaign allows."}


def _coupon_labels(session: Any, merchant_id: int, template_id: int) -> str:
    summary = _template_summary(session, merchant_id, template_id)
    return str(summary.get("name", "")) if summary else ""


@router.get("/shop/{m}/split/{pool_id}")
def shop_pool(pool_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
              customer: OptionalShopCustomer) -> Response:
    pool = service.get_pool(session, pool_id, merchant_id=merchant.id)
    c = service.get_campaign(session, pool.campaign_id, merchant_id=merchant.id)
    members = service.members_of(session, pool)
    names = customers.nicknames_of(session, merchant.id, [m.customer_id for m in members])
    me = next((m for m in members if customer and m.customer_id == customer.customer_id), None)
    share = None
    status = service.pool_status(pool)
    if customer and me and status == "open":
        share = shares.share_links(shares.create_share(session, actor=customer, target_type="split_coupon",
                                                       target_id=pool.id))
    error = request.query_params.get("error", "")
    seconds_left = max(0, int((pool.expires_at - clock.now()).total_seconds())) if status == "open" else 0
    return render(request, "promotions/split_coupons_shop_pool.html", {
        "tab": "home", "pool": pool, "c": c, "members": members, "names": names, "me": me, "share": share,
        "status": status, "pool_labels": POOL_STATUS_LABELS, "customer": customer, "seconds_left": seconds_left,
        "coupon_name": _coupon_labels(session, merchant.id, c.template_id),
        "flash": _(JOIN_ERRORS[error]) if error in JOIN_ERRORS else (
            _("You joined the pool.") if request.query_params.get("ok") == "joined" else None),
        "flash_kind": "error" if error in JOIN_ERRORS else "ok"})


@router.post("/shop/{m}/split/{pool_id}/join")
def shop_join(pool_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
              form: ShopForm) -> Response:
    try:
        service.join_pool(session, actor=customer, pool_id=pool_id)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return RedirectResponse(f"{_pool_url(merchant.slug, pool_id)}?error={exc.code}", status_code=303)
    return RedirectResponse(f"{_pool_url(merchant.slug, pool_id)}?ok=joined", status_code=303)
