"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — REST routes.

Staff: /api/v1/admin/ladders (campaigns, figures, entries and refunds). Customers: /api/v1/shop/{m}/ladders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from siyu.core.errors import NotFound
from siyu.core.web import DbSession
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.promotions.models.ladders import LadderCampaign
from siyu.promotions.schemas.bargains import CampaignAction
from siyu.promotions.schemas.ladders import LadderBody
from siyu.promotions.service import ladders as service
from siyu.promotions.service.common import require_manager
from siyu.promotions.states.ladders import LadderStatus

router = APIRouter(tags=["promotions"])
ADMIN = "/api/v1/admin/ladders"
SHOP = "/api/v1/shop/{m}/ladders"
PathId = Annotated[int, Path(gt=0, le=2**53)]


def campaign_out(campaign: LadderCampaign, figures: dict[str, int] | None = None) -> dict[str, Any]:
    return {**service.ladder_view(campaign), "product_id": campaign.product_id, "stored_status": campaign.status,
            "allow_coupons": campaign.allow_coupons, "allow_member_discount": campaign.allow_member_discount,
            "settled_at": campaign.settled_at, "figures": figures}


def _data(body: LadderBody) -> service.CampaignIn:
    return service.CampaignIn(title=body.title, sku_id=body.sku_id,
                              tiers=[(t.min_participants, t.price_cents) for t in body.tiers],
                              starts_at=body.starts_at, ends_at=body.ends_at,
                              per_customer_limit=body.per_customer_limit, allow_coupons=body.allow_coupons,
                              allow_member_discount=body.allow_member_discount)


@router.get(ADMIN)
def list_campaigns(session: DbSession, principal: Staff) -> dict[str, Any]:
    require_manager(principal)
    rows = service.list_campaigns(session, merchant_id=principal.merchant_id)
    figures = service.campaign_figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in rows])
    return {"items": [campaign_out(c, figures[c.id]) for c in rows]}


@router.post(ADMIN, status_code=201)
def create_campaign(body: LadderBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_out(service.create_campaign(session, actor=principal, data=_data(body)))


@router.get(f"{ADMIN}/{{campaign_id}}")
def get_campaign(campaign_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
    require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    figures = service.campaign_figures(session, merchant_id=principal.merchant_id, campaign_ids=[campaign.id])
    entries = service.entries_of(session, merchant_id=principal.merchant_id, campaign_id=campaign.id)
    return {**campaign_out(campaign, figures[campaign.id]), "entries": [
        {"id": e.id, "order_id": e.order_id, "order_no": e.order_no, "customer_id": e.customer_id,
         "quantity": e.quantity, "unit_price_cents": e.unit_price_cents, "status": e.status,
         "refund_id": e.refund_id, "refund_cents": e.refund_cents} for e in entries]}


@router.put(f"{ADMIN}/{{campaign_id}}")
def update_campaign(campaign_id: PathId, body: LadderBody, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_out(service.update_campaign(session, campaign_id, actor=principal, data=_data(body)))


@router.post(f"{ADMIN}/{{campaign_id}}/status")
def change_status(campaign_id: PathId, body: CampaignAction, session: DbSession, principal: Staff) -> dict[str, Any]:
    return campaign_out(service.change_campaign_status(session, campaign_id, actor=principal, action=body.action))


@router.get(SHOP)
def shop_ladders(merchant: ShopMerchant, session: DbSession) -> dict[str, Any]:
    return {"items": [service.ladder_view(c) for c in service.running_campaigns(session, merchant_id=merchant.id)]}


@router.get(f"{SHOP}/{{campaign_id}}")
def shop_ladder(campaign_id: PathId, merchant: ShopMerchant, session: DbSession) -> dict[str, Any]:
    campaign = service.get_campaign(session, campaign_id, merchant_id=merchant.id)
    if campaign.status == LadderStatus.DRAFT:
        raise NotFound(code="ladder_not_found")
    return service.ladder_view(campaign)
