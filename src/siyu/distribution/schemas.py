"""Request and response shapes of the distribution API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=1, le=10**11)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    min_settled_sales_cents: Annotated[int, Field(ge=0, le=10**11)] = 0
    min_team_size: Annotated[int, Field(ge=0, le=10**6)] = 0


class ProgrammeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    enrolment_mode: Literal["anyone", "first_purchase", "approval", "invitation"] | None = None
    levels: Annotated[int, Field(ge=1, le=3)] | None = None
    allow_third_level: bool | None = None
    self_purchase: bool | None = None
    min_withdrawal_cents: Cents | None = None
    daily_withdrawal_limit_cents: Cents | None = None
    upline_changes_per_30_days: Annotated[int, Field(ge=0, le=100)] | None = None
    payout_method: Literal["sandbox", "wechatpay"] | None = None
    grades: list[GradeIn] | None = None


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audience: Literal["distributor", "guide"] = "distributor"
    scope: Literal["product", "category", "grade", "default", "store", "guide"]
    scope_id: Id | None = None
    grade: Annotated[str, StringConstraints(max_length=20)] | None = None
    level: Annotated[int, Field(ge=1, le=3)] = 1
    kind: Literal["bps", "fixed"]
    value: Annotated[int, Field(ge=0, le=10**9)]
    status: Literal["active", "draft"] = "active"


class RuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    audience: str
    status: str
    scope: str
    scope_id: int | None
    grade: str | None
    level: int
    kind: str
    value: int


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: Annotated[int, Field(ge=1, le=365)] = 30
    # A draft given inline; without it the stored draft rules are used.
    rules: list[RuleIn] | None = Field(default=None, max_length=500)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = ""


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "frozen", "removed"]
    reason: Reason = ""


class GradeSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]


class UplineSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upline_id: Id | None = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invite_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None = None
    note: Reason = ""


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Cents


def distributor_read(d: Any) -> dict[str, Any]:
    return {"id": d.id, "customer_id": d.customer_id, "nickname": d.nickname, "status": d.status, "grade": d.grade,
            "upline_id": d.upline_id, "invite_code": d.invite_code, "team_size": d.team_size,
            "settled_sales_cents": d.settled_sales_cents, "note": d.note,
            "applied_at": d.applied_at.isoformat() if d.applied_at else None,
            "joined_at": d.joined_at.isoformat() if d.joined_at else None}


def commission_read(c: Any) -> dict[str, Any]:
    return {"id": c.id, "order_id": c.order_id, "order_no": c.order_no, "order_line_id": c.order_line_id,
            "customer_id": c.customer_id, "beneficiary_type": c.beneficiary_type, "beneficiary_id": c.beneficiary_id,
            "level": c.level, "grade": c.grade, "product_id": c.product_id, "title": c.title, "quantity": c.quantity,
            "base_cents": c.base_cents, "amount_cents": c.amount_cents, "reversed_cents": c.reversed_cents,
            "reversed_quantity": c.reversed_quantity, "status": c.status, "rule": c.rule,
            "settle_after": c.settle_after.isoformat() if c.settle_after else None,
            "settled_at": c.settled_at.isoformat() if c.settled_at else None, "created_at": c.created_at.isoformat()}


def withdrawal_read(w: Any) -> dict[str, Any]:
    return {"id": w.id, "distributor_id": w.distributor_id, "amount_cents": w.amount_cents, "status": w.status,
            "method": w.method, "reason": w.reason, "provider_ref": w.provider_ref,
            "requested_on": w.requested_on.isoformat(), "created_at": w.created_at.isoformat(),
            "reviewed_at": w.reviewed_at.isoformat() if w.reviewed_at else None,
            "paid_at": w.paid_at.isoformat() if w.paid_at else None}
