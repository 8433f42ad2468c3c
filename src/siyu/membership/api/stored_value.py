"""membership: stored value (储值) REST routes.

Admin: /api/v1/admin/membership/stored-value/… (plans, a customer's balance, entries, adjustments,
recharges and their refunds). Shop: /api/v1/shop/{m}/membership/stored-value/… (balance, entries,
plans, recharges). A recharge answers with its order: pay it with POST /api/v1/shop/{m}/orders/{id}/pay.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from siyu.core.idempotency import run_idempotent
from siyu.core.web import DbSession
from siyu.customers import service as customers
from siyu.customers.deps import ShopCustomer
from siyu.membership.models.stored_value import Recharge, RechargePlan
from siyu.membership.service import stored_value as service
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["membership"])

ADMIN = "/api/v1/admin/membership/stored-value"
SHOP = "/api/v1/shop/{m}/membership/stored-value"
Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=2**31 - 1)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PlanCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    price_cents: Annotated[int, Field(gt=0, le=2**31 - 1)]
    bonus_cents: Cents = 0
    active: bool = True
    sort: Annotated[int, Field(ge=-1000, le=1000)] = 0


class PlanUpdate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] | None = None
    price_cents: Annotated[int, Field(gt=0, le=2**31 - 1)] | None = None
    bonus_cents: Cents | None = None
    active: bool | None = None
    sort: Annotated[int, Field(ge=-1000, le=1000)] | None = None


class AdjustmentCreate(BaseModel):
    account: Literal["principal", "bonus"]
    delta_cents: Annotated[int, Field(ge=-(2**31 - 1), le=2**31 - 1)]
    reason: Reason


class RechargeCreate(BaseModel):
    plan_id: Id


class RechargeRefund(BaseModel):
    reason: Reason


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def plan_read(plan: RechargePlan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "price_cents": plan.price_cents, "bonus_cents": plan.bonus_cents,
            "credit_cents": plan.price_cents + plan.bonus_cents, "active": plan.active, "sort": plan.sort}


def recharge_read(row: Recharge) -> dict[str, Any]:
    return {"id": row.id, "customer_id": row.customer_id, "plan_id": row.plan_id, "plan_name": row.plan_name,
            "order_id": row.order_id, "principal_cents": row.principal_cents, "bonus_cents": row.bonus_cents,
            "status": row.status, "forfeited_bonus_cents": row.forfeited_bonus_cents,
            "created_at": _iso(row.created_at), "credited_at": _iso(row.credited_at),
            "refunded_at": _iso(row.refunded_at)}


def _entries(page: Any) -> dict[str, Any]:
    return {"items": [{**e, "created_at": _iso(e["created_at"])} for e in page.items], "next_cursor": page.next_cursor}


# ---------------------------------------------------------------- admin


@router.get(f"{ADMIN}/plans")
def admin_plans(staff: Staff, session: DbSession) -> dict:
    return {"items": [plan_read(p) for p in service.list_plans(session, merchant_id=staff.merchant_id)]}


@router.post(f"{ADMIN}/plans", status_code=201)
def admin_plan_create(body: PlanCreate, staff: Staff, session: DbSession) -> dict:
    return plan_read(service.create_plan(session, actor=staff, **body.model_dump()))


@router.patch(f"{ADMIN}/plans/{{plan_id}}")
def admin_plan_update(plan_id: Id, body: PlanUpdate, staff: Staff, session: DbSession) -> dict:
    return plan_read(service.update_plan(session, plan_id, actor=staff, **body.model_dump(exclude_none=True)))


@router.get(f"{ADMIN}/customers/{{customer_id}}")
def admin_customer_balance(customer_id: Id, staff: Staff, session: DbSession) -> dict:
    customers.get_customer(session, customer_id, actor=staff)
    return service.summary(session, merchant_id=staff.merchant_id, customer_id=customer_id)


@router.get(f"{ADMIN}/customers/{{customer_id}}/entries")
def admin_customer_entries(customer_id: Id, staff: Staff, session: DbSession, cursor: Cursor = None,
                           limit: Limit = 50) -> dict:
    customers.get_customer(session, customer_id, actor=staff)
    return _entries(service.entries_of(session, merchant_id=staff.merchant_id, customer_id=customer_id,
                                       cursor=cursor, limit=limit))


@router.post(f"{ADMIN}/customers/{{customer_id}}/adjustments", status_code=201)
def admin_adjust(customer_id: Id, body: AdjustmentCreate, staff: Staff, session: DbSession,
                 idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    def adjust() -> tuple[int, dict[str, Any]]:
        return 201, service.adjust(session, actor=staff, customer_id=customer_id, account=body.account,
                                   delta_cents=body.delta_cents, reason=body.reason,
                                   idempotency_key=f"{staff.subject_id}:{idempotency_key}" if idempotency_key else None)

    return run_idempotent(session, merchant_id=staff.merchant_id, scope=f"stored_value.adjust:staff:{staff.subject_id}",
                          key=idempotency_key, payload={"customer_id": customer_id, **body.model_dump()}, fn=adjust)


@router.get(f"{ADMIN}/recharges")
def admin_recharges(staff: Staff, session: DbSession, customer_id: Annotated[int | None, Query(gt=0, le=2**53)] = None,
                    limit: Limit = 50) -> dict:
    if customer_id is not None:
        customers.get_customer(session, customer_id, actor=staff)
    else:  # every customer's recharges: the brand
        staff.require(service.PERMISSION)
    rows = service.list_recharges(session, merchant_id=staff.merchant_id, customer_id=customer_id, limit=limit)
    return {"items": [recharge_read(r) for r in rows]}


@router.post(f"{ADMIN}/recharges/{{recharge_id}}/refund")
def admin_recharge_refund(recharge_id: Id, body: RechargeRefund, staff: Staff, session: DbSession) -> dict:
    return recharge_read(service.refund_recharge(session, recharge_id, actor=staff, reason=body.reason))


# ---------------------------------------------------------------- shop


@router.get(SHOP)
def shop_balance(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> dict:
    return service.summary(session, merchant_id=merchant.id, customer_id=customer.customer_id)


@router.get(f"{SHOP}/entries")
def shop_entries(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession, cursor: Cursor = None,
                 limit: Limit = 50) -> dict:
    page = service.entries_of(session, merchant_id=merchant.id, customer_id=customer.customer_id, cursor=cursor,
                              limit=limit)
    out = _entries(page)
    for item in out["items"]:  # staff ids are not the customer's business
        item.pop("actor_id", None)
    return out


@router.get(f"{SHOP}/plans")
def shop_plans(merchant: ShopMerchant, session: DbSession) -> dict:
    return {"items": [plan_read(p) for p in service.list_plans(session, merchant_id=merchant.id, active_only=True)]}


@router.get(f"{SHOP}/recharges")
def shop_recharges(merchant: ShopMerchant, customer: ShopCustomer, session: DbSession, limit: Limit = 50) -> dict:
    rows = service.list_recharges(session, merchant_id=merchant.id, customer_id=customer.customer_id, limit=limit)
    return {"items": [recharge_read(r) for r in rows]}


@router.post(f"{SHOP}/recharges", status_code=201)
def shop_recharge_create(body: RechargeCreate, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                         idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    """Buy a plan: a pending recharge and its order (`order_id`), to pay like any order."""
    def create() -> tuple[int, dict[str, Any]]:
        row = service.start_recharge(session, actor=customer, plan_id=body.plan_id)
        return 201, recharge_read(row)

    return run_idempotent(session, merchant_id=merchant.id, scope=f"stored_value.recharge:customer:{customer.customer_id}",
                          key=idempotency_key, payload=body.model_dump(), fn=create)
