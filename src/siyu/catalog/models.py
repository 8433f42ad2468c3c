"""Categories (two levels), products (SPU), SKUs and uploaded media. Stock is not a column: it is
the ledger balance of kind "stock" for owner ("sku", id)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core import clock
from siyu.db import Base, IdMixin


class Category(IdMixin, Base):
    """A top-level category (parent_id null) or a child of one; never deeper."""

    __tablename__ = "catalog_categories"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_categories.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Product(IdMixin, Base):
    """A product (SPU): what customers see and choose SKUs of."""

    __tablename__ = "catalog_products"

    merchant_id: Mapped[int] = mapped_column(BigInteger)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    subtitle: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # Media URLs ("/media/…"), the first is the cover.
    images: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (Index("ix_catalog_products_merchant_status", "merchant_id", "status", "id"),)


class Sku(IdMixin, Base):
    """One sellable variant of a product, e.g. {"颜色": "红", "尺码": "M"}."""

    __tablename__ = "catalog_skus"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_products.id"))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The spec as canonical text ("尺码=M;颜色=红"): one SKU per spec and product.
    spec_key: Mapped[str] = mapped_column(String(400), default="")
    price_cents: Mapped[int] = mapped_column(BigInteger)
    list_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    code: Mapped[str] = mapped_column(String(60), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    __table_args__ = (
        UniqueConstraint("product_id", "spec_key"),
        Index("ix_catalog_skus_product", "product_id", "sort_order", "id"),
    )


class MediaFile(IdMixin, Base):
    """An uploaded image, stored under settings.media_dir/<merchant_id>/ and served at /media/."""

    __tablename__ = "catalog_media"

    merchant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    path: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    original_name: Mapped[str] = mapped_column(String(200), default="")
    uploaded_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
