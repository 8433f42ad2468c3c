"""promotions: interactive pop-ups (互动营销) — request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from siyu.promotions.schemas.split_coupons import Id, Name

Path300 = Annotated[str, StringConstraints(max_length=300)]


class PopupRuleBody(BaseModel):
    name: Name
    audience: Literal["everyone", "new_visitor", "new_customer", "returning", "dormant", "tier", "tag"]
    content_kind: Literal["coupon", "link"]
    title: Name
    body: Annotated[str, StringConstraints(max_length=200)] = ""
    image_url: Path300 = ""
    priority: Annotated[int, Field(ge=0, le=10_000)] = 100
    dormant_days: Annotated[int, Field(ge=0, le=3650)] = 0
    tier_id: Id | None = None
    tag_id: Id | None = None
    template_id: Id | None = None
    link_url: Path300 = ""
    pages: Literal["all", "home", "product"] = "all"
    cap_per_day: Annotated[int, Field(ge=1, le=100)] = 1
    cap_total: Annotated[int, Field(ge=1, le=10_000)] = 3
    conversion_days: Annotated[int, Field(ge=1, le=90)] = 7
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class NextPopupQuery(BaseModel):
    page: Literal["home", "product", "other"] = "other"
