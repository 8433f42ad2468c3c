"""REST routes of the customers domain: admin customers and tags, shop sign-in and profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.privacy import mask_phone
from siyu.core.web import DbSession
from siyu.customers import service, signin
from siyu.customers.deps import ShopCustomer, visitor_id_of
from siyu.customers.models import Customer
from siyu.customers.schemas import (
    BulkTag,
    BulkTagResult,
    CustomerPage,
    CustomerRead,
    CustomerUpdate,
    DevLogin,
    Id,
    MeRead,
    MergeRequest,
    OwnProfileUpdate,
    ShopToken,
    TagCreate,
    TagGroupCreate,
    TagGroupRead,
    TagIds,
    TagRead,
    WechatLogin,
)
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["customers"])

QId = Annotated[int | None, Query(gt=0, le=2**53)]
QDays = Annotated[int | None, Query(ge=1, le=36500)]
QCents = Annotated[int | None, Query(ge=0, le=2**53)]


def customer_filter(
    q: Annotated[str, Query(max_length=100)] = "",
    tag_id: QId = None,
    owner_id: QId = None,
    store_id: QId = None,
    last_purchase_before_days: QDays = None,
    last_purchase_within_days: QDays = None,
    min_spent_cents: QCents = None,
    max_spent_cents: QCents = None,
    min_orders: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> service.CustomerFilter:
    return service.CustomerFilter(q=q, tag_id=tag_id, owner_id=owner_id, store_id=store_id,
                                  last_purchase_before_days=last_purchase_before_days,
                                  last_purchase_within_days=last_purchase_within_days,
                                  min_spent_cents=min_spent_cents, max_spent_cents=max_spent_cents, min_orders=min_orders)


Filters = Annotated[service.CustomerFilter, Depends(customer_filter)]


def _read(session: Session, customer: Customer, principal: Principal) -> CustomerRead:
    unmask = service.may_see_phone(principal)
    data = service.detail(session, customer, actor=principal, unmask=unmask)
    if unmask:
        service.audit_phone_view(session, actor=principal, customers=[customer])
    return CustomerRead.model_validate(data)


@router.get("/api/v1/admin/customers", response_model=CustomerPage)
def list_customers(session: DbSession, principal: Staff, filters: Filters,
                   cursor: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> CustomerPage:
    page = service.list_customers(session, actor=principal, filters=filters, cursor=cursor, limit=limit)
    unmask = service.may_see_phone(principal)
    items = service.summaries(session, page.items, actor=principal, unmask=unmask)
    if unmask:
        service.audit_phone_view(session, actor=principal, customers=page.items)
    return CustomerPage.model_validate({"items": items, "next_cursor": page.next_cursor})


@router.get("/api/v1/admin/customers/export.csv")
def export_customers(session: DbSession, principal: Staff, filters: Filters) -> StreamingResponse:
    rows = service.export_rows(session, actor=principal, filters=filters)
    return StreamingResponse(service.iter_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="customers.csv"'})


@router.post("/api/v1/admin/customers/bulk-tag", response_model=BulkTagResult)
def bulk_tag(body: BulkTag, session: DbSession, principal: Staff) -> BulkTagResult:
    return BulkTagResult(**service.bulk_tag(session, customer_ids=body.customer_ids, tag_ids=body.tag_ids, actor=principal))


@router.get("/api/v1/admin/customers/{customer_id}", response_model=CustomerRead)
def get_customer(customer_id: Id, session: DbSession, principal: Staff) -> CustomerRead:
    return _read(session, service.get_customer(session, customer_id, actor=principal), principal)


@router.patch("/api/v1/admin/customers/{customer_id}", response_model=CustomerRead)
def update_customer(customer_id: Id, body: CustomerUpdate, session: DbSession, principal: Staff) -> CustomerRead:
    customer = service.update_profile(session, customer_id, actor=principal, **body.model_dump(exclude_unset=True))
    return _read(session, customer, principal)


@router.post("/api/v1/admin/customers/{customer_id}/tags", response_model=CustomerRead)
def add_tags(customer_id: Id, body: TagIds, session: DbSession, principal: Staff) -> CustomerRead:
    service.add_tags(session, customer_id, tag_ids=body.tag_ids, actor=principal)
    return _read(session, service.get_customer(session, customer_id, actor=principal), principal)


@router.delete("/api/v1/admin/customers/{customer_id}/tags/{tag_id}", status_code=204)
def remove_tag(customer_id: Id, tag_id: Id, session: DbSession, principal: Staff) -> None:
    service.remove_tag(session, customer_id, tag_id=tag_id, actor=principal)


@router.post("/api/v1/admin/customers/{customer_id}/merge", response_model=CustomerRead)
def merge(customer_id: Id, body: MergeRequest, session: DbSession, principal: Staff) -> CustomerRead:
    target = service.merge_customers(session, source_id=body.source_id, target_id=customer_id, actor=principal)
    return _read(session, target, principal)


@router.get("/api/v1/admin/tag-groups")
def list_tag_groups(session: DbSession, principal: Staff) -> dict:
    groups = service.list_tag_groups(session, actor=principal)
    return {"items": [TagGroupRead(id=g.id, name=g.name, tags=[TagRead.model_validate(t) for t in tags])
                      for g, tags in groups]}


@router.post("/api/v1/admin/tag-groups", response_model=TagGroupRead, status_code=201)
def create_tag_group(body: TagGroupCreate, session: DbSession, principal: Staff) -> TagGroupRead:
    group = service.create_tag_group(session, actor=principal, name=body.name)
    return TagGroupRead(id=group.id, name=group.name, tags=[])


@router.post("/api/v1/admin/tags", response_model=TagRead, status_code=201)
def create_tag(body: TagCreate, session: DbSession, principal: Staff) -> TagRead:
    return TagRead.model_validate(service.create_tag(session, actor=principal, group_id=body.group_id, name=body.name))


# ---------------------------------------------------------------- shop


@router.post("/api/v1/shop/{m}/auth/dev-login", response_model=ShopToken)
def dev_login(body: DevLogin, request: Request, merchant: ShopMerchant, session: DbSession) -> ShopToken:
    customer, raw = signin.dev_login(session, merchant_id=merchant.id, openid=body.openid, nickname=body.nickname,
                                     visitor_id=visitor_id_of(request))
    return ShopToken(access_token=raw, customer={"id": customer.id})


@router.post("/api/v1/shop/{m}/auth/wechat", response_model=ShopToken)
def wechat_login(body: WechatLogin, request: Request, merchant: ShopMerchant, session: DbSession) -> ShopToken:
    customer, raw = signin.wechat_login(session, merchant_id=merchant.id, code=body.code,
                                        visitor_id=visitor_id_of(request))
    return ShopToken(access_token=raw, customer={"id": customer.id})


def _me(session: Session, principal: Principal) -> MeRead:
    c = service.own_customer(session, actor=principal)
    return MeRead(id=c.id, nickname=c.nickname, name=c.name, gender=c.gender, birthday=c.birthday, region=c.region,
                  avatar_url=c.avatar_url, phone=mask_phone(c.phone))


@router.get("/api/v1/shop/{m}/me", response_model=MeRead)
def me(session: DbSession, principal: ShopCustomer) -> MeRead:
    return _me(session, principal)


@router.patch("/api/v1/shop/{m}/me", response_model=MeRead)
def update_me(body: OwnProfileUpdate, session: DbSession, principal: ShopCustomer) -> MeRead:
    service.update_own_profile(session, actor=principal, **body.model_dump(exclude_unset=True))
    return _me(session, principal)
