from __future__ import annotations

import re

from sqlalchemy import func, select

from siyu.catalog import service
from siyu.catalog.models import Category, Product, Sku
from siyu.core.auth import Role
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerEntry
from tests.catalog.conftest import png_bytes
from tests.factories.catalog import make_category, make_product
from tests.factories.merchants import PASSWORD, make_merchant, make_staff, make_store


def login(client, staff) -> None:
    r = client.post("/console/login", data={"username": staff.username, "password": PASSWORD, "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303


def csrf(client, path="/console/catalog") -> str:
    page = client.get(path)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


def _products(db, merchant_id):
    return list(db.scalars(select(Product).where(Product.merchant_id == merchant_id).order_by(Product.id)))


def test_list_empty_then_with_products_filters_and_pages(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    login(client, admin)
    # empty: says what to do next
    r = client.get("/console/catalog")
    assert r.status_code == 200
    assert 'href="/console/catalog/new"' in r.text and 'href="/console/catalog/import"' in r.text
    # with products
    cat = make_category(db, merchant=merchant, name="茶叶")
    for i in range(22):
        make_product(db, merchant=merchant, title=f"龙井{i:02d}", category=cat, stock=i)
    make_product(db, merchant=merchant, title="草稿商品", status="draft")
    r = client.get("/console/catalog", params={"q": "龙井", "category_id": cat.id, "status": "on_sale"})
    assert r.status_code == 200
    assert "龙井21" in r.text and "草稿商品" not in r.text and "龙井01" not in r.text
    assert 'value="龙井"' in r.text  # the filter is kept
    m = re.search(r'href="(/console/catalog\?[^"]*cursor=[^"]+)"', r.text)
    assert m and "q=%E9%BE%99%E4%BA%95" in m.group(1) and f"category_id={cat.id}" in m.group(1)
    r2 = client.get(m.group(1).replace("&amp;", "&"))
    assert "龙井01" in r2.text and "龙井21" not in r2.text
    r = client.get("/console/catalog", params={"q": "没有"})
    assert r.status_code == 200 and "/console/catalog/new" not in r.text.split("product-table")[0][-10:]


def test_console_requires_login(db, client):
    r = client.get("/console/catalog", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_create_product_with_generated_sku_matrix(db, client):
    # given
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    cat = make_category(db, merchant=merchant, name="服装")
    login(client, admin)
    token = csrf(client, "/console/catalog/new")
    base = {"csrf_token": token, "title": "纯棉T恤", "subtitle": "舒服", "description": "好", "category_id": str(cat.id),
            "status": "on_sale", "specs": "颜色: 红, 蓝\n尺码：S，M", "sku_count": "1", "sku_id_0": "",
            "sku_spec_0": "{}", "sku_price_0": "9", "sku_stock_0": "1", "sku_active_0": "1"}
    # when generating rows (no JS)
    r = client.post("/console/catalog/new", data={**base, "action": "generate"})
    # then one row per combination, with what was typed kept
    assert r.status_code == 200
    assert 'name="sku_count" value="4"' in r.text
    assert r.text.count('name="sku_price_') == 4
    assert 'value="纯棉T恤"' in r.text and "红 / S" in r.text and "蓝 / M" in r.text
    specs = re.findall(r'name="sku_spec_(\d)" value="([^"]+)"', r.text)
    assert len(specs) == 4
    # when saving with prices
    data = {**base, "action": "save", "sku_count": "4"}
    for i, spec in specs:
        data[f"sku_spec_{i}"] = spec.replace("&#34;", '"').replace("&quot;", '"')
        data[f"sku_price_{i}"] = f"{59 + int(i)}.90"
        data[f"sku_list_price_{i}"] = "79"
        data[f"sku_stock_{i}"] = str(10 * (int(i) + 1))
        data[f"sku_active_{i}"] = "1"
        data[f"sku_id_{i}"] = ""
    r = client.post("/console/catalog/new", data=data, follow_redirects=False)
    # then
    assert r.status_code == 303, r.text[:2000]
    [product] = _products(db, merchant.id)
    assert r.headers["location"] == f"/console/catalog/{product.id}?ok=created"
    assert (product.title, product.status, product.category_id) == ("纯棉T恤", "on_sale", cat.id)
    skus = list(db.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id)))
    assert [(s.spec, s.price_cents, s.list_price_cents) for s in skus] == [
        ({"颜色": "红", "尺码": "S"}, 5990, 7900), ({"颜色": "红", "尺码": "M"}, 6090, 7900),
        ({"颜色": "蓝", "尺码": "S"}, 6190, 7900), ({"颜色": "蓝", "尺码": "M"}, 6290, 7900)]
    assert ledger.balances(db, merchant_id=merchant.id, kind="stock", owner_type="sku",
                           owner_ids=[s.id for s in skus]) == {s.id: 10 * (i + 1) for i, s in enumerate(skus)}
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "纯棉T恤" in page.text


def test_form_errors_keep_what_was_typed_and_write_nothing(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    login(client, admin)
    token = csrf(client, "/console/catalog/new")
    r = client.post("/console/catalog/new", data={
        "csrf_token": token, "action": "save", "title": "好茶", "description": "我写了很多字", "specs": "",
        "status": "draft", "sku_count": "1", "sku_id_0": "", "sku_spec_0": "{}", "sku_price_0": "abc",
        "sku_stock_0": "-3", "sku_code_0": "MY-CODE", "sku_active_0": "1"})
    assert r.status_code == 422
    assert 'value="好茶"' in r.text and "我写了很多字" in r.text and 'value="MY-CODE"' in r.text
    assert 'value="abc"' in r.text and 'value="-3"' in r.text
    assert r.text.count('class="field-error"') == 2
    r = client.post("/console/catalog/new", data={"csrf_token": token, "action": "save", "title": "",
                                                  "specs": "no colon here", "sku_count": "0"})
    assert r.status_code == 422 and r.text.count('class="field-error"') >= 2
    assert _products(db, merchant.id) == []


def test_service_errors_show_beside_the_row(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    make_product(db, merchant=merchant, skus=[{"spec": {}, "price_cents": 1, "code": "TAKEN"}])
    login(client, admin)
    token = csrf(client, "/console/catalog/new")
    r = client.post("/console/catalog/new", data={
        "csrf_token": token, "action": "save", "title": "新品", "specs": "", "status": "draft", "sku_count": "1",
        "sku_id_0": "", "sku_spec_0": "{}", "sku_price_0": "5", "sku_stock_0": "1", "sku_code_0": "TAKEN",
        "sku_active_0": "1"})
    assert r.status_code == 422
    assert re.search(r'name="sku_code_0" value="TAKEN"[^>]*>\s*<span class="field-error"', r.text)
    assert len(_products(db, merchant.id)) == 1


def test_image_upload_in_form(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    login(client, admin)
    token = csrf(client, "/console/catalog/new")
    data = {"csrf_token": token, "action": "save", "title": "带图", "specs": "", "status": "draft", "sku_count": "1",
            "sku_id_0": "", "sku_spec_0": "{}", "sku_price_0": "5", "sku_stock_0": "0", "sku_active_0": "1"}
    r = client.post("/console/catalog/new", data=data, files=[("image_files", ("a.png", png_bytes(), "image/png")),
                                                              ("image_files", ("b.txt", b"not an image", "text/plain"))],
                    follow_redirects=False)
    # the bad file is reported, the good one kept in the re-shown form
    assert r.status_code == 422
    urls = re.findall(r'name="images" value="(/media/[^"]+)"', r.text)
    assert len(urls) == 1
    r = client.post("/console/catalog/new", data={**data, "images": urls}, follow_redirects=False)
    assert r.status_code == 303
    [product] = _products(db, merchant.id)
    assert product.images == urls


def test_edit_product_status_and_existing_skus(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    product = make_product(db, merchant=merchant, status="draft", stock=5, title="旧名",
                           skus=[{"spec": {"颜色": "红"}, "price_cents": 1000}])
    sku = service.product_view(db, product).skus[0]
    login(client, admin)
    page = client.get(f"/console/catalog/{product.id}")
    assert page.status_code == 200 and "颜色: 红" in page.text and f"/console/catalog/skus/{sku.id}/stock" in page.text
    token = csrf(client, f"/console/catalog/{product.id}")
    # add a colour and change the price of the existing SKU
    data = {"csrf_token": token, "title": "新名", "specs": "颜色: 红, 黑", "sku_count": "1", "sku_id_0": str(sku.id),
            "sku_spec_0": '{"颜色": "红"}', "sku_price_0": "12.50", "sku_active_0": "1"}
    r = client.post(f"/console/catalog/{product.id}", data={**data, "action": "generate"})
    assert r.status_code == 200 and 'name="sku_count" value="2"' in r.text
    data.update({"sku_count": "2", "sku_id_1": "", "sku_spec_1": '{"颜色": "黑"}', "sku_price_1": "13",
                 "sku_stock_1": "7", "sku_active_1": "1", "action": "save"})
    r = client.post(f"/console/catalog/{product.id}", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[:3000]
    db.expire_all()
    view = service.product_view(db, db.get(Product, product.id))
    assert view.title == "新名"
    assert [(s.spec_text, s.price_cents, s.stock) for s in view.skus] == [("红", 1250, 5), ("黑", 1300, 7)]
    # status: put on sale, then an illegal move is refused with a message
    r = client.post(f"/console/catalog/{product.id}/status", data={"csrf_token": token, "status": "on_sale"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Product, product.id).status == "on_sale"
    r = client.post(f"/console/catalog/{product.id}/status", data={"csrf_token": token, "status": "draft"})
    assert r.status_code == 409 and 'class="field-error"' in r.text
    db.expire_all()
    assert db.get(Product, product.id).status == "on_sale"


def test_stock_page_adjust_and_refuse_below_zero(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    product = make_product(db, merchant=merchant, stock=5)
    sku = service.product_view(db, product).skus[0]
    login(client, admin)
    url = f"/console/catalog/skus/{sku.id}/stock"
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="stock-now">5<' in page.text
    token = csrf(client, url)
    r = client.post(url, data={"csrf_token": token, "delta": "+3", "reason": "restock", "note": "到货"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert 'data-testid="stock-now">8<' in page.text and "到货" in page.text
    before = db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant.id))
    r = client.post(url, data={"csrf_token": token, "delta": "-100", "reason": "damage", "note": "坏了"})
    assert r.status_code == 409 and 'class="field-error"' in r.text and 'value="-100"' in r.text
    r = client.post(url, data={"csrf_token": token, "delta": "zero", "reason": "hack"})
    assert r.status_code == 422 and r.text.count('class="field-error"') == 2
    after = db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant.id))
    assert after == before
    assert ledger.balance(db, merchant_id=merchant.id, kind="stock", owner_type="sku", owner_id=sku.id) == 8


def test_categories_page(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    login(client, admin)
    r = client.get("/console/catalog/categories")
    assert r.status_code == 200 and "服装" in r.text  # the empty state suggests a first one
    token = csrf(client, "/console/catalog/categories")
    assert client.post("/console/catalog/categories", data={"csrf_token": token, "name": "服装"},
                       follow_redirects=False).status_code == 303
    top = db.scalars(select(Category).where(Category.merchant_id == merchant.id)).one()
    assert client.post("/console/catalog/categories", data={"csrf_token": token, "name": "上衣", "parent_id": str(top.id)},
                       follow_redirects=False).status_code == 303
    child = db.scalars(select(Category).where(Category.merchant_id == merchant.id, Category.parent_id == top.id)).one()
    r = client.post("/console/catalog/categories", data={"csrf_token": token, "name": "短袖", "parent_id": str(child.id)})
    assert r.status_code == 422 and 'class="field-error"' in r.text and 'value="短袖"' in r.text
    r = client.post(f"/console/catalog/categories/{child.id}", data={"csrf_token": token, "name": "上装",
                                                                     "sort_order": "3"}, follow_redirects=False)
    assert r.status_code == 303
    r = client.post(f"/console/catalog/categories/{top.id}/delete", data={"csrf_token": token})
    assert r.status_code == 409 and 'class="field-error"' in r.text
    r = client.post(f"/console/catalog/categories/{child.id}/delete", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    names = set(db.scalars(select(Category.name).where(Category.merchant_id == merchant.id)))
    assert names == {"服装"}


def test_import_page(db, client):
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant)
    login(client, admin)
    page = client.get("/console/catalog/import")
    assert page.status_code == 200 and "sku_code" in page.text and "list_price" in page.text
    sample = client.get("/console/catalog/import/sample.csv")
    assert sample.status_code == 200 and sample.content.decode("utf-8-sig").startswith("title,category")
    token = csrf(client, "/console/catalog/import")
    csv_data = "title,price,stock,spec\n好茶,10,5,\n坏茶,x,1,\n".encode()
    r = client.post("/console/catalog/import", data={"csrf_token": token},
                    files={"file": ("p.csv", csv_data, "text/csv")})
    assert r.status_code == 200 and 'data-testid="import-report"' in r.text
    assert r.text.count('class="ok"') == 1 and r.text.count('class="failed"') == 1
    assert [p.title for p in _products(db, merchant.id)] == ["好茶"]
    r = client.post("/console/catalog/import", data={"csrf_token": token})
    assert r.status_code == 422
    # the sample file imports cleanly
    r = client.post("/console/catalog/import", data={"csrf_token": token},
                    files={"file": ("s.csv", sample.content, "text/csv")})
    assert r.status_code == 200 and 'class="failed"' not in r.text


def test_guide_reads_but_cannot_write(db, client):
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    product = make_product(db, merchant=merchant, title="导购可见")
    sku = service.product_view(db, product).skus[0]
    login(client, guide)
    page = client.get("/console/catalog")
    assert page.status_code == 200 and "导购可见" in page.text and "/console/catalog/new" not in page.text
    assert client.get(f"/console/catalog/{product.id}").status_code == 200
    assert client.get(f"/console/catalog/skus/{sku.id}/stock").status_code == 200
    token = csrf(client)
    r = client.post("/console/catalog/new", data={"csrf_token": token, "title": "x", "sku_count": "0"})
    assert r.status_code == 403
    r = client.post(f"/console/catalog/skus/{sku.id}/stock", data={"csrf_token": token, "delta": "5",
                                                                     "reason": "restock"})
    assert r.status_code == 403
    assert len(_products(db, merchant.id)) == 1


def test_csrf_and_tenant_isolation(db, client):
    a, b = make_merchant(db), make_merchant(db)
    product = make_product(db, merchant=a)
    sku = service.product_view(db, product).skus[0]
    cat = make_category(db, merchant=a)
    login(client, make_staff(db, merchant=b))
    token = csrf(client)
    assert client.post("/console/catalog/new", data={"title": "x"}).status_code == 403
    assert client.get(f"/console/catalog/{product.id}").status_code == 404
    assert client.get(f"/console/catalog/skus/{sku.id}/stock").status_code == 404
    assert client.post(f"/console/catalog/{product.id}", data={"csrf_token": token, "title": "x"}).status_code == 404
    assert client.post(f"/console/catalog/{product.id}/status", data={"csrf_token": token, "status": "off_sale"}
                       ).status_code == 404
    assert client.post(f"/console/catalog/skus/{sku.id}/stock", data={"csrf_token": token, "delta": "-1",
                                                                        "reason": "damage"}).status_code == 404
    assert client.post(f"/console/catalog/categories/{cat.id}/delete", data={"csrf_token": token}).status_code == 404
    assert ledger.balance(db, merchant_id=a.id, kind="stock", owner_type="sku", owner_id=sku.id) == 10
    assert client.get("/console/catalog/99999999999999999999").status_code == 422


def test_shop_pages(db, client):
    merchant = make_merchant(db, name="好店")
    top = make_category(db, merchant=merchant, name="服装")
    child = make_category(db, merchant=merchant, name="上衣", parent=top)
    on = make_product(db, merchant=merchant, title="在售卫衣", category=child, description="第一行\n第二行",
                      images=["/media/x/1.png"],
                      skus=[{"spec": {"尺码": "M"}, "price_cents": 9900, "list_price_cents": 12900, "stock": 3},
                            {"spec": {"尺码": "L"}, "price_cents": 10900, "stock": 0}])
    draft = make_product(db, merchant=merchant, title="草稿卫衣", status="draft", category=child)
    slug = merchant.slug
    home = client.get(f"/shop/{slug}/")
    assert home.status_code == 200
    assert "在售卫衣" in home.text and "草稿卫衣" not in home.text and "¥99.00" in home.text and "服装" in home.text
    assert client.get(f"/shop/{slug}", follow_redirects=False).status_code == 307
    assert "在售卫衣" in client.get(f"/shop/{slug}/c/{top.id}").text
    assert "在售卫衣" in client.get(f"/shop/{slug}/c/{child.id}").text
    assert client.get(f"/shop/{slug}/c/999999").status_code == 404
    search = client.get(f"/shop/{slug}/search", params={"q": "卫衣"})
    assert "在售卫衣" in search.text and "草稿卫衣" not in search.text
    assert "上衣" in client.get(f"/shop/{slug}/search").text
    page = client.get(f"/shop/{slug}/p/{on.id}")
    assert page.status_code == 200
    assert f'action="/shop/{slug}/checkout"' in page.text and 'method="get"' in page.text
    skus = service.product_view(db, on).skus
    assert re.search(rf'value="{skus[0].id}"\s+checked', page.text)
    assert re.search(rf'value="{skus[1].id}" disabled', page.text)
    assert "¥129.00" in page.text and 'name="quantity"' in page.text and "第一行\n第二行" in page.text
    assert client.get(f"/shop/{slug}/p/{draft.id}").status_code == 404
    assert client.get("/shop/nope-shop/").status_code == 404


def test_shop_home_load_more(db, client):
    merchant = make_merchant(db)
    for i in range(21):
        make_product(db, merchant=merchant, title=f"商品{i:02d}")
    home = client.get(f"/shop/{merchant.slug}/")
    m = re.search(r'class="more" href="([^"]+)"', home.text)
    assert m and "商品20" in home.text and "商品00" not in home.text
    more = client.get(m.group(1))
    assert "商品00" in more.text and 'class="more"' not in more.text


def test_sold_out_product_page(db, client):
    merchant = make_merchant(db)
    product = make_product(db, merchant=merchant, stock=0)
    page = client.get(f"/shop/{merchant.slug}/p/{product.id}")
    assert page.status_code == 200 and "disabled" in page.text and 'data-testid="buy"' not in page.text
    assert db.scalar(select(func.count()).select_from(Sku).where(Sku.product_id == product.id)) == 1
