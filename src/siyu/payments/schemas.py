"""API shapes of payments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[int, Field(gt=0, le=2**53)]
PaymentStatusName = Literal["created", "succeeded", "closed", "failed"]
MethodName = Literal["sandbox", "wechatpay", "balance"]


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    order_no: str
    customer_id: int
    method: str
    status: str
    amount_cents: int
    refunded_cents: int
    # "none", "partly_refunded" or "refunded", derived from refunded_cents.
    refund_state: str
    out_trade_no: str
    provider_txn_id: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    paid_at: dt.datetime | None
    closed_at: dt.datetime | None


class RefundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    payment_id: int
    amount_cents: int
    status: str
    out_refund_no: str
    reason: str
    provider_refund_id: str | None
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    provider: str
    notification_id: str | None
    claimed_id: str | None
    duplicate_of_id: int | None
    kind: str | None
    verified: bool
    outcome: str
    error: str | None
    headers: dict[str, Any]
    body: str
    received_at: dt.datetime


class PaymentDetail(PaymentRead):
    refunds: list[RefundRead]
    notifications: list[NotificationRead]


class PaymentPage(BaseModel):
    items: list[PaymentRead]
    next_cursor: str | None


class SandboxConfirmResult(BaseModel):
    payment_id: int
    status: str
