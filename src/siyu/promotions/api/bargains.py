"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — REST routes.

Staff: /api/v1/admin/bargains (campaigns, their figures and bargains). Customers:
/api/v1/shop/{m}/bargains (start, read, assist). Parse, call the service, serialise."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from siyu.core.web import DbSession
from siyu.customers.deps import OptionalShopCustomer, ShopCustomer, visitor_id_of
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.promotions.models.bargains import BargainCampaign
from siyu.promotions.schemas.bargains import BargainCampaignBody, CampaignAction, StartBargain
from siyu.promotions.service import bargains as service

router = APIRouter(tags=["promotions"])
ADMIN = "/api/v1/admin/bargains"
SHOP = "/api/v1/shop/{m}/bargains"
PathId = Annotated[int, Path(gt=0, le=2**53)]
DEVICE_HEADER = "x-device-id"
DEVICE_COOKIE = "siyu_did"


def device_id_of(request: Request) -> str | None:
    value = request.headers.get(DEVICE_HEADER) or request.cookies.get(DEVICE_COOKIE)
    return value.strip()[:64] or None if value else None


def campaign_out(campaign: BargainCampaign, figures: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": campaign.id, "title": campaign.title, "sku_id": campaign.sku_id, "product_id": campaign.product_id,
        "item_title": campaign.item_title, "image_url": campaign.image_url or None,
        "start_price_cents": campaign.start_price_cents, "floor_price_cents": campaign.floor_price_cents,
        "expected_assists": campaign.expected_assists, "time_limit_minutes": campaign.time_limit_minutes,
        "max_bargains_per_customer": campaign.max_bargains_per_customer,
        "new_customer_weight_bps": campaign.new_customer_weight_bps,
        "allow_buy_at_current": campaign.allow_buy_at_current, "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at, "status": campaign.status, "display_status": service.display_status(campaign),
        "figures": figures,
    }


def _data(body: BargainCampaignBody) -> service.CampaignIn:
    return service.CampaignIn(**body.model_dump())


@router.get(ADMIN)
def list_campaigns(session: DbSession, principal: Staff) -> dict[str, Any]:
    service.require_manager(principal)
    rows = service.list_campaigns(session, merchant_id=principal.merchant_id)
    figures = service.campaign_figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in rows])
    return {"items": [campaign_out(c, figures[c.id]) for c in rows]}


@router.post(ADMIN, status_code=201)
def create_campaign(body: BargainCampaignBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_out(service.create_campaign(session, actor=principal, data=_data(body)))


@router.get(f"{ADMIN}/{{campaign_id}}")
def get_campaign(campaign_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    figures = service.campaign_figures(session, merchant_id=principal.merchant_id, campaign_ids=[campaign.id])
    rows = service.bargains_of_campaign(session, merchant_id=principal.merchant_id, campaign_id=campaign.id)
    assists = service.assists_of(session, [b.id for b in rows])
    return {**campaign_out(campaign, figures[campaign.id]), "bargains": [
        {"id": b.id, "customer_id": b.customer_id, "status": b.status, "current_price_cents": b.current_price_cents,
         "assists_count": b.assists_count, "expires_at": b.expires_at, "order_id": b.order_id,
         "assists": [{"helper_customer_id": a.helper_customer_id, "cut_cents": a.cut_cents, "seq": a.seq,
                      "new_customer": a.new_customer} for a in assists[b.id]]} for b in rows]}


@router.put(f"{ADMIN}/{{campaign_id}}")
def update_campaign(campaign_id: PathId, body: BargainCampaignBody, session: DbSession,
                    principal: Staff) -> dict[str, Any]:
    return campaign_out(service.update_campaign(session, campaign_id, actor=principal, data=_data(body)))


@router.post(f"{ADMIN}/{{campaign_id}}/status")
def change_status(campaign_id: PathId, body: CampaignAction, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_out(service.change_campaign_status(session, campaign_id, actor=principal, action=body.action))


@router.get("/api/v1/shop/{m}/bargain-campaigns")
def shop_campaigns(merchant: ShopMerchant, session: DbSession) -> dict[str, Any]:
    return {"items": [campaign_out(c) for c in service.running_campaigns(session, merchant_id=merchant.id)]}


@router.post(SHOP, status_code=201)
def start_bargain(body: StartBargain, merchant: ShopMerchant, session: DbSession,
                  customer: ShopCustomer) -> dict[str, Any]:
    bargain = service.start_bargain(session, actor=customer, campaign_id=body.campaign_id)
    return service.bargain_view(session, bargain, viewer_id=customer.customer_id)


@router.get(f"{SHOP}/{{bargain_id}}")
def read_bargain(bargain_id: PathId, merchant: ShopMerchant, session: DbSession,
                 customer: OptionalShopCustomer) -> dict[str, Any]:
    bargain = service.get_bargain(session, bargain_id, merchant_id=merchant.id)
    return service.bargain_view(session, bargain, viewer_id=customer.customer_id if customer else None)


@router.post(f"{SHOP}/{{bargain_id}}/assists", status_code=201)
def assist(bargain_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
           customer: ShopCustomer) -> dict[str, Any]:
    row = service.assist(session, actor=customer, bargain_id=bargain_id, visitor_id=visitor_id_of(request),
                         device_id=device_id_of(request))
    bargain = service.get_bargain(session, bargain_id, merchant_id=merchant.id)
    return {"cut_cents": row.cut_cents, "seq": row.seq, "price_after_cents": row.price_after_cents,
            "bargain": service.bargain_view(session, bargain, viewer_id=customer.customer_id)}
