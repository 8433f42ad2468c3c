from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from siyu.catalog import service
from siyu.catalog.models import Category, Product
from siyu.core.auth import system_principal
from siyu.merchants.models import Merchant

_seq = itertools.count(1)


def make_category(session: Session, *, merchant: Merchant, name: str | None = None,
                  parent: Category | None = None, sort_order: int = 0) -> Category:
    return service.create_category(session, actor=system_principal(merchant.id), name=name or f"分类{next(_seq)}",
                                   parent_id=parent.id if parent else None, sort_order=sort_order)


def make_product(session: Session, *, merchant: Merchant, skus: list[dict[str, Any]] | None = None,
                 status: str = "on_sale", stock: int = 10, title: str | None = None,
                 category: Category | None = None, subtitle: str = "", description: str = "",
                 images: list[str] | None = None) -> Product:
    """A product with SKUs (default: one SKU at ¥10.00); `stock` is each SKU's starting stock unless
    the SKU names its own."""
    skus = skus if skus is not None else [{"spec": {}, "price_cents": 1000}]
    skus = [{"stock": stock, **s} for s in skus]
    return service.create_product(session, actor=system_principal(merchant.id), title=title or f"商品{next(_seq)}",
                                  subtitle=subtitle, description=description, images=images or [],
                                  category_id=category.id if category else None, status=status, skus=skus)
