"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(gt=0, le=2**31 - 1)]


class TeamBuySkuIn(BaseModel):
    sku_id: Id
    team_price_cents: Cents


class TeamBuyIn(BaseModel):
    """A team-buy campaign as staff write it: SKUs of one product at team prices, the team size, how
    long a team has to fill once opened, the per-customer limit (teams joined) and the window."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    skus: Annotated[list[TeamBuySkuIn], Field(min_length=1, max_length=30)]
    team_size: Annotated[int, Field(ge=2, le=50)]
    time_limit_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = 24 * 60
    per_customer_limit: Annotated[int, Field(ge=1, le=999)] | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    on_full: Literal["refund", "new_team"] = "refund"
    allow_coupons: bool = False
    allow_member_discount: bool = False
    # Lucky draw (off by default): on completion `lucky_winners` members drawn at random get the goods,
    # the others are refunded. 1 ≤ lucky_winners < team_size.
    lucky_draw: bool = False
    lucky_winners: Annotated[int, Field(ge=1, le=49)] | None = None

    @model_validator(mode="after")
    def _window(self) -> TeamBuyIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.lucky_draw and (self.lucky_winners is None or self.lucky_winners >= self.team_size):
            raise ValueError("lucky_winners must be at least 1 and fewer than team_size")
        if not self.lucky_draw:
            self.lucky_winners = None
        if len({s.sku_id for s in self.skus}) != len(self.skus):
            raise ValueError("each SKU once")
        return self


TeamBuyAction = Literal["schedule", "unschedule", "pause", "resume", "end"]
