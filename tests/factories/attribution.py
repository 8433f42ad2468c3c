"""Factories for attribution: shares, touches (through record_touch, so fission edges and bindings follow) and
funnel events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.attribution.models.shares import Share, Touch
from siyu.attribution.service import funnel, shares
from siyu.customers.models import Customer
from siyu.merchants.models import Merchant, Staff


def make_share(session: Session, *, merchant: Merchant, target_type: str = "page", target_id: int = 0,
               channel: str = "chat", staff: Staff | None = None, customer: Customer | None = None,
               campaign: str | None = None) -> Share:
    """A share (reused when the same sharer, target, channel and campaign already have one)."""
    return shares.get_or_create_share(session, merchant_id=merchant.id, target_type=target_type, target_id=target_id,
                                      channel=channel, sharer_staff_id=staff.id if staff else None,
                                      sharer_customer_id=customer.id if customer else None, campaign=campaign)


def make_touch(session: Session, *, merchant: Merchant, share: Share | None = None, customer: Customer | None = None,
               visitor_id: str | None = None, channel: str | None = None, at: dt.datetime | None = None,
               **extra: Any) -> Touch:
    """A touch through record_touch: of `share` when given (its channel unless `channel`), else a direct one."""
    return shares.record_touch(session, merchant_id=merchant.id, channel=channel or (share.channel if share else "direct"),
                               customer_id=customer.id if customer else None, visitor_id=visitor_id,
                               share_code=share.code if share else None, at=at, **extra)


def make_funnel_event(session: Session, *, merchant: Merchant, kind: str = "view", customer: Customer | None = None,
                      visitor_id: str | None = None, product_id: int | None = None, order_id: int | None = None,
                      amount_cents: int = 0, at: dt.datetime | None = None) -> int:
    return funnel.record_event(session, merchant_id=merchant.id, kind=kind, customer_id=customer.id if customer else None,
                               visitor_id=visitor_id, product_id=product_id, order_id=order_id,
                               amount_cents=amount_cents, at=at)
