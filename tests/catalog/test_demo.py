from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from siyu.catalog import demo, service
from siyu.catalog.models import Category, Product, Sku
from siyu.config import get_settings
from siyu.core.auth import Role
from siyu.core.demo import DemoContext
from siyu.ledger import service as ledger
from tests.factories.merchants import make_merchant, make_staff, principal_of


def _ctx(db, seed=7):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN)
    return merchant, DemoContext(rng=random.Random(seed), now=dt.datetime(2026, 5, 20, tzinfo=dt.UTC),
                                 merchant_id=merchant.id, admin=principal_of(db, admin), scale=0.1)


def test_demo_seed_builds_a_catalogue_that_balances(db):
    # given
    merchant, ctx = _ctx(db)
    # when
    demo.seed(db, ctx)
    # then
    products = db.scalar(select(func.count()).select_from(Product).where(Product.merchant_id == merchant.id))
    assert products == 30 == len(ctx.data["product_ids"])
    skus = list(db.scalars(select(Sku).where(Sku.merchant_id == merchant.id)))
    assert len(skus) == len(ctx.data["sku_ids"]) and 30 <= len(skus) <= 180
    per_product = {}
    for s in skus:
        per_product[s.product_id] = per_product.get(s.product_id, 0) + 1
    assert all(1 <= c <= 6 for c in per_product.values())
    tops = db.scalar(select(func.count()).select_from(Category).where(Category.merchant_id == merchant.id,
                                                                        Category.parent_id.is_(None)))
    assert tops == 12
    assert ledger.verify(db, merchant.id) == []
    stock = service.stock_of(db, merchant_id=merchant.id, sku_ids=[s.id for s in skus])
    assert all(v >= 0 for v in stock.values()) and sum(stock.values()) > 0
    product = db.get(Product, ctx.data["product_ids"][0])
    url = product.images[0]
    assert (get_settings().media_dir / url.removeprefix("/media/")).is_file()
    assert service.count_products(db, merchant_id=merchant.id, status="on_sale") == len(ctx.data["on_sale_product_ids"])


def test_demo_seed_is_deterministic(db):
    _m1, ctx1 = _ctx(db, seed=3)
    demo.seed(db, ctx1)
    _m2, ctx2 = _ctx(db, seed=3)
    demo.seed(db, ctx2)
    first = [(p.title, p.status) for p in db.scalars(select(Product).where(Product.id.in_(ctx1.data["product_ids"]))
                                                     .order_by(Product.id))]
    second = [(p.title, p.status) for p in db.scalars(select(Product).where(Product.id.in_(ctx2.data["product_ids"]))
                                                      .order_by(Product.id))]
    assert first == second
