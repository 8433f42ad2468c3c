"""attribution: ownership REST routes: protection periods, bindings, binding history, customer and order
source, manual transfers and departure transfers (staff, `/api/v1/admin/attribution/…`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StringConstraints

from siyu.attribution.service import ownership, source, transfer
from siyu.core.web import DbSession
from siyu.merchants.deps import Staff

router = APIRouter(tags=["attribution"])

Id = Annotated[int, Field(gt=0, le=2**53)]
PathId = Annotated[int, Path(gt=0, le=2**53)]
OptId = Annotated[int | None, Query(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
Days = Annotated[int, Field(ge=1, le=ownership.MAX_PROTECTION_DAYS)]
Kind = Literal["guide", "referrer"]


class ProtectionSettings(BaseModel):
    """Days a binding protects itself; null = permanent."""

    guide_protection_days: Days | None = None
    referrer_protection_days: Days | None = None


class TransferCreate(BaseModel):
    customer_ids: Annotated[list[Id], Field(min_length=1, max_length=transfer.MAX_CUSTOMERS)]
    to_guide_id: Id
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class DepartureCreate(BaseModel):
    staff_id: Id
    transfer_mode: Literal["round_robin", "manager", "colleague"] = "round_robin"
    transfer_to_id: Id | None = None


class BindingRead(BaseModel):
    customer_id: int
    kind: str
    guide_id: int | None
    store_id: int | None
    referrer_customer_id: int | None
    touch_id: int | None
    channel: str
    bound_at: dt.datetime
    protected_until: dt.datetime | None


@router.get("/api/v1/admin/attribution/protection", response_model=ProtectionSettings)
def get_protection(session: DbSession, principal: Staff) -> Any:
    return ownership.protection_settings(session, merchant_id=principal.merchant_id)


@router.patch("/api/v1/admin/attribution/protection", response_model=ProtectionSettings)
def update_protection(body: ProtectionSettings, session: DbSession, principal: Staff) -> Any:
    return ownership.update_protection_settings(session, actor=principal, **body.model_dump(exclude_unset=True))


@router.get("/api/v1/admin/attribution/bindings")
def list_bindings(session: DbSession, principal: Staff, kind: Kind | None = None, guide_id: OptId = None,
                  referrer_customer_id: OptId = None, customer_id: OptId = None, cursor: Cursor = None,
                  limit: Limit = None) -> dict[str, Any]:
    """Current bindings in the caller's scope (a guide: their own customers)."""
    page = ownership.list_bindings(session, actor=principal, kind=kind, guide_id=guide_id,
                                   referrer_customer_id=referrer_customer_id, customer_id=customer_id,
                                   cursor=cursor, limit=limit)
    return {"items": [BindingRead.model_validate(b, from_attributes=True).model_dump(mode="json") for b in page.items],
            "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/attribution/binding-history")
def binding_history(session: DbSession, principal: Staff, customer_id: OptId = None, kind: Kind | None = None,
                    action: Annotated[str | None, Query(max_length=20)] = None, staff_id: OptId = None,
                    cursor: Cursor = None, limit: Limit = None) -> dict[str, Any]:
    return source.history_page(session, actor=principal, customer_id=customer_id, kind=kind, action=action,
                               staff_id=staff_id, cursor=cursor, limit=limit)


@router.get("/api/v1/admin/attribution/customers/{customer_id}/source")
def customer_source(customer_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
    return source.customer_source(session, actor=principal, customer_id=customer_id)


@router.get("/api/v1/admin/attribution/orders/{order_id}/source")
def order_source(order_id: PathId, session: DbSession, principal: Staff) -> dict[str, Any]:
    return source.order_source(session, actor=principal, order_id=order_id)


@router.post("/api/v1/admin/attribution/transfers")
def create_transfer(body: TransferCreate, session: DbSession, principal: Staff) -> dict[str, Any]:
    """Move chosen customers to another guide (the transfer tool)."""
    return transfer.transfer_customers(session, actor=principal, customer_ids=body.customer_ids,
                                       to_guide_id=body.to_guide_id, reason=body.reason).as_dict()


@router.post("/api/v1/admin/attribution/departures")
def create_departure(body: DepartureCreate, session: DbSession, principal: Staff) -> dict[str, Any]:
    """Run a disabled staff member's departure transfer (again): e.g. for customers left behind."""
    return transfer.transfer_departed(session, merchant_id=principal.merchant_id, staff_id=body.staff_id,
                                      mode=body.transfer_mode, colleague_id=body.transfer_to_id,
                                      actor=principal).as_dict()
