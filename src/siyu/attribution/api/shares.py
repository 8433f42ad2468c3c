"""attribution: shares REST routes (API.md, Sharing and attribution): creating shares (customers and staff),
opening them (`/s/{code}`: touch, visitor cookie, redirect), their QR codes and posters, the shop's funnel
beacon, and the fission figures for the console."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from siyu.attribution.models.shares import Share
from siyu.attribution.service import fission, funnel, posters, shares
from siyu.config import get_settings
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import NotFound, Unauthorized, field_error
from siyu.core.templating import render
from siyu.core.web import DbSession
from siyu.customers import service as customers
from siyu.customers import signin
from siyu.customers.deps import VISITOR_COOKIE, OptionalShopCustomer, ShopCustomer, cookie_name, visitor_id_of
from siyu.merchants import service as merchants
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["attribution"])
# /s/{code} and its images are browser routes (a redirect, a friendly HTML 404, images): outside the JSON API's
# schema (include_in_schema=False on each).

VISITOR_MAX_AGE = 2 * 365 * 86400
TargetType = Literal[shares.TARGET_TYPES]  # type: ignore[valid-type]
Channel = Literal[shares.CHANNELS]  # type: ignore[valid-type]
Code = Annotated[str, Path(min_length=1, max_length=40)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
OptId = Annotated[int | None, Query(gt=0, le=2**53)]


class ShareCreate(BaseModel):
    target_type: TargetType
    target_id: Annotated[int, Field(ge=0, le=2**53)] = 0
    channel: Channel | None = None
    campaign: Annotated[str | None, Field(max_length=60)] = None


class ShareLinks(BaseModel):
    id: int
    code: str
    url: str
    qr_png_url: str
    qr_svg_url: str
    poster_png_url: str
    target_type: str
    target_id: int
    channel: str
    campaign: str | None
    sharer_staff_id: int | None
    sharer_customer_id: int | None
    created_at: dt.datetime


class FunnelBeacon(BaseModel):
    kind: Literal["exposure", "view"]
    product_ids: Annotated[list[Annotated[int, Field(gt=0, le=2**53)]], Field(max_length=funnel.MAX_BEACON_ITEMS)] = []


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def share_read(share: Share, request: Request) -> ShareLinks:
    return ShareLinks(id=share.id, **shares.share_links(share, base_url=base_url(request)),
                      target_type=share.target_type, target_id=share.target_id, channel=share.channel,
                      campaign=share.campaign, sharer_staff_id=share.sharer_staff_id,
                      sharer_customer_id=share.sharer_customer_id, created_at=share.created_at)


def ensure_visitor(request: Request, response: Response) -> str:
    """The browser's visitor id: the cookie's, else a new one set on the response."""
    current = shares.valid_visitor_id(visitor_id_of(request))
    if current:
        return current
    visitor = shares.new_visitor_id()
    response.set_cookie(VISITOR_COOKIE, visitor, max_age=VISITOR_MAX_AGE, httponly=True, samesite="lax", path="/",
                        secure=get_settings().secure_cookies)
    return visitor


# ---------------------------------------------------------------- creating shares


@router.post("/api/v1/shop/{m}/shares", response_model=ShareLinks)
def create_customer_share(body: ShareCreate, request: Request, merchant: ShopMerchant, session: DbSession,
                          customer: ShopCustomer) -> ShareLinks:
    share = shares.create_share(session, actor=customer, target_type=body.target_type, target_id=body.target_id,
                                channel=body.channel, campaign=body.campaign)
    return share_read(share, request)


@router.get("/api/v1/shop/{m}/shares")
def list_customer_shares(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopCustomer,
                         cursor: Cursor = None, limit: Limit = None) -> dict[str, Any]:
    return _share_page(session, request, customer, cursor=cursor, limit=limit)


@router.get("/api/v1/shop/{m}/me/brought")
def customer_brought(merchant: ShopMerchant, session: DbSession, customer: ShopCustomer) -> dict[str, Any]:
    """The customers I brought (my shares were their first shared touch)."""
    assert customer.customer_id is not None
    items = fission.brought_by(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    return {"items": items, "total": len(items)}


@router.post("/api/v1/admin/shares", response_model=ShareLinks)
def create_staff_share(body: ShareCreate, request: Request, session: DbSession, principal: Staff) -> ShareLinks:
    share = shares.create_share(session, actor=principal, target_type=body.target_type, target_id=body.target_id,
                                channel=body.channel, campaign=body.campaign)
    return share_read(share, request)


def _share_page(session: DbSession, request: Request, actor: Principal, **filters: Any) -> dict[str, Any]:
    page = shares.list_shares(session, actor=actor, **filters)
    stats = fission.share_stats(session, merchant_id=actor.merchant_id, share_ids=[s.id for s in page.items])
    items = []
    for share in page.items:
        figures = stats[share.id].as_dict()
        figures.pop("kind"), figures.pop("id"), figures.pop("name"), figures.pop("shares")
        items.append({**share_read(share, request).model_dump(), "stats": figures})
    return {"items": items, "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/shares")
def list_staff_shares(request: Request, session: DbSession, principal: Staff, target_type: TargetType | None = None,
                      channel: Channel | None = None, sharer: Literal["staff", "customer", "none"] | None = None,
                      cursor: Cursor = None, limit: Limit = None) -> dict[str, Any]:
    return _share_page(session, request, principal, target_type=target_type, channel=channel, sharer=sharer,
                       cursor=cursor, limit=limit)


@router.get("/api/v1/admin/attribution/qr-codes")
def qr_codes(request: Request, session: DbSession, principal: Staff) -> dict[str, Any]:
    """The counter QR codes (码的露出): one per store and one per guide in the caller's scope."""
    sheet = qr_sheet(session, principal)
    return {"stores": [{"store_id": s["id"], "name": s["name"], **share_read(s["share"], request).model_dump()}
                       for s in sheet["stores"]],
            "guides": [{"staff_id": g["id"], "name": g["name"], "store_name": g["store_name"],
                        **share_read(g["share"], request).model_dump()} for g in sheet["guides"]]}


def qr_sheet(session: Any, actor: Principal) -> dict[str, list[dict[str, Any]]]:
    """Stores and guides of the actor's scope, each with its QR share (made on first use)."""
    from siyu.core.auth import Role

    stores = merchants.list_stores(session, actor=actor, active_only=True)
    store_names = {s.id: s.name for s in stores}
    guides = [g for g in merchants.list_staff(session, actor=actor, role=Role.GUIDE.value, active=True)]
    return {
        "stores": [{"id": s.id, "name": s.name, "address": s.address,
                    "share": shares.store_qr_share(session, merchant_id=actor.merchant_id, store_id=s.id)}
                   for s in stores],
        "guides": [{"id": g.id, "name": g.name, "store_name": store_names.get(g.store_id or 0, ""),
                    "share": shares.guide_qr_share(session, merchant_id=actor.merchant_id, staff_id=g.id)}
                   for g in guides],
    }


# ---------------------------------------------------------------- fission figures


def period(start: dt.date | None, end: dt.date | None, *, default_days: int = 30) -> tuple[dt.datetime, dt.datetime]:
    """Shanghai days start..end (inclusive) as UTC bounds; the last `default_days` days when not given."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not 2000 <= value.year <= 2100:
            raise field_error(name, "Choose a date between 2000 and 2100.")
    today = clock.today_local()
    end = end or today
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        start, end = end, start
    return clock.local_day_bounds(start)[0], clock.local_day_bounds(end)[1]


@router.get("/api/v1/admin/attribution/leaderboard")
def leaderboard(session: DbSession, principal: Staff, sharer: Literal["staff", "customer"] = "staff",
                start: dt.date | None = None, end: dt.date | None = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    """Sharers by new customers brought (then visits, GMV) in the period (default: the last 30 days)."""
    lo, hi = period(start, end)
    rows = fission.sharer_stats(session, merchant_id=principal.merchant_id, kind=sharer, start=lo, end=hi,
                                limit=limit)
    return {"sharer": sharer, "start": lo, "end": hi, "items": [r.as_dict() for r in rows]}


@router.get("/api/v1/admin/attribution/fission-tree")
def fission_tree(session: DbSession, principal: Staff, customer_id: OptId = None,
                 campaign: Annotated[str | None, Query(max_length=60)] = None) -> dict[str, Any]:
    """The fission tree of a customer (everyone they brought, level by level) or of a campaign."""
    if customer_id is not None:
        customers.get_customer(session, customer_id, actor=principal)
        tree = fission.customer_tree(session, merchant_id=principal.merchant_id, customer_id=customer_id)
    elif campaign:
        tree = fission.campaign_tree(session, merchant_id=principal.merchant_id, campaign=campaign)
    else:
        raise field_error("customer_id", "Give a customer or a campaign.")
    return tree.as_dict()


@router.get("/api/v1/admin/attribution/campaigns")
def campaign_list(session: DbSession, principal: Staff) -> dict[str, Any]:
    return {"items": [{"campaign": c, "new_customers": n}
                      for c, n in fission.campaigns(session, merchant_id=principal.merchant_id)]}


@router.get("/api/v1/admin/attribution/k-factor")
def k_factor(session: DbSession, principal: Staff, start: dt.date | None = None,
             end: dt.date | None = None) -> dict[str, Any]:
    lo, hi = period(start, end)
    return fission.k_factor(session, merchant_id=principal.merchant_id, start=lo, end=hi)


@router.get("/api/v1/admin/attribution/funnel")
def funnel_counts(session: DbSession, principal: Staff, start: dt.date | None = None,
                  end: dt.date | None = None) -> dict[str, Any]:
    """Funnel rows per kind for the Shanghai days start..end (default: the last 30 days)."""
    lo, hi = period(start, end)
    first, last = lo.astimezone(clock.SHANGHAI).date(), (hi - dt.timedelta(seconds=1)).astimezone(clock.SHANGHAI).date()
    return {"start": first, "end": last,
            "counts": funnel.counts_by_kind(session, merchant_id=principal.merchant_id, start=first, end=last)}


# ---------------------------------------------------------------- the shop's funnel beacon


@router.post("/api/v1/shop/{m}/funnel-events", status_code=202)
def funnel_beacon(body: FunnelBeacon, request: Request, response: Response, merchant: ShopMerchant,
                  session: DbSession, customer: OptionalShopCustomer) -> dict[str, int]:
    """A shop page reports products shown (exposure) or opened (view); anonymous visitors get the visitor cookie."""
    visitor = ensure_visitor(request, response)
    recorded = funnel.record_beacon(session, merchant_id=merchant.id, kind=body.kind, product_ids=body.product_ids,
                                    customer_id=customer.customer_id if customer else None, visitor_id=visitor)
    return {"recorded": recorded}


# ---------------------------------------------------------------- /s/{code}


def _missing(request: Request) -> Response:
    return render(request, "attribution/share_missing.html", {}, status_code=404)


@router.get("/s/{code}", include_in_schema=False)
def open_share(code: Code, request: Request, session: DbSession,
               ch: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """Record a touch, set the visitor cookie, and send the visitor to the target's H5 page."""
    share = shares.share_by_code(session, code=code)
    if share is None:
        return _missing(request)
    placeholder = Response()
    visitor = ensure_visitor(request, placeholder)

    def signed_in_customer(opened: Share, slug: str) -> int | None:
        raw = request.cookies.get(cookie_name(slug))
        if not raw:
            return None
        try:
            return signin.resolve_customer_token(session, raw, merchant_id=opened.merchant_id).customer_id
        except Unauthorized:
            return None

    _touch, path = shares.open_share(session, share=share, channel=ch, visitor_id=visitor,
                                     customer_id_for=signed_in_customer)
    response = RedirectResponse(path, status_code=303)
    for key, value in placeholder.headers.items():
        if key == "set-cookie":
            response.headers.append(key, value)
    return response


def _public_share(session: Any, code: str) -> Share:
    return shares.get_share(session, code)


CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/s/{code}/qr.png", include_in_schema=False)
def share_qr_png(code: Code, request: Request, session: DbSession,
                 scale: Annotated[int, Query(ge=1, le=20)] = 8) -> Response:
    share = _public_share(session, code)
    return Response(posters.qr_png(f"{base_url(request)}/s/{share.code}", scale=scale), media_type="image/png",
                    headers=CACHE)


@router.get("/s/{code}/qr.svg", include_in_schema=False)
def share_qr_svg(code: Code, request: Request, session: DbSession,
                 scale: Annotated[int, Query(ge=1, le=20)] = 8) -> Response:
    share = _public_share(session, code)
    return Response(posters.qr_svg(f"{base_url(request)}/s/{share.code}", scale=scale), media_type="image/svg+xml",
                    headers=CACHE)


@router.get("/s/{code}/poster.png", include_in_schema=False)
def share_poster(code: Code, request: Request, session: DbSession) -> Response:
    """The share poster: the target's image, title and price, the sharer's name and the QR code."""
    share = _public_share(session, code)
    return Response(poster_bytes(session, share, base=base_url(request)), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=600"})


def poster_bytes(session: Any, share: Share, *, base: str) -> bytes:
    merchant = merchants.get_merchant(session, share.merchant_id)
    try:
        info = shares.describe_target(session, merchant_id=share.merchant_id, target_type=share.target_type,
                                      target_id=share.target_id)
    except NotFound:
        info = shares.TargetInfo(title=merchant.name)
    if share.sharer_staff_id:
        sharer = merchants.staff_names(session, share.merchant_id, [share.sharer_staff_id]).get(share.sharer_staff_id, "")
    elif share.sharer_customer_id:
        sharer = customers.nicknames_of(session, share.merchant_id, [share.sharer_customer_id]).get(
            share.sharer_customer_id, "")
    else:
        sharer = ""
    return posters.poster_png(title=info.title, subtitle=info.subtitle, price_cents=info.price_cents,
                              image_url=info.image_url, sharer_name=sharer, link=f"{base}/s/{share.code}",
                              shop_name=merchant.name)
