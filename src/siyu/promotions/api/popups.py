"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — REST routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from siyu.attribution.service.shares import valid_visitor_id
from siyu.core.web import DbSession
from siyu.customers.deps import OptionalShopCustomer, ShopCustomer, visitor_id_of
from siyu.merchants.deps import ShopMerchant
from siyu.promotions.api.rules import add_rule_routes
from siyu.promotions.models.popups import PopupRule
from siyu.promotions.schemas.popups import PopupRuleBody
from siyu.promotions.service import popups as service
from siyu.promotions.service.split_coupons import display_status

router = APIRouter(tags=["promotions"])
ADMIN = "/api/v1/admin/popup-rules"
SHOP = "/api/v1/shop/{m}/popups"
PathId = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def rule_read(r: PopupRule, figures: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": r.id, "name": r.name, "priority": r.priority, "audience": r.audience, "dormant_days": r.dormant_days,
        "tier_id": r.tier_id, "tag_id": r.tag_id, "content_kind": r.content_kind, "template_id": r.template_id,
        "link_url": r.link_url, "title": r.title, "body": r.body, "image_url": r.image_url, "pages": r.pages,
        "cap_per_day": r.cap_per_day, "cap_total": r.cap_total, "conversion_days": r.conversion_days,
        "starts_at": _iso(r.starts_at), "ends_at": _iso(r.ends_at),
        "status": display_status(r.status, r.starts_at, r.ends_at)}
    if figures is not None:
        data["figures"] = figures
    return data


def popup_read(r: PopupRule, *, slug: str) -> dict[str, Any]:
    return {"rule_id": r.id, "title": r.title, "body": r.body, "image_url": r.image_url or None,
            "content_kind": r.content_kind, "template_id": r.template_id,
            "link_url": f"/shop/{slug}/popups/{r.id}/go" if r.content_kind == "link" else None}


def _data(body: PopupRuleBody) -> service.PopupRuleIn:
    return service.PopupRuleIn(**body.model_dump())


add_rule_routes(router, ADMIN, body=PopupRuleBody, to_data=_data, read=rule_read, service=service)


def _who(request: Request, customer: Any) -> tuple[int | None, str | None]:
    return (customer.customer_id if customer else None), valid_visitor_id(visitor_id_of(request))


@router.get(SHOP + "/next")
def shop_next(request: Request, merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer,
              page: Literal["home", "product", "other"] = "other") -> dict[str, Any]:
    """The pop-up to show now (its impression is recorded), or null."""
    customer_id, visitor_id = _who(request, customer)
    rule = service.next_popup(session, merchant_id=merchant.id, customer_id=customer_id, visitor_id=visitor_id,
                              page=page)
    return {"popup": popup_read(rule, slug=merchant.slug) if rule else None}


@router.post(SHOP + "/{rule_id}/dismiss")
def shop_dismiss(rule_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                 customer: OptionalShopCustomer) -> dict[str, Any]:
    customer_id, visitor_id = _who(request, customer)
    service.dismiss(session, merchant_id=merchant.id, rule_id=rule_id, customer_id=customer_id, visitor_id=visitor_id)
    return {"ok": True}


@router.post(SHOP + "/{rule_id}/click")
def shop_click(rule_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
               customer: OptionalShopCustomer) -> dict[str, Any]:
    customer_id, visitor_id = _who(request, customer)
    url = service.click(session, merchant_id=merchant.id, rule_id=rule_id, customer_id=customer_id,
                        visitor_id=visitor_id)
    return {"url": url}


@router.post(SHOP + "/{rule_id}/claim")
def shop_claim(rule_id: PathId, merchant: ShopMerchant, session: DbSession, customer: ShopCustomer) -> dict[str, Any]:
    return {"coupon_id": service.claim(session, actor=customer, rule_id=rule_id)}
