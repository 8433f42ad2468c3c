"""Payments, their refunds, and the log of every notification a provider sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin
from siyu.payments.states import refund_state


class Payment(IdMixin, Base):
    """One attempt to pay one order through one method. An order may have several (the customer
    switched method); starting a new one closes the earlier unpaid ones."""

    __tablename__ = "payments"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # The order is opaque here (orders sits above payments): its id and its number for descriptions.
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_no: Mapped[str] = mapped_column(String(40), default="")
    method: Mapped[str] = mapped_column(String(20))  # "sandbox", "wechatpay" or "balance"
    description: Mapped[str] = mapped_column(String(127), default="")
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # Refunds that succeeded; "refunded" and "partly refunded" are derived from it.
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default="created")
    # What the provider knows the payment by (WeChat Pay: ≤ 32 chars, unique per mchid).
    out_trade_no: Mapped[str] = mapped_column(String(32))
    provider_txn_id: Mapped[str | None] = mapped_column(String(64))
    provider_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    expires_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "out_trade_no"),
        UniqueConstraint("merchant_id", "method", "provider_txn_id"),
        Index("ix_payments_merchant_order", "merchant_id", "order_id"),
        Index("ix_payments_merchant_status", "merchant_id", "status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="refund_within_amount"),
    )

    @property
    def refund_state(self) -> str:
        return refund_state(self.amount_cents, self.refunded_cents)

    @property
    def refundable_cents(self) -> int:
        return self.amount_cents - self.refunded_cents if self.status == "succeeded" else 0


class PaymentRefund(IdMixin, Base):
    """Money given back on a payment. Pending until the provider confirms (WeChat Pay may take a
    while and then sends a REFUND notification)."""

    __tablename__ = "payment_refunds"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # The caller's idempotency key (e.g. "after_sale:12"): one refund per key.
    refund_key: Mapped[str] = mapped_column(String(200))
    out_refund_no: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200), default="")
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("merchant_id", "out_refund_no"),
        UniqueConstraint("merchant_id", "refund_key"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )


class PaymentNotification(IdMixin, Base):
    """Every notification a provider (or someone pretending to be one) sent us, accepted or not.

    `notification_id` is set only on the first verified delivery of a notification, and is unique
    per merchant and provider: a replay is logged with `duplicate_of_id` instead. `claimed_id` is
    whatever id the request carried, verified or not.
    """

    __tablename__ = "payment_notifications"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    notification_id: Mapped[str | None] = mapped_column(String(64))
    claimed_id: Mapped[str | None] = mapped_column(String(64))
    duplicate_of_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("payment_refunds.id"))
    kind: Mapped[str | None] = mapped_column(String(20))  # "paid", "refunded", "refund_failed", "other"
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # "paid", "paid_late", "refunded", "refund_failed", "duplicate", "ignored" or "rejected"
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "provider", "notification_id"),
        Index("ix_payment_notifications_merchant_received", "merchant_id", "received_at"),
    )
