"""Request and response models of the catalogue API. Every field is bounded."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from siyu.catalog.states import ProductStatus

Id = Annotated[int, Field(gt=0, le=2**53)]
Cents = Annotated[int, Field(ge=0, le=2**31 - 1)]
Quantity = Annotated[int, Field(ge=0, le=2**31 - 1)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Subtitle = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=20_000)]
CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
SkuCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)]
ImageUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300,
                                            pattern=r"^(/media/|https?://)[^\s\"'<>]+$")]
SortOrder = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=r"^[a-z_]+$")]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]

MAX_SPEC_DIMENSIONS = 5
MAX_SPEC_NAME = 20
MAX_SPEC_VALUE = 40


def check_spec(value: Any) -> dict[str, str]:
    """A spec is at most 5 dimensions of short non-empty names and values."""
    if not isinstance(value, dict):
        raise ValueError("spec must be an object of dimension names to values")
    if len(value) > MAX_SPEC_DIMENSIONS:
        raise ValueError(f"at most {MAX_SPEC_DIMENSIONS} spec dimensions")
    clean: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("spec names and values must be text")
        k, v = k.strip(), v.strip()
        if not k or not v or len(k) > MAX_SPEC_NAME or len(v) > MAX_SPEC_VALUE:
            raise ValueError(f"spec names are 1–{MAX_SPEC_NAME} and values 1–{MAX_SPEC_VALUE} characters")
        clean[k] = v
    return clean


class SkuCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(default_factory=dict)
    price_cents: Cents
    list_price_cents: Cents | None = None
    weight_g: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    code: SkuCode = ""
    active: bool = True
    stock: Quantity = 0

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: Any) -> dict[str, str]:
        return check_spec(v)


class SkuUpsert(BaseModel):
    """In a product PATCH: with `id` it changes that SKU (stock is the new absolute stock), without
    it adds one."""

    model_config = ConfigDict(extra="forbid")

    id: Id | None = None
    spec: dict[str, Any] | None = None
    price_cents: Cents | None = None
    list_price_cents: Cents | None = None
    weight_g: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    code: SkuCode | None = None
    active: bool | None = None
    stock: Quantity | None = None

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: Any) -> Any:
        return None if v is None else check_spec(v)


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    subtitle: Subtitle = ""
    description: Description = ""
    images: Annotated[list[ImageUrl], Field(max_length=20)] = Field(default_factory=list)
    category_id: Id | None = None
    status: ProductStatus = ProductStatus.DRAFT
    sort_order: SortOrder = 0
    skus: Annotated[list[SkuCreate], Field(min_length=1, max_length=200)]


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    subtitle: Subtitle | None = None
    description: Description | None = None
    images: Annotated[list[ImageUrl], Field(max_length=20)] | None = None
    category_id: Id | None = None
    status: ProductStatus | None = None
    sort_order: SortOrder | None = None
    skus: Annotated[list[SkuUpsert], Field(max_length=200)] | None = None
    # Why stock changed when a SKU's stock is set here.
    reason: Reason | None = None


class SkuUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stock: Quantity | None = None
    price_cents: Cents | None = None
    list_price_cents: Cents | None = None
    weight_g: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    code: SkuCode | None = None
    active: bool | None = None
    reason: Reason | None = None
    note: Note = ""


class StockAdjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: Annotated[int, Field(ge=-(2**31 - 1), le=2**31 - 1)]
    reason: Reason
    note: Note = ""


class SkuRead(BaseModel):
    id: int
    product_id: int
    spec: dict[str, str]
    spec_text: str
    price_cents: int
    list_price_cents: int | None
    weight_g: int
    code: str
    active: bool
    stock: int


class ProductRead(BaseModel):
    id: int
    title: str
    subtitle: str
    description: str
    images: list[str]
    category_id: int | None
    status: ProductStatus
    sort_order: int
    price_cents: int | None
    stock: int
    created_at: dt.datetime
    updated_at: dt.datetime
    skus: list[SkuRead]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CategoryName
    parent_id: Id | None = None
    sort_order: SortOrder = 0


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CategoryName | None = None
    parent_id: Id | None = None
    sort_order: SortOrder | None = None


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    parent_id: int | None
    sort_order: int


class StockEntryRead(BaseModel):
    id: int
    delta: int
    balance_after: int
    reason: str
    note: str
    actor_type: str
    actor_id: int | None
    created_at: dt.datetime


class MediaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    content_type: str
    size_bytes: int
    width: int
    height: int
