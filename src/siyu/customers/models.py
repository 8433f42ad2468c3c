"""Customers: one person per row, reached through identities (openid, unionid, phone, visitor),
with a profile, manual tags, an owner guide and purchase stats kept current by order events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin

# "wecom_ext": a WeCom external contact (external_userid), added by a guide through WeCom.
IDENTITY_KINDS = ("openid", "unionid", "phone", "visitor", "wecom_ext")
GENDERS = ("", "male", "female")


class Customer(IdMixin, Base):
    __tablename__ = "customers"
    # Brand: all; agent admin and store manager: their stores; guide: the customers they own.
    __scope__ = {"store": "store_id", "owner": "owner_id"}

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64), default="")
    gender: Mapped[str] = mapped_column(String(10), default="")
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    region: Mapped[str] = mapped_column(String(100), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str] = mapped_column(String(500), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    # The guide who owns the relationship (staff id) and the store the customer belongs to.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    # Set on a customer merged into another: the row stays for history and is hidden from lists.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    # Purchase stats, changed only by record_paid_order / record_refund / merge_customers.
    first_purchase_at: Mapped[dt.datetime | None]
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_order_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    max_order_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_orders: Mapped[int] = mapped_column(Integer, default=0)
    # Net of refunds: what the customer paid and kept.
    total_spent_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index("ix_customers_merchant_created", "merchant_id", "created_at"),
        Index("ix_customers_merchant_phone", "merchant_id", "phone"),
        # Live customers per owner (the guide leaderboard's owned and new counts): read from the index alone.
        Index("ix_customers_owner_live", "merchant_id", "owner_id", "created_at",
              sqlite_where=sql_text("merged_into_id IS NULL"), postgresql_where=sql_text("merged_into_id IS NULL")),
    )


class CustomerIdentity(IdMixin, Base):
    """One way to recognise a customer. A value belongs to one customer of a merchant."""

    __tablename__ = "customer_identities"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "kind", "value"),)


class TagGroup(IdMixin, Base):
    __tablename__ = "customer_tag_groups"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "name"),)


class Tag(IdMixin, Base):
    __tablename__ = "customer_tag_defs"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("customer_tag_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "group_id", "name"),)


class CustomerTag(IdMixin, Base):
    """A manual tag on a customer."""

    __tablename__ = "customer_tags"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("customer_tag_defs.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("customer_id", "tag_id"),)


class CustomerTimeline(IdMixin, Base):
    """What happened to a customer and who did it; any domain may add entries (add_timeline)."""

    __tablename__ = "customer_timeline"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_type: Mapped[str] = mapped_column(String(20), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_customer_timeline_customer", "customer_id", "id"),)


class CustomerStatChange(IdMixin, Base):
    """A stat change already applied (a paid order, a refund): makes the stats functions
    idempotent per order. Not keyed by customer, so a replay after a merge is still a no-op."""

    __tablename__ = "customer_stat_changes"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    order_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))  # "paid" or "refund"
    # The refund's own id when an order has several refunds; 0 otherwise.
    ref_id: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    happened_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (UniqueConstraint("merchant_id", "order_id", "kind", "ref_id"),)


class CustomerToken(IdMixin, Base):
    """A customer's session (H5 cookie or mini-program bearer token). Only the digest is stored."""

    __tablename__ = "customer_tokens"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]

