"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — REST routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from siyu.core.auth import Principal
from siyu.core.web import DbSession
from siyu.customers import service as customers
from siyu.customers.deps import OptionalShopCustomer, ShopCustomer
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.promotions.models.split_coupons import SplitCampaign, SplitPool
from siyu.promotions.schemas.split_coupons import OpenPoolBody, SplitCampaignBody, StatusBody
from siyu.promotions.service import split_coupons as service

router = APIRouter(tags=["promotions"])
ADMIN = "/api/v1/admin/split-coupon-campaigns"
SHOP = "/api/v1/shop/{m}"
PathId = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def campaign_read(c: SplitCampaign, figures: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": c.id, "name": c.name, "template_id": c.template_id, "pool_amount_cents": c.pool_amount_cents,
        "team_size": c.team_size, "split_mode": c.split_mode, "floor_cents": c.floor_cents,
        "fill_minutes": c.fill_minutes, "max_opens_per_customer": c.max_opens_per_customer,
        "max_joins_per_customer": c.max_joins_per_customer, "starts_at": _iso(c.starts_at), "ends_at": _iso(c.ends_at),
        "status": service.display_status(c.status, c.starts_at, c.ends_at)}
    if figures is not None:
        data["figures"] = figures
    return data


def pool_read(session: Any, pool: SplitPool, *, viewer_id: int | None = None, full: bool = False) -> dict[str, Any]:
    members = service.members_of(session, pool)
    names = customers.nicknames_of(session, pool.merchant_id, [m.customer_id for m in members])
    return {
        "id": pool.id, "campaign_id": pool.campaign_id, "amount_cents": pool.amount_cents, "team_size": pool.team_size,
        "members_count": pool.members_count, "seats_left": max(0, pool.team_size - pool.members_count),
        "status": service.pool_status(pool), "expires_at": _iso(pool.expires_at), "filled_at": _iso(pool.filled_at),
        "opener_id": pool.opener_id if full else None,
        "members": [{"seat": m.seat, "nickname": names.get(m.customer_id, ""), "part_cents": m.part_cents,
                     "is_me": m.customer_id == viewer_id,
                     **({"customer_id": m.customer_id, "coupon_id": m.coupon_id} if full or m.customer_id == viewer_id
                        else {})} for m in members],
    }


def _data(body: SplitCampaignBody) -> service.SplitCampaignIn:
    return service.SplitCampaignIn(**body.model_dump())


# ---------------------------------------------------------------- admin


@router.get(ADMIN)
def list_campaigns(session: DbSession, principal: Staff, cursor: Cursor = None, limit: Limit = None) -> dict[str, Any]:
    page = service.list_campaigns(session, actor=principal, cursor=cursor, limit=limit)
    figs = service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in page.items])
    return {"items": [campaign_read(c, figs[c.id]) for c in page.items], "next_cursor": page.next_cursor}


@router.post(ADMIN, status_code=201)
def create_campaign(body: SplitCampaignBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    row = service.create_campaign(session, actor=principal, data=_data(body))
    return campaign_read(row)


def _admin_campaign(session: Any, principal: Principal, campaign_id: int) -> SplitCampaign:
    service.require_staff(principal)
    return service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)


@router.get(ADMIN + "/{campaign_id}")
def get_campaign(campaign_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
    row = _admin_campaign(session, principal, campaign_id)
    figs = service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[row.id])
    return campaign_read(row, figs[row.id])


@router.put(ADMIN + "/{campaign_id}")
def update_campaign(campaign_id: PathId, body: SplitCampaignBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_read(service.update_campaign(session, campaign_id, actor=principal, data=_data(body)))


@router.post(ADMIN + "/{campaign_id}/status")
def change_status(campaign_id: PathId, body: StatusBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_read(service.change_status(session, campaign_id, actor=principal, action=body.action))


@router.get(ADMIN + "/{campaign_id}/pools")
def list_pools(campaign_id: PathId, session: DbSession, principal: Staff, cursor: Cursor = None,
               limit: Limit = None) -> dict[str, Any]:
    page = service.list_pools(session, actor=principal, campaign_id=campaign_id, cursor=cursor, limit=limit)
    return {"items": [pool_read(session, p, full=True) for p in page.items], "next_cursor": page.next_cursor}


# ---------------------------------------------------------------- shop


@router.get(SHOP + "/split-coupon-campaigns")
def shop_campaigns(merchant: ShopMerchant, session: DbSession) -> dict[str, Any]:
    return {"items": [campaign_read(c) for c in service.live_campaigns(session, merchant_id=merchant.id)]}


@router.post(SHOP + "/split-pools", status_code=201)
def shop_open_pool(body: OpenPoolBody, merchant: ShopMerchant, session: DbSession,
                   customer: ShopCustomer) -> dict[str, Any]:
    pool = service.open_pool(session, actor=customer, campaign_id=body.campaign_id)
    return pool_read(session, pool, viewer_id=customer.customer_id)


@router.get(SHOP + "/split-pools/{pool_id}")
def shop_pool(pool_id: PathId, merchant: ShopMerchant, session: DbSession,
              customer: OptionalShopCustomer) -> dict[str, Any]:
    pool = service.get_pool(session, pool_id, merchant_id=merchant.id)
    return pool_read(session, pool, viewer_id=customer.customer_id if customer else None)


@router.post(SHOP + "/split-pools/{pool_id}/join")
def shop_join_pool(pool_id: PathId, merchant: ShopMerchant, session: DbSession,
                   customer: ShopCustomer) -> dict[str, Any]:
    service.join_pool(session, actor=customer, pool_id=pool_id)
    pool = service.get_pool(session, pool_id, merchant_id=merchant.id)
    return pool_read(session, pool, viewer_id=customer.customer_id)
