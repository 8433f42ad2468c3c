"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=10**9)]


class BargainCampaignBody(BaseModel):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    sku_id: Id
    start_price_cents: Annotated[int, Field(gt=0, le=10**9)]
    floor_price_cents: Cents
    expected_assists: Annotated[int, Field(ge=1, le=500)]
    time_limit_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    max_bargains_per_customer: Annotated[int, Field(ge=1, le=100)] = 1
    new_customer_weight_bps: Annotated[int, Field(ge=10000, le=30000)] = 10000
    allow_buy_at_current: bool = True


class CampaignAction(BaseModel):
    action: Literal["schedule", "pause", "resume", "end", "draft"]


class StartBargain(BaseModel):
    campaign_id: Id
