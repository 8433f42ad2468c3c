"""The merchant's order settings: expiry of unpaid orders, auto-complete, after-sales window and
shipping rules. Stored in the merchant's settings; other domains read them through these functions."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.merchants import service as merchants
from siyu.orders import pricing
from siyu.orders.service.common import settings_from


def get_order_settings(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """{order_expiry_minutes, auto_complete_days, after_sales_days, shipping: {flat_cents,
    free_over_cents, provinces: {name: {flat_cents, free_over_cents}}}}."""
    raw = merchants.get_merchant(session, merchant_id).settings or {}
    return {**dataclasses.asdict(settings_from(raw)), "shipping": pricing.shipping_rules(raw).as_settings()}


def update_order_settings(session: Session, *, actor: Principal, order_expiry_minutes: int | None = None,
                          auto_complete_days: int | None = None, after_sales_days: int | None = None,
                          shipping: dict[str, Any] | None = None) -> dict[str, Any]:
    """Change some of the order settings (brand admin). Values are validated by the API schema."""
    actor.require("merchant.manage")
    changes: dict[str, Any] = {}
    for key, value in (("order_expiry_minutes", order_expiry_minutes), ("auto_complete_days", auto_complete_days),
                       ("after_sales_days", after_sales_days)):
        if value is not None:
            changes[key] = value
    if shipping is not None:
        changes["shipping"] = pricing.shipping_rules({"shipping": shipping}).as_settings()
    if changes:
        merchants.update_merchant(session, actor=actor, settings=changes)
    return get_order_settings(session, merchant_id=actor.merchant_id)
