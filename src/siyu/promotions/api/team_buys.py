"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — REST routes.

Staff: /api/v1/admin/team-buys (CRUD, actions schedule|unschedule|pause|resume|end, figures, teams).
Shop: /api/v1/shop/{m}/team-buys/{id} (the campaign with its open teams) and /api/v1/shop/{m}/teams/{id}.
Joining is a checkout with `promotion: {kind: "team_buy", campaign_id, team_id?}` (orders' routes).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from siyu.core import clock
from siyu.core.web import DbSession
from siyu.customers.deps import OptionalShopCustomer
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.promotions.models.team_buys import Team, TeamBuyCampaign, TeamMember
from siyu.promotions.schemas.team_buys import Id, TeamBuyAction, TeamBuyIn
from siyu.promotions.service import team_buys as service
from siyu.promotions.states.team_buys import TeamBuyStatus, TeamStatus

router = APIRouter(tags=["promotions"])

ADMIN = "/api/v1/admin/team-buys"
SHOP = "/api/v1/shop/{m}"
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
CampaignStatusName = Literal[tuple(s.value for s in TeamBuyStatus)]  # type: ignore[valid-type]
TeamStatusName = Literal[tuple(s.value for s in TeamStatus)]  # type: ignore[valid-type]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def campaign_read(session: Any, campaign: TeamBuyCampaign, *, figures: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": campaign.id, "title": campaign.title, "description": campaign.description,
        "product_id": campaign.product_id, "status": campaign.status,
        "effective_status": service.status_of(campaign), "team_size": campaign.team_size,
        "time_limit_minutes": campaign.time_limit_minutes, "per_customer_limit": campaign.per_customer_limit,
        "starts_at": _iso(campaign.starts_at), "ends_at": _iso(campaign.ends_at), "on_full": campaign.on_full,
        "allow_coupons": campaign.allow_coupons, "allow_member_discount": campaign.allow_member_discount,
        "lucky_draw": campaign.lucky_draw, "lucky_winners": campaign.lucky_winners,
        "skus": [{"sku_id": s.sku_id, "team_price_cents": s.team_price_cents}
                 for s in service.campaign_skus(session, campaign.id)],
    }
    if figures is not None:
        data["figures"] = figures
    return data


def team_read(team: Team, *, members: list[Any] | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": team.id, "campaign_id": team.campaign_id, "status": team.status, "size": team.size,
        "paid_count": team.paid_count, "seats_left": max(0, team.size - team.paid_count),
        "opened_at": _iso(team.opened_at), "expires_at": _iso(team.expires_at),
        "seconds_left": service.seconds_left(team, now), "completed_at": _iso(team.completed_at),
        "failed_at": _iso(team.failed_at),
    }
    if members is not None:
        data["members"] = members
    return data


def member_read(member: TeamMember) -> dict[str, Any]:
    return {"id": member.id, "customer_id": member.customer_id, "order_id": member.order_id,
            "order_no": member.order_no, "status": member.status, "is_leader": member.is_leader, "won": member.won,
            "amount_cents": member.amount_cents, "refund_reason": member.refund_reason,
            "paid_at": _iso(member.paid_at), "refunded_at": _iso(member.refunded_at)}


def person_read(p: service.PersonView) -> dict[str, Any]:
    return {"nickname": p.nickname, "avatar_url": p.avatar_url, "is_leader": p.is_leader, "won": p.won,
            "paid_at": _iso(p.paid_at)}


# ---------------------------------------------------------------- staff


@router.get(ADMIN)
def admin_list(session: DbSession, principal: Staff, status: CampaignStatusName | None = None,
               cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.list_campaigns(session, actor=principal, status=status, cursor=cursor, limit=limit)
    figures = service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[c.id for c in page.items])
    return {"items": [campaign_read(session, c, figures=figures[c.id]) for c in page.items],
            "next_cursor": page.next_cursor}


@router.post(ADMIN, status_code=201)
def admin_create(body: TeamBuyIn, session: DbSession, principal: Staff) -> dict:
    campaign = service.create_campaign(session, actor=principal, data=body)
    return campaign_read(session, campaign)


@router.get(f"{ADMIN}/{{campaign_id}}")
def admin_get(campaign_id: Id, session: DbSession, principal: Staff) -> dict:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    figures = service.figures(session, merchant_id=principal.merchant_id, campaign_ids=[campaign.id])
    return campaign_read(session, campaign, figures=figures[campaign.id])


@router.patch(f"{ADMIN}/{{campaign_id}}")
def admin_update(campaign_id: Id, body: TeamBuyIn, session: DbSession, principal: Staff) -> dict:
    campaign = service.update_campaign(session, campaign_id, actor=principal, data=body)
    return campaign_read(session, campaign)


@router.post(f"{ADMIN}/{{campaign_id}}/{{action}}")
def admin_action(campaign_id: Id, action: TeamBuyAction, session: DbSession, principal: Staff) -> dict:
    campaign = service.change_status(session, campaign_id, actor=principal, action=action)
    return campaign_read(session, campaign)


@router.get(f"{ADMIN}/{{campaign_id}}/teams")
def admin_teams(campaign_id: Id, session: DbSession, principal: Staff, status: TeamStatusName | None = None,
                cursor: Cursor = None, limit: Limit = None) -> dict:
    service.require_manager(principal)
    campaign = service.get_campaign(session, campaign_id, merchant_id=principal.merchant_id)
    page = service.list_teams(session, merchant_id=principal.merchant_id, campaign_id=campaign.id, status=status,
                              cursor=cursor, limit=limit)
    members = service.members_of(session, [t.id for t in page.items])
    now = clock.now()
    return {"items": [team_read(t, members=[member_read(m) for m in members[t.id]], now=now) for t in page.items],
            "next_cursor": page.next_cursor}


# ---------------------------------------------------------------- shop


def _shop_campaign(session: Any, merchant_id: int, campaign_id: int) -> TeamBuyCampaign:
    campaign = service.get_campaign(session, campaign_id, merchant_id=merchant_id)
    if campaign.status == TeamBuyStatus.DRAFT:
        raise service.TeamBuyNotFound()
    return campaign


@router.get(f"{SHOP}/team-buys/{{campaign_id}}")
def shop_campaign(campaign_id: Id, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer) -> dict:
    """The campaign (team price vs normal price) with the teams one can join now (凑团)."""
    campaign = _shop_campaign(session, merchant.id, campaign_id)
    now = clock.now()
    teams = service.open_teams(session, merchant_id=merchant.id, campaign_id=campaign.id, now=now)
    members = service.members_of(session, [t.id for t in teams], statuses=("paid",))
    return {
        "id": campaign.id, "title": campaign.title, "description": campaign.description,
        "status": service.status_of(campaign, now), "team_size": campaign.team_size,
        "lucky_draw": campaign.lucky_draw, "lucky_winners": campaign.lucky_winners,
        "time_limit_minutes": campaign.time_limit_minutes, "per_customer_limit": campaign.per_customer_limit,
        "starts_at": _iso(campaign.starts_at), "ends_at": _iso(campaign.ends_at),
        "skus": [{"sku_id": o.sku_id, "title": o.title, "spec_text": o.spec_text, "image_url": o.image_url,
                  "price_cents": o.price_cents, "team_price_cents": o.team_price_cents, "in_stock": o.stock > 0}
                 for o in service.offers(session, merchant_id=merchant.id, campaign=campaign)],
        "open_teams": [team_read(t, now=now, members=[person_read(p) for p in service.people(
            session, merchant_id=merchant.id, members=members[t.id])]) for t in teams],
    }


@router.get(f"{SHOP}/teams/{{team_id}}")
def shop_team(team_id: Id, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer) -> dict:
    """A team: progress, members (nickname and avatar), time left, and the caller's own place."""
    team = service.get_team(session, team_id, merchant_id=merchant.id)
    campaign = service.get_campaign(session, team.campaign_id, merchant_id=merchant.id)
    members = service.members_of(session, [team.id], statuses=("paid",))[team.id]
    mine = service.membership(session, team_id=team.id, customer_id=customer.customer_id if customer else None)
    data = team_read(team, members=[person_read(p) for p in service.people(session, merchant_id=merchant.id,
                                                                             members=members)])
    data.update({"campaign": {"id": campaign.id, "title": campaign.title, "status": service.status_of(campaign)},
                 "my_status": mine.status if mine else None})
    return data
