from __future__ import annotations

import pytest

from siyu.catalog import service
from siyu.catalog.states import TRANSITIONS, ProductStatus, assert_transition
from siyu.core.auth import system_principal
from siyu.core.errors import Conflict
from siyu.ledger import service as ledger
from tests.factories.catalog import make_product
from tests.factories.merchants import make_merchant


def test_status_table():
    assert_transition("draft", "on_sale")
    assert_transition("on_sale", "off_sale")
    assert_transition("off_sale", "on_sale")
    assert_transition("on_sale", "on_sale")
    with pytest.raises(Conflict):
        assert_transition("on_sale", "draft")
    with pytest.raises(Conflict):
        assert_transition("off_sale", "draft")
    assert set(TRANSITIONS) == set(ProductStatus)


def test_low_stock_and_counts(db):
    m = make_merchant(db)
    low = make_product(db, merchant=m, title="少", skus=[{"spec": {"色": "红"}, "price_cents": 1, "stock": 2},
                                                         {"spec": {"色": "蓝"}, "price_cents": 1, "stock": 0},
                                                         {"spec": {"色": "绿"}, "price_cents": 1, "stock": 50}])
    make_product(db, merchant=m, title="草稿", status="draft", stock=0)
    make_product(db, merchant=m, title="多", stock=100)
    other = make_merchant(db)
    make_product(db, merchant=other, stock=0)
    rows = service.low_stock_skus(db, merchant_id=m.id, threshold=5)
    assert [(r["title"], r["spec"], r["stock"]) for r in rows] == [("少", {"色": "蓝"}, 0), ("少", {"色": "红"}, 2)]
    assert rows[0]["product_id"] == low.id
    assert service.low_stock_skus(db, merchant_id=m.id, threshold=5, limit=1)[0]["stock"] == 0
    assert service.count_products(db, merchant_id=m.id) == 3
    assert service.count_products(db, merchant_id=m.id, status="on_sale") == 2
    assert service.count_products(db, merchant_id=m.id, status="draft") == 1


def test_get_skus_for_checkout(db):
    m = make_merchant(db)
    product = make_product(db, merchant=m, title="杯子", images=["/media/1/c.png"],
                           skus=[{"spec": {"色": "白"}, "price_cents": 1200, "list_price_cents": 1500, "stock": 4},
                                 {"spec": {"色": "黑"}, "price_cents": 1300, "active": False}])
    view = service.product_view(db, product)
    white, black = view.skus
    other = make_product(db, merchant=make_merchant(db))
    other_sku = service.product_view(db, other).skus[0]
    infos = service.get_skus_for_checkout(db, merchant_id=m.id, sku_ids=[white.id, black.id, other_sku.id, -1])
    assert set(infos) == {white.id, black.id}
    info = infos[white.id]
    assert (info.title, info.spec, info.spec_text, info.price_cents, info.list_price_cents, info.stock) == \
        ("杯子", {"色": "白"}, "白", 1200, 1500, 4)
    assert info.image == "/media/1/c.png" and info.product_status == "on_sale"
    assert info.sellable and not infos[black.id].sellable
    assert service.get_skus_for_checkout(db, merchant_id=m.id, sku_ids=[]) == {}


def test_post_stock_maps_to_out_of_stock_and_replays(db):
    m = make_merchant(db)
    sku = service.product_view(db, make_product(db, merchant=m, stock=2)).skus[0]
    entry = service.post_stock(db, merchant_id=m.id, sku_id=sku.id, delta=-2, reason="order_reserve",
                               idempotency_key="order:1:sku", ref_type="order", ref_id=1)
    assert entry.balance_after == 0
    again = service.post_stock(db, merchant_id=m.id, sku_id=sku.id, delta=-2, reason="order_reserve",
                               idempotency_key="order:1:sku", ref_type="order", ref_id=1)
    assert again.id == entry.id
    with pytest.raises(service.OutOfStock) as exc:
        service.post_stock(db, merchant_id=m.id, sku_id=sku.id, delta=-1, reason="order_reserve",
                           idempotency_key="order:2:sku")
    assert exc.value.code == "out_of_stock" and exc.value.status_code == 409
    assert ledger.balance(db, merchant_id=m.id, kind="stock", owner_type="sku", owner_id=sku.id) == 0


def test_change_status_needs_permission_and_table(db):
    from siyu.core.auth import Principal, Role
    from siyu.core.errors import PermissionDenied

    m = make_merchant(db)
    product = make_product(db, merchant=m, status="draft")
    guide = Principal(merchant_id=m.id, kind="staff", subject_id=1, role=Role.GUIDE)
    with pytest.raises(PermissionDenied):
        service.change_status(db, product.id, actor=guide, status="on_sale")
    service.change_status(db, product.id, actor=system_principal(m.id), status="on_sale")
    assert product.status == "on_sale"
    with pytest.raises(Conflict):
        service.change_status(db, product.id, actor=system_principal(m.id), status="draft")
