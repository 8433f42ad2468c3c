"""WeChat channels: the official account's parametric QR codes and followers, WeCom "contact me"
states and external contacts, the history of what happened on them, the log of every inbound
callback, and the cached API access tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class OaQrCode(IdMixin, Base):
    """A permanent parametric QR code of the official account (QR_LIMIT_STR_SCENE) for a store or a
    guide. Scanning it subscribes (or, for a follower, sends SCAN) with `scene`; the scene is tied to
    the share code whose touches the scans record."""

    __tablename__ = "oa_qr_codes"
    __scope__ = {"store": "store_id", "owner": "staff_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "store" or "guide"
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # "store:<id>" or "guide:<id>": one code per store and one per guide (asking again answers it).
    target_key: Mapped[str] = mapped_column(String(40))
    # The scene string (≤ 64 chars, WeChat's limit); unique per merchant.
    scene: Mapped[str] = mapped_column(String(64))
    share_code: Mapped[str | None] = mapped_column(String(40))
    ticket: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(300))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_by_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "scene"),
        UniqueConstraint("merchant_id", "target_key"),
    )


class OaFollower(IdMixin, Base):
    """A WeChat user's subscription to the merchant's official account, by openid."""

    __tablename__ = "oa_followers"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    openid: Mapped[str] = mapped_column(String(128))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    # The QR code that brought the latest subscription (None: searched, shared card …).
    qr_code_id: Mapped[int | None] = mapped_column(ForeignKey("oa_qr_codes.id"), index=True)
    subscribe_count: Mapped[int] = mapped_column(Integer, default=1)
    first_subscribed_at: Mapped[dt.datetime]
    subscribed_at: Mapped[dt.datetime]
    unsubscribed_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "openid"),
        Index("ix_oa_followers_merchant_subscribed", "merchant_id", "subscribed"),
    )


class WecomContactWay(IdMixin, Base):
    """A guide's WeCom "contact me" configuration: the `state` WeCom echoes back when a customer adds
    the guide through it, and the guide's WeCom userid."""

    __tablename__ = "wecom_contact_ways"
    __scope__ = {"store": "store_id", "owner": "staff_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    wecom_userid: Mapped[str] = mapped_column(String(64))
    # ≤ 30 characters (WeCom's limit); unique per merchant.
    state: Mapped[str] = mapped_column(String(30))
    config_id: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "state"),
        UniqueConstraint("merchant_id", "staff_id"),
        Index("ix_wecom_contact_ways_userid", "merchant_id", "wecom_userid"),
    )


class WecomContact(IdMixin, Base):
    """A customer (WeCom external contact) in a guide's WeCom contacts."""

    __tablename__ = "wecom_contacts"
    __scope__ = {"store": "store_id", "owner": "staff_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    external_userid: Mapped[str] = mapped_column(String(128))
    wecom_userid: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    state: Mapped[str] = mapped_column(String(30), default="")
    # "active"; "deleted_by_guide" (del_external_contact); "deleted_by_customer" (del_follow_user)
    status: Mapped[str] = mapped_column(String(20), default="active")
    added_at: Mapped[dt.datetime]
    removed_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "external_userid", "wecom_userid"),
        Index("ix_wecom_contacts_merchant_status", "merchant_id", "status"),
    )


class ChannelEvent(IdMixin, Base):
    """What happened on a channel, one row per accepted callback event: subscribe, scan,
    unsubscribe (official account); add_contact, del_external_contact, del_follow_user (WeCom)."""

    __tablename__ = "channel_events"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # "oa" or "wecom"
    kind: Mapped[str] = mapped_column(String(30))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    qr_code_id: Mapped[int | None] = mapped_column(BigInteger)
    scene: Mapped[str] = mapped_column(String(64), default="")
    touch_id: Mapped[int | None] = mapped_column(BigInteger)
    inbound_id: Mapped[int | None] = mapped_column(BigInteger)
    happened_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_channel_events_merchant_happened", "merchant_id", "happened_at"),)


class InboundMessage(IdMixin, Base):
    """Every callback WeChat or WeCom (or someone pretending to be them) sent, accepted or not.

    `dedupe_key` is set only on the first verified delivery (MsgId, or FromUserName + CreateTime +
    Event for events) and is unique per merchant and channel, so a replay is logged as a duplicate
    and changes nothing."""

    __tablename__ = "wechat_inbound_messages"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    # "<timestamp>:<nonce>" of a verified delivery: a signature (which in plain mode does not cover the
    # body) is good for one message only.
    nonce_key: Mapped[str | None] = mapped_column(String(120))
    claimed_key: Mapped[str | None] = mapped_column(String(200))
    duplicate_of_id: Mapped[int | None] = mapped_column(BigInteger)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    msg_type: Mapped[str] = mapped_column(String(40), default="")
    event: Mapped[str] = mapped_column(String(60), default="")
    from_user: Mapped[str] = mapped_column(String(128), default="")
    # "processed", "duplicate", "ignored" or "rejected"
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(String(500))
    # The decrypted (or plain) message as received; the raw body for a rejected one.
    body: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "channel", "dedupe_key"),
        UniqueConstraint("merchant_id", "channel", "nonce_key"),
        Index("ix_wechat_inbound_messages_merchant_received", "merchant_id", "received_at"),
    )


class ApiAccessToken(IdMixin, Base):
    """A cached access token of the WeChat (or WeCom) API, shared by every app process."""

    __tablename__ = "wechat_access_tokens"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    # "oa:<appid>" or "wecom:<corpid>": a changed appid never reuses the old app's token.
    app_key: Mapped[str] = mapped_column(String(120))
    token: Mapped[str] = mapped_column(String(600))
    expires_at: Mapped[dt.datetime]
    fetched_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "app_key"),)
