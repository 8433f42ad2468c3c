"""promotions: payment marketing (支付营销): what the payment result page offers — REST routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from siyu.core.web import DbSession
from siyu.customers.deps import ShopCustomer
from siyu.merchants.deps import ShopMerchant
from siyu.promotions.api.rules import add_rule_routes
from siyu.promotions.models.payment_offers import PaymentOfferRule, PaymentOfferShow
from siyu.promotions.schemas.payment_offers import OfferRuleBody
from siyu.promotions.service import payment_offers as service
from siyu.promotions.service.split_coupons import display_status

router = APIRouter(tags=["promotions"])
ADMIN = "/api/v1/admin/payment-offer-rules"
SHOP = "/api/v1/shop/{m}"
PathId = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def rule_read(r: PaymentOfferRule, figures: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": r.id, "name": r.name, "priority": r.priority, "min_paid_cents": r.min_paid_cents,
        "max_paid_cents": r.max_paid_cents, "customer_type": r.customer_type, "tier_id": r.tier_id,
        "store_id": r.store_id, "offer_kind": r.offer_kind, "template_ids": list(r.template_ids or []),
        "link_url": r.link_url, "title": r.title, "conversion_days": r.conversion_days,
        "starts_at": _iso(r.starts_at), "ends_at": _iso(r.ends_at),
        "status": display_status(r.status, r.starts_at, r.ends_at)}
    if figures is not None:
        data["figures"] = figures
    return data


def offer_read(rule: PaymentOfferRule, show: PaymentOfferShow, *, slug: str) -> dict[str, Any]:
    return {"show_id": show.id, "rule_id": rule.id, "offer_kind": rule.offer_kind, "title": rule.title or rule.name,
            "template_ids": list(rule.template_ids or []), "claimed": show.claimed_at is not None,
            "coupon_ids": list(show.coupon_ids or []),
            "link_url": f"/shop/{slug}/offers/{show.id}/go" if rule.offer_kind == "link" else None}


def _data(body: OfferRuleBody) -> service.OfferRuleIn:
    return service.OfferRuleIn(**body.model_dump())


add_rule_routes(router, ADMIN, body=OfferRuleBody, to_data=_data, read=rule_read, service=service)


@router.get(SHOP + "/orders/{order_id}/offers")
def shop_order_offers(order_id: PathId, merchant: ShopMerchant, session: DbSession,
                      customer: ShopCustomer) -> dict[str, Any]:
    offer = service.offer_of_order(session, actor=customer, order_id=order_id)
    return {"items": [offer_read(offer.rule, offer.show, slug=merchant.slug)] if offer else []}


@router.post(SHOP + "/payment-offers/{show_id}/claim")
def shop_claim(show_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopCustomer) -> dict[str, Any]:
    show = service.claim(session, actor=customer, show_id=show_id)
    rule = service.get_rule(session, show.rule_id, merchant_id=merchant.id)
    return offer_read(rule, show, slug=merchant.slug)
