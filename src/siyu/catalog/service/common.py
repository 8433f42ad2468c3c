"""Lookups and helpers shared by the catalogue's use cases."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.catalog.models import Product, Sku
from siyu.core.auth import Principal, get_scoped

# Stock is the ledger balance of this kind for owner ("sku", sku.id).
STOCK_KIND = "stock"
STOCK_OWNER = "sku"


def spec_key(spec: dict[str, Any]) -> str:
    """The spec as canonical text, so {"尺码": "M", "颜色": "红"} and its reordering are one SKU."""
    return ";".join(f"{k}={v}" for k, v in sorted(spec.items()))[:400]


def spec_text(spec: dict[str, Any]) -> str:
    """What people read: "红 / M" (empty for a product without spec dimensions)."""
    return " / ".join(str(v) for v in spec.values())


def get_product(session: Session, product_id: int, *, actor: Principal) -> Product:
    return get_scoped(session, Product, product_id, actor)


def get_sku(session: Session, sku_id: int, *, actor: Principal) -> Sku:
    return get_scoped(session, Sku, sku_id, actor)
