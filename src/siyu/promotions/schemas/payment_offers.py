"""promotions: payment marketing (支付营销) — request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from siyu.promotions.schemas.split_coupons import Cents, Id, Name

Path300 = Annotated[str, StringConstraints(max_length=300)]


class OfferRuleBody(BaseModel):
    name: Name
    offer_kind: Literal["coupon", "gift_pack", "link"]
    priority: Annotated[int, Field(ge=0, le=10_000)] = 100
    min_paid_cents: Cents = 0
    max_paid_cents: Cents | None = None
    customer_type: Literal["any", "new", "returning"] = "any"
    tier_id: Id | None = None
    store_id: Id | None = None
    template_ids: Annotated[list[Id], Field(max_length=5)] = []
    link_url: Path300 = ""
    title: Annotated[str, StringConstraints(max_length=60)] = ""
    conversion_days: Annotated[int, Field(ge=1, le=90)] = 7
    starts_at: AwareDatetime
    ends_at: AwareDatetime
