"""Read models other domains use: the dashboard's alerts and counts, and checkout's SKU info."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, func, select
from sqlalchemy.orm import Session

from siyu.catalog.models import Product, Sku
from siyu.catalog.service.common import STOCK_KIND, STOCK_OWNER, spec_text
from siyu.catalog.states import ProductStatus
from siyu.core.auth import scoped, system_principal
from siyu.db import execute_core
from siyu.ledger import service as ledger


@dataclasses.dataclass(frozen=True)
class SkuInfo:
    """Everything checkout needs about one SKU, loaded once."""

    sku_id: int
    product_id: int
    title: str
    spec: dict[str, str]
    spec_text: str
    price_cents: int
    list_price_cents: int | None
    weight_g: int
    code: str
    image: str | None
    product_status: str
    active: bool
    stock: int
    category_id: int | None = None

    @property
    def sellable(self) -> bool:
        """On sale and active (stock is checked when it is taken)."""
        return self.product_status == ProductStatus.ON_SALE and self.active


@functools.cache
def _checkout_skus() -> Select[Any]:
    """The statement of `get_skus_for_checkout`, built once (every order reads it): the merchant and the
    ids as parameters. Plain columns, not the Sku and Product entities: building the ORM's row loaders for
    two whole entities was a twelfth of a flash-sale server's CPU (py-spy, bench/README.md), for one row.
    The stock comes in the same query (the ledger's balance expression: 0 without an account)."""
    merchant = bindparam("merchant_id", type_=BigInteger())
    stock = ledger.balance_expression(merchant_id=merchant, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                                      owner_id=Sku.id)
    # The system scope (`scoped` with `system_principal`): the merchant's rows, as a parameter.
    return (select(Sku.id, Sku.spec, Sku.price_cents, Sku.list_price_cents, Sku.weight_g, Sku.code, Sku.active,
                   Product.id, Product.title, Product.images, Product.status, Product.category_id, stock)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.merchant_id == merchant, Sku.id.in_(bindparam("sku_ids", expanding=True))))


def get_skus_for_checkout(session: Session, *, merchant_id: int, sku_ids: Iterable[int]) -> dict[int, SkuInfo]:
    """The merchant's SKUs among `sku_ids` (others are simply absent), with product and stock."""
    ids = [i for i in dict.fromkeys(sku_ids) if isinstance(i, int) and 0 < i < 2**62]
    if not ids:
        return {}
    rows = execute_core(session, _checkout_skus(), {"merchant_id": merchant_id, "sku_ids": ids}).all()
    return {
        sku_id: SkuInfo(sku_id=sku_id, product_id=product_id, title=title, spec=dict(spec or {}),
                        spec_text=spec_text(spec or {}), price_cents=price, list_price_cents=list_price,
                        weight_g=weight, code=code, image=(images or [None])[0], product_status=status,
                        active=active, stock=int(qty or 0), category_id=category_id)
        for (sku_id, spec, price, list_price, weight, code, active, product_id, title, images, status,
             category_id, qty) in rows
    }


def low_stock_skus(session: Session, *, merchant_id: int, threshold: int = 10, limit: int = 20) -> list[dict[str, Any]]:
    """Active SKUs of products on sale with stock at or below `threshold`, lowest first."""
    stock = ledger.balance_expression(merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                                      owner_id=Sku.id).label("stock")
    stmt = (
        select(Sku.id, Sku.product_id, Product.title, Sku.spec, stock)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.active.is_(True), Product.status == ProductStatus.ON_SALE.value, stock <= threshold)
        .order_by(stock, Sku.id)
        .limit(max(1, min(limit, 500)))
    )
    stmt = scoped(stmt, Sku, system_principal(merchant_id))
    return [{"sku_id": sid, "product_id": pid, "title": title, "spec": dict(spec or {}),
             "spec_text": spec_text(spec or {}), "stock": int(qty)}
            for sid, pid, title, spec, qty in session.execute(stmt)]


def count_products(session: Session, *, merchant_id: int, status: str | None = None) -> int:
    stmt = scoped(select(func.count()).select_from(Product), Product, system_principal(merchant_id))
    if status:
        stmt = stmt.where(Product.status == ProductStatus(status).value)
    return int(session.scalar(stmt) or 0)
