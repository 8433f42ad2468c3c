"""The tenant, its org tree (brand → agents → stores) and its staff."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class Merchant(IdMixin, Base):
    __tablename__ = "merchants"

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Settings other domains read (order expiry, after-sales window …), edited in the console.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    # A merchant's own row: merchant_id is its id (so the scoping helper works on it too).
    @property
    def merchant_id(self) -> int:
        return self.id


class Agent(IdMixin, Base):
    """代理商: an optional level between the brand and its stores."""

    __tablename__ = "agents"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    region: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)


class Store(IdMixin, Base):
    __tablename__ = "stores"
    __scope__ = {"store": "id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    opening_hours: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)


class Staff(IdMixin, Base):
    __tablename__ = "staff"
    __scope__ = {"store": "store_id", "owner": "id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    # Usernames are unique across the installation: staff log in with username and password only.
    username: Mapped[str] = mapped_column(String(60), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(30), default="")
    role: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    disabled_at: Mapped[dt.datetime | None]


class StaffToken(IdMixin, Base):
    """A console session (cookie) or an API bearer token. Only the token's digest is stored."""

    __tablename__ = "staff_tokens"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "session" or "api"
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_staff_tokens_staff_active", "staff_id", "revoked_at"),)
