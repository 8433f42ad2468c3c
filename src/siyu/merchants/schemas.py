from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from siyu.core.auth import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60, pattern=r"^[A-Za-z0-9_.\-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=30, pattern=r"^[0-9+\- ]*$")]
Id = Annotated[int, Field(gt=0, le=2**53)]


class TokenRequest(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StaffBrief(BaseModel):
    id: int
    role: Role
    merchant_id: int


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    staff: StaffBrief


class StoreCreate(BaseModel):
    name: Name
    address: Text300 = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    opening_hours: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    phone: Phone = ""
    agent_id: Id | None = None


class StoreUpdate(BaseModel):
    name: Name | None = None
    address: Text300 | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    opening_hours: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    phone: Phone | None = None
    agent_id: Id | None = None
    active: bool | None = None


class StoreRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    lat: float | None = None
    lng: float | None = None
    opening_hours: str
    phone: str
    agent_id: int | None
    active: bool
    distance_m: int | None = None


class AgentCreate(BaseModel):
    name: Name
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    region: str


class StaffCreate(BaseModel):
    username: Username
    password: Password
    name: Name
    role: Role
    phone: Phone = ""
    store_id: Id | None = None
    agent_id: Id | None = None


class StaffUpdate(BaseModel):
    name: Name | None = None
    phone: Phone | None = None
    password: Password | None = None
    store_id: Id | None = None


class StaffDisable(BaseModel):
    """Where the leaver's customers go (离职继承); no body: round-robin across the store's guides."""

    transfer_mode: Literal["round_robin", "manager", "colleague"] = "round_robin"
    transfer_to_id: Id | None = None


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    name: str
    phone: str
    role: Role
    store_id: int | None
    agent_id: int | None
    active: bool
    created_at: dt.datetime


class ApiTokenCreate(BaseModel):
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class MerchantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str


class MerchantUpdate(BaseModel):
    """The merchant's name and the settings edited as named fields. An empty secret keeps the one set."""

    name: Name | None = None
    wechat_miniprogram_appid: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40,
                                                               pattern=r"^[A-Za-z0-9_]*$")] | None = None
    wechat_miniprogram_secret: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64,
                                                                pattern=r"^[A-Za-z0-9_]*$")] | None = None
    protection_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class MerchantSettingsRead(BaseModel):
    id: int
    slug: str
    name: str
    wechat_miniprogram_appid: str
    wechat_miniprogram_secret_set: bool
    protection_days: int


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime
