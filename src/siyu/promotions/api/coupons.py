"""promotions: coupon templates, claiming, my coupons and the applicable coupons of a checkout — REST routes.

Shop: GET /api/v1/shop/{m}/coupons/centre, POST /api/v1/shop/{m}/coupon-templates/{id}/claim,
GET /api/v1/shop/{m}/coupons?status=, POST /api/v1/shop/{m}/coupons/applicable (a checkout body).
Admin: /api/v1/admin/coupon-templates (CRUD, publish/pause/resume/end, figures, issue)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from siyu.core.web import DbSession
from siyu.customers.deps import OptionalShopCustomer, ShopCustomer
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.models.coupons import Coupon, CouponTemplate
from siyu.promotions.schemas.coupons import CouponIssue, CouponTemplateCreate, CouponTemplateUpdate, Id
from siyu.promotions.service import coupons as service

router = APIRouter(tags=["promotions"])

Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
StatusFilter = Annotated[Literal["draft", "scheduled", "active", "paused", "ended"] | None, Query()]
CouponStatusFilter = Annotated[Literal["available", "used", "expired", "void"] | None, Query()]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def template_read(t: CouponTemplate) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "description": t.description, "kind": t.kind, "label": service.describe(t),
            "amount_cents": t.amount_cents, "threshold_cents": t.threshold_cents, "percent_bps": t.percent_bps,
            "cap_cents": t.cap_cents, "exchange_sku_id": t.exchange_sku_id,
            "exchange_product_id": t.exchange_product_id, "scope": t.scope,
            "scope_product_ids": list(t.scope_product_ids or []), "scope_category_ids": list(t.scope_category_ids or []),
            "excluded_product_ids": list(t.excluded_product_ids or []), "validity": t.validity,
            "starts_at": _iso(t.starts_at), "ends_at": _iso(t.ends_at), "valid_days": t.valid_days,
            "total_stock": t.total_stock, "claimed": t.claimed,
            "remaining": None if t.total_stock is None else max(0, t.total_stock - t.claimed),
            "per_customer_limit": t.per_customer_limit, "channels": list(t.channels or []), "status": t.status}


def coupon_read(c: Coupon, t: CouponTemplate) -> dict[str, Any]:
    return {"id": c.id, "template_id": t.id, "name": t.name, "kind": t.kind,
            "label": service.describe(t, c.amount_cents), "amount_cents": c.amount_cents or t.amount_cents,
            "threshold_cents": t.threshold_cents, "status": c.status, "channel": c.channel,
            "valid_from": _iso(c.valid_from), "valid_until": _iso(c.valid_until), "claimed_at": _iso(c.claimed_at),
            "order_id": c.order_id, "order_no": c.order_no, "used_at": _iso(c.used_at),
            "discount_cents": c.discount_cents}


# ==================================================================== shop


@router.get("/api/v1/shop/{m}/coupons/centre")
def shop_centre(merchant: ShopMerchant, customer: OptionalShopCustomer, session: DbSession,
                product_id: Annotated[int | None, Query(gt=0, le=2**53)] = None) -> dict:
    """Coupons to claim now; signed in, with how many the customer holds and may still claim."""
    entries = service.centre(session, merchant_id=merchant.id,
                             customer_id=customer.customer_id if customer else None, product_id=product_id)
    return {"items": [{**template_read(e["template"]), "claimed_by_me": e["claimed_by_me"],
                       "can_claim": e["can_claim"]} for e in entries]}


@router.post("/api/v1/shop/{m}/coupon-templates/{template_id}/claim", status_code=201)
def shop_claim(template_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    """Claim one coupon (409 `coupon_sold_out`, `coupon_limit_reached`, `coupon_not_claimable`)."""
    coupon = service.claim(session, actor=customer, template_id=template_id)
    template = service.get_template(session, coupon.template_id, merchant_id=merchant.id)
    return coupon_read(coupon, template)


@router.get("/api/v1/shop/{m}/coupons")
def shop_my_coupons(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                    status: CouponStatusFilter = None) -> dict:
    rows = service.my_coupons(session, merchant_id=merchant.id, customer_id=customer.customer_id, status=status)
    return {"items": [coupon_read(c, t) for c, t in rows]}


@router.post("/api/v1/shop/{m}/coupons/applicable")
def shop_applicable(body: CheckoutRequest, merchant: ShopMerchant, customer: ShopCustomer,
                    session: DbSession) -> dict:
    """The customer's coupons for this checkout (the same body as the preview): what each would save,
    applicable ones first, best first; `best_coupon_id` when a coupon applies."""
    priced = orders.preview(session, actor=customer, request=body)
    choices = next((n for n in priced["notices"] if n.get("kind") == "coupon_choices"), {"items": []})
    best = next((n for n in priced["notices"] if n.get("kind") == "best_coupon"), None)
    return {"items": choices["items"], "best_coupon_id": best["coupon_id"] if best else None}


# ==================================================================== admin


@router.get("/api/v1/admin/coupon-templates")
def admin_list(actor: Staff, session: DbSession, status: StatusFilter = None, cursor: Cursor = None,
               limit: Limit = None) -> dict:
    page = service.list_templates(session, actor=actor, status=status, cursor=cursor, limit=limit)
    figs = service.figures(session, merchant_id=actor.merchant_id, template_ids=[t.id for t in page.items])
    return {"items": [{**template_read(t), "figures": service.summary_of(t, figs[t.id])} for t in page.items],
            "next_cursor": page.next_cursor}


@router.post("/api/v1/admin/coupon-templates", status_code=201)
def admin_create(body: CouponTemplateCreate, actor: Staff, session: DbSession) -> dict:
    data = body.model_dump()
    publish = data.pop("publish")
    return template_read(service.create_template(session, actor=actor, publish=publish, **data))


@router.get("/api/v1/admin/coupon-templates/{template_id}")
def admin_get(template_id: Id, actor: Staff, session: DbSession) -> dict:
    template = service.get_template(session, template_id, merchant_id=actor.merchant_id)
    return {**template_read(template),
            "figures": service.template_summary(session, merchant_id=actor.merchant_id, template_id=template.id)}


@router.patch("/api/v1/admin/coupon-templates/{template_id}")
def admin_update(template_id: Id, body: CouponTemplateUpdate, actor: Staff, session: DbSession) -> dict:
    return template_read(service.update_template(session, actor=actor, template_id=template_id,
                                                 **body.model_dump(exclude_unset=True)))


@router.get("/api/v1/admin/coupon-templates/{template_id}/figures")
def admin_figures(template_id: Id, actor: Staff, session: DbSession) -> dict:
    """Live figures: claimed, remaining, used, GMV of the orders using it, discount given."""
    return service.template_summary(session, merchant_id=actor.merchant_id, template_id=template_id)


@router.post("/api/v1/admin/coupon-templates/{template_id}/publish")
def admin_publish(template_id: Id, actor: Staff, session: DbSession) -> dict:
    return template_read(service.publish_template(session, actor=actor, template_id=template_id))


@router.post("/api/v1/admin/coupon-templates/{template_id}/pause")
def admin_pause(template_id: Id, actor: Staff, session: DbSession) -> dict:
    return template_read(service.pause_template(session, actor=actor, template_id=template_id))


@router.post("/api/v1/admin/coupon-templates/{template_id}/resume")
def admin_resume(template_id: Id, actor: Staff, session: DbSession) -> dict:
    return template_read(service.resume_template(session, actor=actor, template_id=template_id))


@router.post("/api/v1/admin/coupon-templates/{template_id}/end")
def admin_end(template_id: Id, actor: Staff, session: DbSession) -> dict:
    return template_read(service.end_template(session, actor=actor, template_id=template_id))


@router.post("/api/v1/admin/coupon-templates/{template_id}/issue")
def admin_issue(template_id: Id, body: CouponIssue, actor: Staff, session: DbSession) -> dict:
    """Send one coupon each to customers (a guide: their own customers, channel `guide`):
    `{issued, coupon_ids, refused: {code: n}}`."""
    return service.issue_to_customers(session, actor=actor, template_id=template_id, customer_ids=body.customer_ids,
                                      channel=body.channel)
