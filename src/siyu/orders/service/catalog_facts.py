"""The one place orders reads the catalogue: SKUs with product, price, status and stock, loaded once."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.catalog.service import SkuInfo

SkuFacts = SkuInfo


def load_skus(session: Session, *, merchant_id: int, sku_ids: Iterable[int]) -> dict[int, SkuInfo]:
    return catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=list(sku_ids))


def category_of(info: SkuInfo) -> int | None:
    return info.category_id
