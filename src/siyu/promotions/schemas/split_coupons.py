"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=10**10)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Action = Literal["publish", "pause", "resume", "end"]


class SplitCampaignBody(BaseModel):
    name: Name
    template_id: Id
    pool_amount_cents: Annotated[int, Field(ge=1, le=10**9)]
    team_size: Annotated[int, Field(ge=2, le=50)]
    split_mode: Literal["equal", "random"] = "equal"
    floor_cents: Cents = 0
    fill_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] = 1440
    max_opens_per_customer: Annotated[int, Field(ge=0, le=1000)] = 1
    max_joins_per_customer: Annotated[int, Field(ge=0, le=1000)] = 0
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class StatusBody(BaseModel):
    action: Action


class OpenPoolBody(BaseModel):
    campaign_id: Id
