"""API shapes of the channels domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


class OaQrCodeCreate(BaseModel):
    """Exactly one of the two: a store's code or a guide's code."""

    store_id: Id | None = None
    staff_id: Id | None = None


class OaQrCodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Literal["store", "guide"]
    store_id: int | None
    staff_id: int | None
    scene: str
    share_code: str | None
    ticket: str
    url: str
    label: str
    created_at: dt.datetime
    qr_png_url: str = ""


class OaQrCodeList(BaseModel):
    items: list[OaQrCodeRead]


class ContactWayWrite(BaseModel):
    staff_id: Id
    wecom_userid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    state: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] = ""
    config_id: Short = ""


class ContactWayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    staff_id: int
    store_id: int | None
    wecom_userid: str
    state: str
    config_id: str
    active: bool
    created_at: dt.datetime


class ContactWayList(BaseModel):
    items: list[ContactWayRead]


class InboundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    outcome: str
    verified: bool
    encrypted: bool
    msg_type: str
    event: str
    from_user: str
    claimed_key: str | None
    duplicate_of_id: int | None
    error: str | None
    details: dict[str, Any]
    received_at: dt.datetime


class InboundPage(BaseModel):
    items: list[InboundRead]
    next_cursor: str | None


class ChannelSettingsWrite(BaseModel):
    """Blank or missing secrets keep the ones set; name them in `clear` to remove them."""

    wechat_oa_appid: Short | None = None
    wechat_oa_secret: Short | None = None
    wechat_oa_token: Short | None = None
    wechat_oa_aes_key: Short | None = None
    wecom_corp_id: Short | None = None
    wecom_token: Short | None = None
    wecom_aes_key: Short | None = None
    clear: list[Literal["wechat_oa_secret", "wechat_oa_token", "wechat_oa_aes_key", "wecom_token",
                        "wecom_aes_key"]] = []


class ChannelSettingsRead(BaseModel):
    wechat_oa_appid: str
    wecom_corp_id: str
    wechat_oa_secret_set: bool
    wechat_oa_token_set: bool
    wechat_oa_aes_key_set: bool
    wecom_token_set: bool
    wecom_aes_key_set: bool
    oa_callback_url: str
    wecom_callback_url: str


class Figures(BaseModel):
    days: int
    subscribed: int
    unsubscribed: int
    followers_ever: int
    subscribes_recent: int
    scans_recent: int
    unsubscribes_recent: int
    wecom_adds_recent: int
    wecom_active: int
    wecom_removed: int
