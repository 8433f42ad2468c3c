from __future__ import annotations

from sqlalchemy import func, select

from siyu.catalog import service
from siyu.catalog.models import Category, Product, Sku
from siyu.core.auth import system_principal
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerEntry
from tests.factories.catalog import make_product

CSV = """title,category,subtitle,price,list_price,stock,spec,sku_code,status
T恤,服装/上衣,舒适,59.90,79,10,颜色:红;尺码:M,T-R-M,on_sale
T恤,服装/上衣,,59.90,,5,颜色:蓝;尺码:M,T-B-M,
帽子,配饰,,abc,,1,,,draft
帽子,配饰,,20,,1,颜色:黑,,draft
围巾,配饰,,30,,-2,,,
袜子,,,9.9,,100,,,off_sale
杯子,,,12,,3,颜色:白,DUP,
杯子,,,12,,3,颜色:白,,
"""


def _count(db, model, merchant_id):
    return db.scalar(select(func.count()).select_from(model).where(model.merchant_id == merchant_id))


def test_import_good_rows_land_and_bad_rows_are_reported(db, shop):
    # when
    report = service.import_products_csv(db, actor=system_principal(shop.merchant.id), data=CSV.encode())
    # then good products landed
    m = shop.merchant.id
    assert (report.products_created, report.products_failed) == (2, 3)
    titles = set(db.scalars(select(Product.title).where(Product.merchant_id == m)))
    assert titles == {"T恤", "袜子"}
    tee = db.scalars(select(Product).where(Product.merchant_id == m, Product.title == "T恤")).one()
    assert tee.status == "on_sale" and tee.subtitle == "舒适"
    skus = list(db.scalars(select(Sku).where(Sku.product_id == tee.id).order_by(Sku.id)))
    assert [(s.spec, s.price_cents, s.list_price_cents, s.code) for s in skus] == [
        ({"颜色": "红", "尺码": "M"}, 5990, 7900, "T-R-M"), ({"颜色": "蓝", "尺码": "M"}, 5990, None, "T-B-M")]
    assert ledger.balances(db, merchant_id=m, kind="stock", owner_type="sku", owner_ids=[s.id for s in skus]) == \
        {skus[0].id: 10, skus[1].id: 5}
    child = db.get(Category, tee.category_id)
    assert child.name == "上衣" and db.get(Category, child.parent_id).name == "服装"
    # the bad rows are reported by line, and their products were not half-written
    by_line = {r.line: r for r in report.rows}
    assert [by_line[n].ok for n in range(2, 10)] == [True, True, False, False, False, True, False, False]
    assert "price" in by_line[4].message
    assert by_line[5].message  # the good row of a bad product says why it was skipped
    assert "stock" in by_line[6].message
    assert by_line[8].message and by_line[9].message  # duplicate spec within 杯子
    # the category of a failed product is not left behind
    assert db.scalar(select(Category.id).where(Category.merchant_id == m, Category.name == "配饰")) is None
    assert ledger.verify(db, m) == []
    entries = db.scalars(select(LedgerEntry.reason).where(LedgerEntry.merchant_id == m)).all()
    assert sorted(entries) == ["import", "import", "import"]


def test_import_again_skips_existing_titles(db, shop):
    actor = system_principal(shop.merchant.id)
    service.import_products_csv(db, actor=actor, data=CSV.encode())
    before = (_count(db, Product, shop.merchant.id), _count(db, LedgerEntry, shop.merchant.id))
    report = service.import_products_csv(db, actor=actor, data=CSV.encode())
    assert report.products_created == 0
    assert (_count(db, Product, shop.merchant.id), _count(db, LedgerEntry, shop.merchant.id)) == before


def test_import_failing_in_service_rolls_back_only_that_product(db, shop):
    # a SKU code taken by an existing product fails inside create_product, after the category was made
    make_product(db, merchant=shop.merchant, skus=[{"spec": {}, "price_cents": 1, "code": "TAKEN"}])
    data = "title,category,price,sku_code\n新品,新分类,10,TAKEN\n好品,新分类2,10,OK1\n".encode()
    report = service.import_products_csv(db, actor=system_principal(shop.merchant.id), data=data)
    assert [(r.line, r.ok) for r in report.rows] == [(2, False), (3, True)]
    assert "code" in report.rows[0].message.lower() or "编码" in report.rows[0].message
    names = set(db.scalars(select(Category.name).where(Category.merchant_id == shop.merchant.id)))
    assert names == {"新分类2"}


def test_import_gbk_file(db, shop):
    data = "title,price,stock\n茶叶,88,2\n".encode("gbk")
    report = service.import_products_csv(db, actor=system_principal(shop.merchant.id), data=data)
    assert report.products_created == 1


def test_import_api_and_bad_files(db, client, shop):
    h = shop.admin_headers
    r = client.post("/api/v1/admin/products/import", files={"file": ("p.csv", CSV.encode(), "text/csv")}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["products_created"], r.json()["products_failed"]) == (2, 3)
    r = client.post("/api/v1/admin/products/import", files={"file": ("p.csv", b"name,cost\nx,1\n", "text/csv")},
                    headers=h)
    assert r.status_code == 422 and "file" in r.json()["error"]["details"]["fields"]
    r = client.post("/api/v1/admin/products/import", files={"file": ("p.csv", b"\xff\xfe\x00garbage\x81", "text/csv")},
                    headers=h)
    assert r.status_code == 422
    r = client.post("/api/v1/admin/products/import", files={"file": ("p.csv", CSV.encode(), "text/csv")},
                    headers=shop.guide_headers)
    assert r.status_code == 403
