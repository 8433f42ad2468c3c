"""Tables of the everyone-sells programme: its settings, distributors and their upline history,
commission rules, commission rows (one per order line, beneficiary and level) and withdrawals.

Balances are not kept here: every commission account lives on the ledger (kinds in `service/accounts.py`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class Programme(IdMixin, Base):
    """One row per merchant: how people join, how many levels pay, and the withdrawal limits."""

    __tablename__ = "distribution_programmes"

    merchant_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # anyone | first_purchase | approval | invitation
    enrolment_mode: Mapped[str] = mapped_column(String(20), default="anyone")
    levels: Mapped[int] = mapped_column(Integer, default=2)
    # A third level only when the merchant explicitly allows it (never more than three).
    allow_third_level: Mapped[bool] = mapped_column(Boolean, default=False)
    self_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    min_withdrawal_cents: Mapped[int] = mapped_column(BigInteger, default=100)
    daily_withdrawal_limit_cents: Mapped[int] = mapped_column(BigInteger, default=500_000)
    # Upline changes allowed per distributor in 30 days (binding churn guard).
    upline_changes_per_30_days: Mapped[int] = mapped_column(Integer, default=1)
    # sandbox | wechatpay
    payout_method: Mapped[str] = mapped_column(String(20), default="sandbox")
    # [{code, name, min_settled_sales_cents, min_team_size}], lowest first.
    grades: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Distributor(IdMixin, Base):
    """A customer who promotes the shop. `upline_id` is the distributor who recruited them."""

    __tablename__ = "distributors"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    # pending (applied) | active | frozen | removed | rejected
    status: Mapped[str] = mapped_column(String(20))
    grade: Mapped[str] = mapped_column(String(20), default="junior")
    upline_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    invite_code: Mapped[str] = mapped_column(String(16))
    nickname: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(200), default="")
    # What grades are decided by: settled sales (base of settled commissions) and direct team size.
    settled_sales_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    team_size: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    joined_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    removed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id"),
        UniqueConstraint("merchant_id", "invite_code"),
        Index("ix_distributors_merchant_status", "merchant_id", "status", "id"),
    )


class UplineChange(IdMixin, Base):
    """Every upline set or changed: the history behind the churn guard and the team tree."""

    __tablename__ = "distribution_upline_changes"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    distributor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    old_upline_id: Mapped[int | None] = mapped_column(BigInteger)
    new_upline_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_type: Mapped[str] = mapped_column(String(20), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class CommissionRule(IdMixin, Base):
    """How much one level earns: `bps` of the line's paid amount or `fixed` cents per unit.

    `audience` is "distributor" (scopes product, category, grade, default) or "guide" (scopes guide,
    store, product, category, default). `status` is active, draft (for the simulator) or retired."""

    __tablename__ = "commission_rules"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    audience: Mapped[str] = mapped_column(String(20), default="distributor")
    status: Mapped[str] = mapped_column(String(20), default="active")
    scope: Mapped[str] = mapped_column(String(20))
    # The product, category, store or guide id; None for grade and default rules.
    scope_id: Mapped[int | None] = mapped_column(BigInteger)
    # The grade code for grade rules.
    grade: Mapped[str | None] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(10))  # bps | fixed
    value: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_commission_rules_lookup", "merchant_id", "audience", "status"),)


class Commission(IdMixin, Base):
    """What one beneficiary earns at one level on one order line, with the rule that produced it.

    pending (order paid) -> settled (after-sales window closed on a completed order); refunds move
    `reversed_cents` up (a wholly reversed row is `reversed`)."""

    __tablename__ = "commissions"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_no: Mapped[str] = mapped_column(String(32), default="")
    order_line_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    # distributor (beneficiary_id: distributor id) | guide (beneficiary_id: staff id)
    beneficiary_type: Mapped[str] = mapped_column(String(20))
    beneficiary_id: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(20), default="")
    store_id: Mapped[int | None] = mapped_column(BigInteger)
    product_id: Mapped[int] = mapped_column(BigInteger)
    category_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    base_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reversed_quantity: Mapped[int] = mapped_column(Integer, default=0)
    reversed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # When the order's after-sales window closes (set when the order completes).
    settle_after: Mapped[dt.datetime | None]
    settled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("merchant_id", "order_line_id", "beneficiary_type", "level"),
        Index("ix_commissions_order", "merchant_id", "order_id"),
        Index("ix_commissions_beneficiary", "merchant_id", "beneficiary_type", "beneficiary_id", "id"),
        Index("ix_commissions_due", "status", "settle_after"),
    )


class Withdrawal(IdMixin, Base):
    """A distributor takes settled commission out: requested -> approved -> paying -> paid, or
    rejected / failed (the money goes back to the withdrawable balance)."""

    __tablename__ = "withdrawals"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    distributor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(20))
    # The Shanghai calendar day of the request (the daily limit counts by it).
    requested_on: Mapped[dt.date] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200), default="")
    provider_ref: Mapped[str] = mapped_column(String(64), default="")
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_withdrawals_merchant_status", "merchant_id", "status", "id"),)
