"""REST routes for auth, the org tree and staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.core.auth import Role
from siyu.core.web import DbSession
from siyu.merchants import service
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.merchants.models import Store
from siyu.merchants.schemas import (
    AgentCreate,
    AgentRead,
    ApiTokenCreate,
    ApiTokenRead,
    Id,
    MerchantRead,
    MerchantSettingsRead,
    MerchantUpdate,
    StaffBrief,
    StaffCreate,
    StaffDisable,
    StaffRead,
    StaffUpdate,
    StoreCreate,
    StoreRead,
    StoreUpdate,
    TokenRequest,
    TokenResponse,
)

router = APIRouter(tags=["merchants"])


def store_read(store: Store, distance_m: int | None = None) -> StoreRead:
    return StoreRead(id=store.id, name=store.name, address=store.address, lat=store.latitude, lng=store.longitude,
                     opening_hours=store.opening_hours, phone=store.phone, agent_id=store.agent_id,
                     active=store.active, distance_m=distance_m)


@router.post("/api/v1/admin/auth/token", response_model=TokenResponse)
def create_token(body: TokenRequest, session: DbSession) -> TokenResponse:
    staff = service.authenticate(session, username=body.username, password=body.password)
    raw, _ = service.issue_token(session, staff, kind="api", label="")
    return TokenResponse(access_token=raw, staff=StaffBrief(id=staff.id, role=staff.role, merchant_id=staff.merchant_id))


@router.get("/api/v1/admin/me", response_model=StaffRead)
def me(session: DbSession, principal: Staff) -> StaffRead:
    return StaffRead.model_validate(service.get_staff(session, principal.subject_id, actor=principal))


@router.get("/api/v1/admin/merchant", response_model=MerchantRead)
def merchant(session: DbSession, principal: Staff) -> MerchantRead:
    return MerchantRead.model_validate(service.get_merchant(session, principal.merchant_id))


def merchant_settings_read(merchant) -> MerchantSettingsRead:
    return MerchantSettingsRead(id=merchant.id, slug=merchant.slug, name=merchant.name, **service.public_settings(merchant))


@router.get("/api/v1/admin/merchant/settings", response_model=MerchantSettingsRead)
def merchant_settings(session: DbSession, principal: Staff) -> MerchantSettingsRead:
    principal.require("merchant.manage")
    return merchant_settings_read(service.get_merchant(session, principal.merchant_id))


@router.patch("/api/v1/admin/merchant/settings", response_model=MerchantSettingsRead)
def update_merchant_settings(body: MerchantUpdate, session: DbSession, principal: Staff) -> MerchantSettingsRead:
    """Change the name and named settings; the AppSecret is write-only (an empty one removes it)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    name = changes.pop("name", None)
    merchant = service.update_merchant(session, actor=principal, name=name, settings=changes)
    return merchant_settings_read(merchant)


@router.get("/api/v1/admin/tokens")
def list_api_tokens(session: DbSession, principal: Staff) -> dict:
    return {"items": [ApiTokenRead.model_validate(t) for t in service.list_api_tokens(session, actor=principal)]}


@router.delete("/api/v1/admin/tokens/{token_id}", status_code=204)
def revoke_api_token(token_id: Id, session: DbSession, principal: Staff) -> None:
    service.revoke_api_token(session, token_id, actor=principal)


@router.post("/api/v1/admin/tokens")
def create_api_token(body: ApiTokenCreate, session: DbSession, principal: Staff) -> dict:
    staff = service.get_staff(session, principal.subject_id, actor=principal)
    raw, row = service.issue_token(session, staff, kind="api", label=body.label)
    return {"id": row.id, "access_token": raw, "label": row.label, "expires_at": row.expires_at.isoformat()}


@router.get("/api/v1/admin/agents")
def list_agents(session: DbSession, principal: Staff) -> dict:
    return {"items": [AgentRead.model_validate(a) for a in service.list_agents(session, actor=principal)]}


@router.post("/api/v1/admin/agents", response_model=AgentRead, status_code=201)
def create_agent(body: AgentCreate, session: DbSession, principal: Staff) -> AgentRead:
    return AgentRead.model_validate(service.create_agent(session, actor=principal, name=body.name, region=body.region))


@router.get("/api/v1/admin/stores")
def list_stores(session: DbSession, principal: Staff) -> dict:
    return {"items": [store_read(s) for s in service.list_stores(session, actor=principal)]}


@router.post("/api/v1/admin/stores", response_model=StoreRead, status_code=201)
def create_store(body: StoreCreate, session: DbSession, principal: Staff) -> StoreRead:
    return store_read(service.create_store(session, actor=principal, **body.model_dump()))


@router.get("/api/v1/admin/stores/{store_id}", response_model=StoreRead)
def get_store(store_id: Id, session: DbSession, principal: Staff) -> StoreRead:
    return store_read(service.get_store(session, store_id, actor=principal))


@router.patch("/api/v1/admin/stores/{store_id}", response_model=StoreRead)
def update_store(store_id: Id, body: StoreUpdate, session: DbSession, principal: Staff) -> StoreRead:
    return store_read(service.update_store(session, store_id, actor=principal, **body.model_dump(exclude_unset=True)))


@router.get("/api/v1/admin/staff")
def list_staff(session: DbSession, principal: Staff,
               role: Role | None = None,
               store_id: Annotated[int | None, Query(gt=0, le=2**53)] = None) -> dict:
    rows = service.list_staff(session, actor=principal, role=role, store_id=store_id)
    return {"items": [StaffRead.model_validate(s) for s in rows]}


@router.post("/api/v1/admin/staff", response_model=StaffRead, status_code=201)
def create_staff(body: StaffCreate, session: DbSession, principal: Staff) -> StaffRead:
    return StaffRead.model_validate(service.create_staff(session, actor=principal, **body.model_dump()))


@router.get("/api/v1/admin/staff/{staff_id}", response_model=StaffRead)
def get_staff(staff_id: Id, session: DbSession, principal: Staff) -> StaffRead:
    return StaffRead.model_validate(service.get_staff(session, staff_id, actor=principal))


@router.patch("/api/v1/admin/staff/{staff_id}", response_model=StaffRead)
def update_staff(staff_id: Id, body: StaffUpdate, session: DbSession, principal: Staff) -> StaffRead:
    return StaffRead.model_validate(service.update_staff(session, staff_id, actor=principal, **body.model_dump(exclude_unset=True)))


@router.post("/api/v1/admin/staff/{staff_id}/disable", response_model=StaffRead)
def disable_staff(staff_id: Id, session: DbSession, principal: Staff, body: StaffDisable | None = None) -> StaffRead:
    choice = body or StaffDisable()
    return StaffRead.model_validate(service.disable_staff(session, staff_id, actor=principal,
                                                         transfer_mode=choice.transfer_mode,
                                                         transfer_to_id=choice.transfer_to_id))


@router.post("/api/v1/admin/staff/{staff_id}/enable", response_model=StaffRead)
def enable_staff(staff_id: Id, session: DbSession, principal: Staff) -> StaffRead:
    return StaffRead.model_validate(service.enable_staff(session, staff_id, actor=principal))


@router.get("/api/v1/shop/{m}/stores")
def shop_stores(merchant: ShopMerchant, session: DbSession,
                lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
                lng: Annotated[float | None, Query(ge=-180, le=180)] = None) -> dict:
    pairs = service.stores_for_shop(session, merchant_id=merchant.id, lat=lat, lng=lng)
    items = []
    for store, distance in pairs:
        item = {"id": store.id, "name": store.name, "address": store.address, "lat": store.latitude,
                "lng": store.longitude, "opening_hours": store.opening_hours, "phone": store.phone}
        if distance is not None:
            item["distance_m"] = distance
        items.append(item)
    return {"items": items}
