"""Request models of the group-buying API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Bps = Annotated[int, Field(ge=0, le=5000)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lng = Annotated[float, Field(ge=-180, le=180)]
Text40 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
Text80 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class LeaderApply(BaseModel):
    name: Text40
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]
    point_name: Text80
    address: Text200
    latitude: Lat
    longitude: Lng
    opening_hours: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] = ""
    compound_id: Id | None = None
    region: Text40 = ""


class LeaderApprove(BaseModel):
    route: Text40 | None = None
    commission_bps: Bps | None = None


class LeaderUpdate(BaseModel):
    route: Text40 | None = None
    commission_bps: Bps | None = None
    clear_commission: bool = False


class Reason(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class LeaderClose(BaseModel):
    move_to_leader_id: Id | None = None


class WaveItemBody(BaseModel):
    sku_id: Id
    price_cents: Annotated[int, Field(ge=0, le=10**9)]
    allocation: Annotated[int, Field(ge=1, le=10**6)]
    per_customer_limit: Annotated[int, Field(ge=1, le=999)] | None = None
    commission_bps: Bps | None = None


class WaveBody(BaseModel):
    title: Text80
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    starts_at: AwareDatetime
    cutoff_at: AwareDatetime
    delivery_date: dt.date
    items: Annotated[list[WaveItemBody], Field(min_length=1, max_length=100)]
    leader_ids: Annotated[list[Id], Field(max_length=1000)] = []
    regions: Annotated[list[Text40], Field(max_length=100)] = []
    commission_bps: Bps | None = None


class Shortage(BaseModel):
    order_line_id: Id
    quantity: Annotated[int, Field(ge=1, le=999)]


class DeliverBody(BaseModel):
    shortages: Annotated[list[Shortage], Field(max_length=2000)] = []


class CompoundBody(BaseModel):
    name: Text80
    address: Text200 = ""
    region: Text40 = ""
    latitude: Lat | None = None
    longitude: Lng | None = None
    households: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    delivery_date: dt.date | None = None
    note: Text200 = ""


class GroupBody(BaseModel):
    name: Text80
    compound_id: Id | None = None
    leader_id: Id | None = None
    owner_name: Text40 = ""
    member_count: Annotated[int, Field(ge=0, le=100_000)] = 0


class GroupMembers(BaseModel):
    member_count: Annotated[int, Field(ge=0, le=100_000)]


class RememberPoint(BaseModel):
    leader_id: Id


class VerifyCode(BaseModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8)]


class SettingsBody(BaseModel):
    search_radius_m: Annotated[int, Field(ge=100, le=50_000)] | None = None
    pickup_overdue_days: Annotated[int, Field(ge=1, le=60)] | None = None
    default_commission_bps: Bps | None = None
