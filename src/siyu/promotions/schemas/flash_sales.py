"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — request and response models."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator

Id = Annotated[int, Field(gt=0, le=2**53)]


class FlashSaleItemBody(BaseModel):
    sku_id: Id
    flash_price_cents: Annotated[int, Field(ge=0, le=2**31 - 1)]
    allocation: Annotated[int, Field(ge=1, le=1_000_000)]
    per_customer_limit: Annotated[int, Field(ge=1, le=999)] | None = None


class FlashSaleBody(BaseModel):
    """Create or edit a campaign (times with their offset; items replace the campaign's items)."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    allow_coupons: bool = False
    allow_member_discount: bool = False
    items: Annotated[list[FlashSaleItemBody], Field(min_length=1, max_length=50)]

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _sane_year(cls, value: dt.datetime) -> dt.datetime:
        if not 2000 <= value.year <= 2200:
            raise ValueError("a year between 2000 and 2200")
        return value.astimezone(dt.UTC)
