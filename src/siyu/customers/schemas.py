from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=2**31 - 1)]
Days = Annotated[int, Field(ge=1, le=36500)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagBrief(BaseModel):
    id: int
    name: str


class Stats(BaseModel):
    paid_orders: int
    total_spent_cents: int
    last_purchase_at: dt.datetime | None
    last_order_cents: int
    max_order_cents: int


class StatsFull(Stats):
    first_purchase_at: dt.datetime | None
    refunded_cents: int


class CustomerListItem(BaseModel):
    id: int
    nickname: str
    phone: str
    owner_id: int | None
    store_id: int | None
    tags: list[TagBrief]
    stats: Stats


class CustomerPage(BaseModel):
    items: list[CustomerListItem]
    next_cursor: str | None


class IdentityRead(BaseModel):
    kind: str
    value: str
    created_at: dt.datetime


class TimelineRead(BaseModel):
    id: int
    kind: str
    text: str
    details: dict
    actor_type: str
    actor_id: int | None
    actor_name: str
    created_at: dt.datetime


class Profile(BaseModel):
    nickname: str
    name: str
    gender: str
    birthday: dt.date | None
    region: str
    notes: str
    avatar_url: str
    phone: str


class CustomerRead(BaseModel):
    id: int
    nickname: str
    phone: str
    owner_id: int | None
    owner_name: str
    store_id: int | None
    store_name: str
    merged_into_id: int | None
    created_at: dt.datetime
    profile: Profile
    identities: list[IdentityRead]
    tags: list[TagBrief]
    stats: StatsFull
    timeline: list[TimelineRead]


class CustomerUpdate(Strict):
    nickname: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    name: Short | None = None
    gender: Literal["", "male", "female"] | None = None
    birthday: dt.date | None = None
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None


class OwnProfileUpdate(Strict):
    nickname: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    name: Short | None = None
    gender: Literal["", "male", "female"] | None = None
    birthday: dt.date | None = None
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    avatar_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class MeRead(BaseModel):
    id: int
    nickname: str
    name: str
    gender: str
    birthday: dt.date | None
    region: str
    avatar_url: str
    phone: str


class TagGroupCreate(Strict):
    name: TagName


class TagCreate(Strict):
    group_id: Id
    name: TagName


class TagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_id: int
    name: str


class TagGroupRead(BaseModel):
    id: int
    name: str
    tags: list[TagRead]


class TagIds(Strict):
    tag_ids: Annotated[list[Id], Field(min_length=1, max_length=50)]


class BulkTag(Strict):
    customer_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)]
    tag_ids: Annotated[list[Id], Field(min_length=1, max_length=50)]


class BulkTagResult(BaseModel):
    customers: int
    not_found: int
    added: int


class MergeRequest(Strict):
    source_id: Id


class DevLogin(BaseModel):
    openid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    nickname: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None


class WechatLogin(BaseModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class CustomerRef(BaseModel):
    id: int


class ShopToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    customer: CustomerRef
