"""Factories for membership: tiers, members (activated cards) and points."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from siyu.core.auth import Principal, system_principal
from siyu.customers.models import Customer
from siyu.membership.models.members import Member, MembershipConfig, Tier
from siyu.membership.service import members as members_service
from siyu.membership.service import points as points_service
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer

_seq = itertools.count(1)


def set_rules(session: Session, *, merchant: Merchant, **rules: int) -> None:
    """Set membership rules directly (defaults for the rest)."""
    from sqlalchemy import select

    row = session.scalars(select(MembershipConfig).where(MembershipConfig.merchant_id == merchant.id)).first()
    if row is None:
        row = MembershipConfig(merchant_id=merchant.id, rules={})
        session.add(row)
    row.rules = {**(row.rules or {}), **rules}
    session.flush()


def make_tier(session: Session, *, merchant: Merchant, name: str | None = None, growth_threshold: int = 0,
              discount_bps: int = 0, points_multiplier_bps: int = 10_000, free_shipping: bool = False,
              birthday_points: int = 0, **extra: Any) -> Tier:
    tier = Tier(merchant_id=merchant.id, name=name or f"等级{next(_seq)}", growth_threshold=growth_threshold,
                discount_bps=discount_bps, points_multiplier_bps=points_multiplier_bps, free_shipping=free_shipping,
                birthday_points=birthday_points, discount_product_ids=extra.pop("discount_product_ids", []),
                discount_category_ids=extra.pop("discount_category_ids", []), active=extra.pop("active", True))
    session.add(tier)
    session.flush()
    return tier


def customer_actor(customer: Customer) -> Principal:
    return Principal(merchant_id=customer.merchant_id, kind="customer", subject_id=customer.id, name=customer.nickname)


def make_member(session: Session, *, merchant: Merchant, customer: Customer | None = None, phone: str | None = None,
                birthday: str | None = None, name: str = "", points: int = 0) -> Member:
    """A customer with an activated member card (through the service), optionally with `points`
    earned as one lot."""
    customer = customer or make_customer(session, merchant=merchant, nickname=f"会员{next(_seq)}")
    n = next(_seq)
    member = members_service.activate(session, actor=customer_actor(customer),
                                      phone=phone or f"139{customer.id % 10**8:08d}", birthday=birthday, name=name)
    if points:
        points_service.earn(session, merchant_id=merchant.id, customer_id=customer.id, points=points, reason="adjust",
                            key=f"test:{customer.id}:{n}", note="test")
    return member


def system(merchant: Merchant) -> Principal:
    return system_principal(merchant.id)
