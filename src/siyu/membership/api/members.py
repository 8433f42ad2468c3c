"""membership: REST routes for member cards, tiers, points, the points mall and paid membership.

Shop: /api/v1/shop/{m}/membership/… (the signed-in customer). Admin: /api/v1/admin/membership/…"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints

from siyu.core.auth import Principal
from siyu.core.idempotency import run_idempotent
from siyu.core.privacy import mask_phone
from siyu.core.web import DbSession
from siyu.customers import service as customers
from siyu.customers.deps import ShopCustomer
from siyu.membership.models.members import Member, PaidMembershipPlan, Tier
from siyu.membership.models.points import PointsMallItem
from siyu.membership.service import members, points, points_mall, tiers
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["membership"])

Id = Annotated[int, Field(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Text40 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
Count = Annotated[int, Field(ge=0, le=10**12)]


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def tier_read(tier: Tier | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {"id": tier.id, "name": tier.name, "growth_threshold": tier.growth_threshold,
            "discount_bps": tier.discount_bps, "discount_product_ids": list(tier.discount_product_ids or []),
            "discount_category_ids": list(tier.discount_category_ids or []),
            "points_multiplier_bps": tier.points_multiplier_bps, "free_shipping": tier.free_shipping,
            "birthday_points": tier.birthday_points, "active": tier.active, "benefits": tiers.benefits(tier)}


def plan_read(plan: PaidMembershipPlan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "tier_id": plan.tier_id, "days": plan.days,
            "price_cents": plan.price_cents, "active": plan.active}


def mall_item_read(item: PointsMallItem) -> dict[str, Any]:
    return {"id": item.id, "sku_id": item.sku_id, "product_id": item.product_id, "title": item.title,
            "points": item.points, "cash_cents": item.cash_cents, "per_order_limit": item.per_order_limit,
            "active": item.active}


def entry_read(entry: Any) -> dict[str, Any]:
    return {"id": entry.id, "delta": entry.delta, "balance_after": entry.balance_after, "reason": entry.reason,
            "note": entry.note, "ref_type": entry.ref_type, "ref_id": entry.ref_id, "created_at": _iso(entry.created_at)}


def member_read(session: Any, member: Member, *, unmask: bool = True) -> dict[str, Any]:
    prog = tiers.progress(session, member)
    summary = points.summary(session, merchant_id=member.merchant_id, customer_id=member.customer_id)
    return {
        "id": member.id, "customer_id": member.customer_id, "card_no": member.card_no,
        "phone": member.phone if unmask else mask_phone(member.phone), "name": member.name,
        "birthday": _iso(member.birthday), "activated_at": _iso(member.activated_at),
        "growth": member.growth, "window_growth": prog["window_growth"],
        "tier": tier_read(prog["tier"]), "next_tier": tier_read(prog["next"]), "growth_needed": prog["needed"],
        "progress_percent": prog["percent"], "review_at": _iso(member.review_at), "grace_until": _iso(member.grace_until),
        "paid_tier_id": member.paid_tier_id, "paid_until": _iso(member.paid_until),
        "checkin_streak": member.checkin_streak, "last_checkin_on": _iso(member.last_checkin_on),
        "points": {"balance": summary.balance, "available": summary.available, "value_cents": summary.value_cents,
                   "expiring_points": summary.expiring_points, "expiring_at": _iso(summary.expiring_at)},
    }


# ==================================================================== shop


class ActivateIn(BaseModel):
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=20)]
    birthday: dt.date | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    gender: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10)] = ""


class ProfileIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    birthday: dt.date | None = None


@router.get("/api/v1/shop/{m}/membership/me")
def shop_me(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    """The member centre: card, tier and progress, benefits, points. `member: null` before activation."""
    member = members.own_member(session, actor=customer)
    rules = members.rules(session, merchant.id)
    return {"member": member_read(session, member) if member else None,
            "tiers": [tier_read(t) for t in tiers.list_tiers(session, merchant.id, active_only=True)],
            "rules": {"redeem_points_per_yuan": rules.redeem_points_per_yuan, "redeem_cap_bps": rules.redeem_cap_bps,
                      "checkin_points": rules.checkin_points}}


@router.post("/api/v1/shop/{m}/membership/activate", status_code=201)
def shop_activate(body: ActivateIn, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    member = members.activate(session, actor=customer, phone=body.phone, birthday=body.birthday, name=body.name,
                              gender=body.gender)
    return member_read(session, member)


@router.patch("/api/v1/shop/{m}/membership/me")
def shop_profile(body: ProfileIn, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    member = members.update_member_profile(session, actor=customer, name=body.name, birthday=body.birthday)
    return member_read(session, member)


@router.post("/api/v1/shop/{m}/membership/check-in")
def shop_check_in(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return members.check_in(session, actor=customer)


@router.get("/api/v1/shop/{m}/membership/points")
def shop_points(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession, cursor: Cursor = None,
                limit: Limit = None) -> dict:
    member = members.require_own_member(session, actor=customer)
    page = points.history(session, merchant_id=merchant.id, customer_id=member.customer_id, cursor=cursor, limit=limit)
    return {"items": [entry_read(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/api/v1/shop/{m}/membership/card.png")
def shop_card_png(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> Response:
    member = members.require_own_member(session, actor=customer)
    return Response(members.card_qr_png(member), media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/api/v1/shop/{m}/membership/mall")
def shop_mall(merchant: ShopMerchant, session: DbSession) -> dict:
    """Points-mall items; exchange one by checking out its SKU with `points_mall_item_id`."""
    return {"items": points_mall.shop_items(session, merchant.id)}


@router.get("/api/v1/shop/{m}/membership/plans")
def shop_plans(merchant: ShopMerchant, session: DbSession) -> dict:
    return {"items": [plan_read(p) for p in tiers.list_plans(session, merchant.id, active_only=True)]}


@router.post("/api/v1/shop/{m}/membership/plans/{plan_id}/buy", status_code=201)
def shop_buy_plan(plan_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                  idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    """Buy a paid-membership plan: answers the service order to pay (POST /orders/{id}/pay)."""
    def buy() -> tuple[int, dict[str, Any]]:
        purchase, order = tiers.buy_plan(session, actor=customer, plan_id=plan_id)
        return 201, {"purchase_id": purchase.id, "status": purchase.status, "order_id": order.id,
                     "order_no": order.order_no, "payable_cents": order.payable_cents}

    return run_idempotent(session, merchant_id=merchant.id, scope=f"membership.buy_plan:customer:{customer.customer_id}",
                          key=idempotency_key, payload={"plan_id": plan_id}, fn=buy)


# ==================================================================== admin


class RulesIn(BaseModel):
    points_per_yuan: Annotated[int, Field(ge=0, le=1000)] | None = None
    growth_per_yuan: Annotated[int, Field(ge=0, le=1000)] | None = None
    redeem_points_per_yuan: Annotated[int, Field(ge=1, le=100_000)] | None = None
    redeem_cap_bps: Annotated[int, Field(ge=0, le=10_000)] | None = None
    expiry_years: Annotated[int, Field(ge=0, le=10)] | None = None
    checkin_points: Annotated[int, Field(ge=0, le=10_000)] | None = None
    checkin_growth: Annotated[int, Field(ge=0, le=10_000)] | None = None
    profile_points: Annotated[int, Field(ge=0, le=100_000)] | None = None
    profile_growth: Annotated[int, Field(ge=0, le=100_000)] | None = None
    first_purchase_points: Annotated[int, Field(ge=0, le=100_000)] | None = None
    evaluation_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    grace_days: Annotated[int, Field(ge=0, le=365)] | None = None


class TierIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = None
    growth_threshold: Count | None = None
    discount_bps: Annotated[int, Field(ge=0, le=9000)] | None = None
    discount_product_ids: Annotated[list[Id], Field(max_length=500)] | None = None
    discount_category_ids: Annotated[list[Id], Field(max_length=500)] | None = None
    points_multiplier_bps: Annotated[int, Field(ge=0, le=100_000)] | None = None
    free_shipping: bool | None = None
    birthday_points: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    active: bool | None = None


class PlanIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = None
    tier_id: Id | None = None
    days: Annotated[int, Field(ge=1, le=3660)] | None = None
    price_cents: Annotated[int, Field(ge=1, le=10**9)] | None = None
    active: bool | None = None


class MallItemIn(BaseModel):
    sku_id: Id | None = None
    points: Annotated[int, Field(ge=1, le=10**9)] | None = None
    cash_cents: Annotated[int, Field(ge=0, le=10**9)] = 0
    per_order_limit: Annotated[int, Field(ge=1, le=99)] = 1
    active: bool = True


class AdjustIn(BaseModel):
    delta: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _staff_member_read(session: Any, member: Member, actor: Principal) -> dict[str, Any]:
    return member_read(session, member, unmask=customers.may_see_phone(actor))


@router.get("/api/v1/admin/membership/rules")
def admin_rules(session: DbSession, staff: Staff) -> dict:
    return members.rules(session, staff.merchant_id).as_dict()


@router.patch("/api/v1/admin/membership/rules")
def admin_rules_update(body: RulesIn, session: DbSession, staff: Staff) -> dict:
    return members.update_rules(session, actor=staff, **body.model_dump(exclude_none=True)).as_dict()


@router.get("/api/v1/admin/membership/tiers")
def admin_tiers(session: DbSession, staff: Staff) -> dict:
    counts = tiers.members_per_tier(session, staff.merchant_id)
    return {"items": [{**tier_read(t), "members": counts.get(t.id, 0)}  # type: ignore[dict-item]
                      for t in tiers.list_tiers(session, staff.merchant_id)]}


@router.post("/api/v1/admin/membership/tiers", status_code=201)
def admin_tier_create(body: TierIn, session: DbSession, staff: Staff) -> dict:
    return tier_read(tiers.create_tier(session, actor=staff, **body.model_dump(exclude_none=True)))  # type: ignore[return-value]


@router.patch("/api/v1/admin/membership/tiers/{tier_id}")
def admin_tier_update(tier_id: Id, body: TierIn, session: DbSession, staff: Staff) -> dict:
    return tier_read(tiers.update_tier(session, tier_id, actor=staff,  # type: ignore[return-value]
                                       **body.model_dump(exclude_none=True)))


@router.get("/api/v1/admin/membership/plans")
def admin_plans(session: DbSession, staff: Staff) -> dict:
    return {"items": [plan_read(p) for p in tiers.list_plans(session, staff.merchant_id)]}


@router.post("/api/v1/admin/membership/plans", status_code=201)
def admin_plan_create(body: PlanIn, session: DbSession, staff: Staff) -> dict:
    return plan_read(tiers.create_plan(session, actor=staff, **body.model_dump(exclude_none=True)))


@router.patch("/api/v1/admin/membership/plans/{plan_id}")
def admin_plan_update(plan_id: Id, body: PlanIn, session: DbSession, staff: Staff) -> dict:
    return plan_read(tiers.update_plan(session, plan_id, actor=staff, **body.model_dump(exclude_none=True)))


@router.get("/api/v1/admin/membership/mall-items")
def admin_mall_items(session: DbSession, staff: Staff) -> dict:
    return {"items": [mall_item_read(i) for i in points_mall.list_items(session, staff.merchant_id)]}


@router.post("/api/v1/admin/membership/mall-items", status_code=201)
def admin_mall_item_create(body: MallItemIn, session: DbSession, staff: Staff) -> dict:
    return mall_item_read(points_mall.save_item(session, actor=staff, **body.model_dump()))


@router.patch("/api/v1/admin/membership/mall-items/{item_id}")
def admin_mall_item_update(item_id: Id, body: MallItemIn, session: DbSession, staff: Staff) -> dict:
    return mall_item_read(points_mall.save_item(session, actor=staff, item_id=item_id, **body.model_dump()))


@router.get("/api/v1/admin/membership/members")
def admin_members(session: DbSession, staff: Staff, q: Annotated[str, Query(max_length=40)] = "",
                  tier_id: Annotated[int | None, Query(gt=0, le=2**53)] = None, cursor: Cursor = None,
                  limit: Limit = None) -> dict:
    page = members.list_members(session, actor=staff, q=q, tier_id=tier_id, cursor=cursor, limit=limit)
    balances = points.balances(session, merchant_id=staff.merchant_id, customer_ids=[m.customer_id for m in page.items])
    unmask = customers.may_see_phone(staff)
    names = {t.id: t.name for t in tiers.list_tiers(session, staff.merchant_id)}
    return {"items": [{"id": m.id, "customer_id": m.customer_id, "card_no": m.card_no,
                       "phone": m.phone if unmask else mask_phone(m.phone), "name": m.name, "growth": m.growth,
                       "tier_id": m.tier_id, "tier": names.get(m.tier_id or 0), "points": balances.get(m.customer_id, 0),
                       "activated_at": _iso(m.activated_at)} for m in page.items],
            "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/membership/lookup")
def admin_lookup(session: DbSession, staff: Staff, code: Annotated[str, Query(min_length=1, max_length=40)]) -> dict:
    """Counter lookup by card number (scanned or typed) or phone."""
    return _staff_member_read(session, members.lookup(session, actor=staff, code=code), staff)


@router.get("/api/v1/admin/membership/members/{member_id}")
def admin_member(member_id: Id, session: DbSession, staff: Staff) -> dict:
    member = members.get_member(session, member_id, actor=staff)
    data = _staff_member_read(session, member, staff)
    data["profile"] = members.customer_profile(session, merchant_id=staff.merchant_id, customer_id=member.customer_id)
    data["profile"] = {k: _iso(v) if isinstance(v, dt.datetime) else v for k, v in data["profile"].items()}
    return data


@router.get("/api/v1/admin/membership/members/{member_id}/points")
def admin_member_points(member_id: Id, session: DbSession, staff: Staff, cursor: Cursor = None,
                        limit: Limit = None) -> dict:
    member = members.get_member(session, member_id, actor=staff)
    page = points.history(session, merchant_id=staff.merchant_id, customer_id=member.customer_id, cursor=cursor,
                          limit=limit)
    return {"items": [entry_read(e) for e in page.items], "next_cursor": page.next_cursor}


@router.post("/api/v1/admin/membership/members/{member_id}/points-adjustments", status_code=201)
def admin_adjust(member_id: Id, body: AdjustIn, session: DbSession, staff: Staff) -> dict:
    member = members.get_member(session, member_id, actor=staff)
    new_balance = points.adjust(session, actor=staff, customer_id=member.customer_id, delta=body.delta,
                                reason=body.reason)
    return {"member_id": member.id, "delta": body.delta, "balance": new_balance}


class PurchaseRefundIn(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


@router.post("/api/v1/admin/membership/purchases/{purchase_id}/refund")
def admin_purchase_refund(purchase_id: Id, body: PurchaseRefundIn, session: DbSession, staff: Staff) -> dict:
    """Refund a paid-membership purchase: the days come off the paid tier, the order is refunded in full."""
    purchase = tiers.refund_purchase(session, purchase_id, actor=staff, reason=body.reason)
    return {"id": purchase.id, "status": purchase.status, "order_id": purchase.ref_id}
