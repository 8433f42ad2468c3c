"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — request and response models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints


class Tier(BaseModel):
    min_participants: Annotated[int, Field(ge=0, le=1_000_000)]
    price_cents: Annotated[int, Field(gt=0, le=10**9)]


class LadderBody(BaseModel):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    sku_id: Annotated[int, Field(gt=0, le=2**53)]
    tiers: Annotated[list[Tier], Field(min_length=2, max_length=10)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    per_customer_limit: Annotated[int, Field(ge=1, le=999)] | None = None
    allow_coupons: bool = False
    allow_member_discount: bool = False
