"""attribution: shares console and H5 pages. Console: share links and QR codes, the printable store/guide QR
sheet, fission leaderboards with a customer's or a campaign's tree. H5: the share page (link, QR, poster), the
store page a store QR code opens, and "who I brought"."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from siyu.attribution.api.shares import base_url, period, qr_sheet
from siyu.attribution.service import fission, funnel, posters, shares
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import AppError, NotFound
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.customers.deps import ShopPageCustomer
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant

router = APIRouter(include_in_schema=False)

PathId = Annotated[int, Path(gt=0, le=2**53)]
QText = Annotated[str, Query(max_length=60)]


def _console(request: Request, session: Any, principal: Principal, template: str, **context: Any) -> Response:
    context.setdefault("merchant_name", merchants.get_merchant(session, principal.merchant_id).name)
    return render(request, template, {"active_menu": "attribution", "channel_labels": shares.CHANNEL_LABELS,
                                      "target_labels": shares.TARGET_LABELS, **context},
                  status_code=context.pop("status_code", 200))


def _target_names(session: Any, merchant_id: int, items: list[Any]) -> dict[int, str]:
    out = {}
    for share in items:
        try:
            out[share.id] = shares.describe_target(session, merchant_id=merchant_id, target_type=share.target_type,
                                                   target_id=share.target_id).title
        except AppError:
            out[share.id] = f"{share.target_type} #{share.target_id}"
    return out


def _sharer_names(session: Any, merchant_id: int, items: list[Any]) -> dict[int, str]:
    staff = merchants.staff_names(session, merchant_id, [s.sharer_staff_id for s in items if s.sharer_staff_id])
    people = customers.nicknames_of(session, merchant_id, [s.sharer_customer_id for s in items if s.sharer_customer_id])
    return {s.id: staff.get(s.sharer_staff_id or 0) or people.get(s.sharer_customer_id or 0) or "" for s in items}


# ---------------------------------------------------------------- console


@router.get("/console/attribution")
def share_list(request: Request, session: DbSession, principal: ConsoleStaff, target_type: QText = "",
               channel: QText = "", sharer: QText = "", cursor: Annotated[str | None, Query(max_length=200)] = None,
               typed_target: QText = "", error: QText = "") -> Response:
    filters = {"target_type": target_type if target_type in shares.TARGET_TYPES else None,
               "channel": channel if channel in shares.CHANNELS else None,
               "sharer": sharer if sharer in ("staff", "customer", "none") else None}
    page = shares.list_shares(session, actor=principal, cursor=cursor, limit=50, **filters)
    stats = fission.share_stats(session, merchant_id=principal.merchant_id, share_ids=[s.id for s in page.items])
    raw = {k: v for k, v in {"target_type": target_type, "channel": channel, "sharer": sharer}.items() if v}
    products = catalog.list_products(session, actor=principal, status="on_sale", limit=100).items
    more_url = f"/console/attribution?{urlencode({**raw, 'cursor': page.next_cursor})}" if page.next_cursor else None
    return _console(request, session, principal, "attribution/shares.html", tab="shares", shares=page.items,
                    stats=stats, targets=_target_names(session, principal.merchant_id, page.items),
                    sharers=_sharer_names(session, principal.merchant_id, page.items), raw=raw, more_url=more_url,
                    channels=shares.CHANNELS, target_types=shares.registered_targets(), base=base_url(request),
                    products=products,
                    flash=_(error) if error else None, flash_kind="error" if error else "ok")


@router.post("/console/attribution/shares")
def share_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    target_type = form_str(form, "target_type", max_length=20)
    raw_id = form_str(form, "target_id", max_length=20) or "0"
    channel = form_str(form, "channel", max_length=20) or None
    campaign = form_str(form, "campaign", max_length=60) or None
    try:
        target_id = int(raw_id)
        share = shares.create_share(session, actor=principal, target_type=target_type, target_id=target_id,
                                    channel=channel, campaign=campaign)
    except (ValueError, AppError):
        message = "The target was not found; check its type and id."
        return RedirectResponse(f"/console/attribution?{urlencode({'error': message})}", status_code=303)
    return RedirectResponse(f"/console/attribution/shares/{share.id}", status_code=303)


@router.get("/console/attribution/shares/{share_id}")
def share_detail(share_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    share = shares.get_share_by_id(session, share_id, actor=principal)
    stats = fission.share_stats(session, merchant_id=principal.merchant_id, share_ids=[share.id])[share.id]
    link = f"{base_url(request)}/s/{share.code}"
    visits = shares.touches_of_share(session, merchant_id=principal.merchant_id, share_id=share.id)
    visitors = customers.nicknames_of(session, principal.merchant_id, [t.customer_id for t in visits if t.customer_id])
    return _console(request, session, principal, "attribution/share_detail.html", tab="shares", share=share,
                    stats=stats, link=link, qr=Markup(posters.qr_svg_inline(link, scale=5)), visits=visits,
                    visitors=visitors, campaign=shares.campaign_of(share),
                    target=_target_names(session, principal.merchant_id, [share])[share.id],
                    sharer=_sharer_names(session, principal.merchant_id, [share])[share.id])


@router.get("/console/attribution/qr-sheet")
def qr_sheet_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    sheet = qr_sheet(session, principal)
    base = base_url(request)
    for card in sheet["stores"] + sheet["guides"]:
        card["link"] = f"{base}/s/{card['share'].code}"
        card["qr"] = Markup(posters.qr_svg_inline(card["link"], scale=5))
    return _console(request, session, principal, "attribution/qr_sheet.html", tab="qr", sheet=sheet)


@router.get("/console/attribution/fission")
def fission_page(request: Request, session: DbSession, principal: ConsoleStaff, start: QText = "", end: QText = "",
                 customer_id: Annotated[int | None, Query(gt=0, le=2**53)] = None, campaign: QText = "") -> Response:
    def day(value: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            return None

    try:
        lo, hi = period(day(start), day(end))
    except AppError:
        lo, hi = period(None, None)
    first, last = lo.astimezone(clock.SHANGHAI).date(), (hi - dt.timedelta(seconds=1)).astimezone(clock.SHANGHAI).date()
    tree, tree_title = None, ""
    if customer_id is not None:
        try:
            customer = customers.get_customer(session, customer_id, actor=principal)
            tree = fission.customer_tree(session, merchant_id=principal.merchant_id, customer_id=customer.id)
            tree_title = customer.nickname
        except NotFound:
            tree = None
    elif campaign:
        tree = fission.campaign_tree(session, merchant_id=principal.merchant_id, campaign=campaign)
        tree_title = campaign
    return _console(
        request, session, principal, "attribution/fission.html", tab="fission", start=first, end=last,
        staff_rows=fission.sharer_stats(session, merchant_id=principal.merchant_id, kind="staff", start=lo, end=hi),
        customer_rows=fission.sharer_stats(session, merchant_id=principal.merchant_id, kind="customer", start=lo,
                                           end=hi),
        k=fission.k_factor(session, merchant_id=principal.merchant_id, start=lo, end=hi),
        funnel_counts=funnel.counts_by_kind(session, merchant_id=principal.merchant_id, start=first, end=last),
        campaigns=fission.campaigns(session, merchant_id=principal.merchant_id), tree=tree, tree_title=tree_title,
        campaign=campaign, customer_id=customer_id)


# ---------------------------------------------------------------- H5


@router.get("/shop/{m}/share")
def shop_share(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
               target_type: QText = "", target_id: Annotated[int, Query(ge=0, le=2**53)] = 0) -> Response:
    """The share sheet of a product, store or page: the customer's own link, QR code and poster."""
    share = shares.create_share(session, actor=customer, target_type=target_type, target_id=target_id)
    info = shares.describe_target(session, merchant_id=merchant.id, target_type=share.target_type,
                                  target_id=share.target_id)
    link = f"{base_url(request)}/s/{share.code}"
    back = shares.target_url(share.target_type, share.target_id, slug=merchant.slug)
    return render(request, "attribution/shop_share.html", {
        "merchant": merchant, "tab": "me", "share": share, "info": info, "link": link, "back": back,
        "moments_link": f"{link}?ch=moments", "qr": Markup(posters.qr_svg_inline(link, scale=5))})


@router.get("/shop/{m}/store/{store_id}")
def shop_store(store_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession) -> Response:
    """A store's page (where its counter QR code leads): name, address, hours, and a way into the shop."""
    store = merchants.get_store(session, store_id, actor=system_principal(merchant.id))
    if not store.active:
        raise NotFound()
    return render(request, "attribution/shop_store.html", {"merchant": merchant, "tab": "home", "store": store})


@router.get("/shop/{m}/me/brought")
def shop_brought(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    assert customer.customer_id is not None
    rows = fission.brought_by(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    my_shares = shares.list_shares(session, actor=customer, limit=100).items
    stats = fission.share_stats(session, merchant_id=merchant.id, share_ids=[s.id for s in my_shares])
    visits = sum(s.visits for s in stats.values())
    return render(request, "attribution/shop_brought.html", {
        "merchant": merchant, "tab": "me", "rows": rows, "share_count": len(my_shares), "visits": visits,
        "second_level": sum(r["brought"] for r in rows)})
