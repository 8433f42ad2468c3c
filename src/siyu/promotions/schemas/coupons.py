"""promotions: coupon templates and coupons — request models (responses are built in the api module)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=10**9)]
Ids = Annotated[list[Id], Field(max_length=500)]
Kind = Literal["fixed", "threshold", "percent", "free_shipping", "exchange"]
Channel = Literal["centre", "guide", "payment", "campaign", "split", "segment"]


class CouponTemplateCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    kind: Kind
    amount_cents: Cents = 0
    threshold_cents: Cents = 0
    percent_bps: Annotated[int, Field(ge=0, le=9900)] = 0
    cap_cents: Annotated[int, Field(ge=1, le=10**9)] | None = None
    exchange_sku_id: Id | None = None
    exchange_product_id: Id | None = None
    scope: Literal["all", "products", "categories"] = "all"
    scope_product_ids: Ids = []
    scope_category_ids: Ids = []
    excluded_product_ids: Ids = []
    validity: Literal["fixed", "relative"] = "fixed"
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    valid_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    total_stock: Annotated[int, Field(ge=1, le=10**8)] | None = None
    per_customer_limit: Annotated[int, Field(ge=1, le=100)] = 1
    channels: Annotated[list[Channel], Field(min_length=1, max_length=6)] = ["centre"]
    # Publish at once (active, or scheduled until its start) instead of keeping a draft.
    publish: bool = False


class CouponTemplateUpdate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    kind: Kind | None = None
    amount_cents: Cents | None = None
    threshold_cents: Cents | None = None
    percent_bps: Annotated[int, Field(ge=0, le=9900)] | None = None
    cap_cents: Annotated[int, Field(ge=1, le=10**9)] | None = None
    exchange_sku_id: Id | None = None
    exchange_product_id: Id | None = None
    scope: Literal["all", "products", "categories"] | None = None
    scope_product_ids: Ids | None = None
    scope_category_ids: Ids | None = None
    excluded_product_ids: Ids | None = None
    validity: Literal["fixed", "relative"] | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    valid_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    total_stock: Annotated[int, Field(ge=1, le=10**8)] | None = None
    per_customer_limit: Annotated[int, Field(ge=1, le=100)] | None = None
    channels: Annotated[list[Channel], Field(min_length=1, max_length=6)] | None = None


class CouponIssue(BaseModel):
    customer_ids: Annotated[list[Id], Field(min_length=1, max_length=5000)]
    channel: Literal["guide", "segment", "campaign"] = "guide"
