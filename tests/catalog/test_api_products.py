from __future__ import annotations

from sqlalchemy import func, select

from siyu.catalog import service
from siyu.catalog.models import Product, Sku
from siyu.core.models import OutboxEvent
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerEntry
from tests.factories.catalog import make_category, make_product


def _stock(db, merchant_id, sku_id):
    return ledger.balance(db, merchant_id=merchant_id, kind="stock", owner_type="sku", owner_id=sku_id)


def _entries(db, merchant_id):
    return db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id))


BODY = {
    "title": "纯棉T恤 Classic Tee",
    "subtitle": "夏季新款",
    "description": "100% 棉",
    "images": ["/media/1/a.png"],
    "status": "on_sale",
    "skus": [
        {"spec": {"颜色": "红", "尺码": "M"}, "price_cents": 5990, "list_price_cents": 7990, "stock": 20, "code": "TEE-R-M"},
        {"spec": {"颜色": "蓝", "尺码": "M"}, "price_cents": 6990, "stock": 0},
    ],
}


def test_create_product_with_skus_and_stock_in_ledger(db, client, shop):
    # given
    category = make_category(db, merchant=shop.merchant, name="服装")
    # when
    r = client.post("/api/v1/admin/products", json={**BODY, "category_id": category.id}, headers=shop.admin_headers)
    # then
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["title"] == "纯棉T恤 Classic Tee" and body["status"] == "on_sale"
    assert body["category_id"] == category.id and body["images"] == ["/media/1/a.png"]
    assert body["price_cents"] == 5990 and body["stock"] == 20
    red, blue = body["skus"]
    assert red["spec"] == {"颜色": "红", "尺码": "M"} and red["spec_text"] == "红 / M"
    assert (red["price_cents"], red["list_price_cents"], red["stock"], red["code"]) == (5990, 7990, 20, "TEE-R-M")
    assert (blue["price_cents"], blue["list_price_cents"], blue["stock"]) == (6990, None, 0)
    # stock exists only as ledger balances with their entries
    assert _stock(db, shop.merchant.id, red["id"]) == 20
    assert _entries(db, shop.merchant.id) == 1
    assert ledger.verify(db, shop.merchant.id) == []
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.name == "catalog.product_status_changed")).one()
    assert event.payload == {"product_id": body["id"], "old_status": "draft", "new_status": "on_sale"}


def test_writes_need_auth_and_brand_admin(db, client, shop):
    assert client.post("/api/v1/admin/products", json=BODY).status_code == 401
    r = client.post("/api/v1/admin/products", json=BODY, headers=shop.guide_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    product = make_product(db, merchant=shop.merchant)
    sku = product_sku(db, product)
    assert client.patch(f"/api/v1/admin/products/{product.id}", json={"title": "x"},
                        headers=shop.guide_headers).status_code == 403
    assert client.patch(f"/api/v1/admin/skus/{sku.id}", json={"stock": 1}, headers=shop.guide_headers).status_code == 403
    assert client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 1, "reason": "restock"},
                       headers=shop.guide_headers).status_code == 403
    assert client.post("/api/v1/admin/categories", json={"name": "x"}, headers=shop.guide_headers).status_code == 403
    assert db.scalar(select(func.count()).select_from(Product).where(Product.merchant_id == shop.merchant.id)) == 1
    assert _stock(db, shop.merchant.id, sku.id) == 10
    assert client.get("/api/v1/admin/products").status_code == 401


def product_sku(db, product):
    return db.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id)).first()


def test_guide_can_read(db, client, shop):
    product = make_product(db, merchant=shop.merchant, title="可读商品", stock=3)
    sku = product_sku(db, product)
    r = client.get("/api/v1/admin/products", headers=shop.guide_headers)
    assert r.status_code == 200 and [p["id"] for p in r.json()["items"]] == [product.id]
    assert client.get(f"/api/v1/admin/products/{product.id}", headers=shop.guide_headers).json()["skus"][0]["stock"] == 3
    assert client.get(f"/api/v1/admin/skus/{sku.id}", headers=shop.guide_headers).json()["stock"] == 3
    assert client.get(f"/api/v1/admin/skus/{sku.id}/stock-entries", headers=shop.guide_headers).status_code == 200
    assert client.get("/api/v1/admin/categories", headers=shop.guide_headers).status_code == 200


def test_list_search_filters_and_pagination(db, client, shop):
    # given
    top = make_category(db, merchant=shop.merchant, name="服装")
    child = make_category(db, merchant=shop.merchant, name="上衣", parent=top)
    other = make_category(db, merchant=shop.merchant, name="食品")
    tee = make_product(db, merchant=shop.merchant, title="Classic TEE", category=child,
                       skus=[{"spec": {}, "price_cents": 100, "code": "ABC-123"}])
    draft = make_product(db, merchant=shop.merchant, title="classic draft", status="draft", category=top)
    tea = make_product(db, merchant=shop.merchant, title="绿茶", category=other)
    h = shop.admin_headers

    def ids(**params):
        r = client.get("/api/v1/admin/products", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    # then
    assert ids() == [tea.id, draft.id, tee.id]
    assert ids(q="tee") == [tee.id]
    assert ids(q="CLASSIC") == [draft.id, tee.id]
    assert ids(q="abc-1") == [tee.id]
    assert ids(q="绿") == [tea.id]
    assert ids(q="100%") == []
    assert ids(category_id=top.id) == [draft.id, tee.id]
    assert ids(category_id=child.id) == [tee.id]
    assert ids(status="draft") == [draft.id]
    assert ids(status="on_sale", category_id=top.id) == [tee.id]
    first = client.get("/api/v1/admin/products", params={"limit": 2}, headers=h).json()
    assert [p["id"] for p in first["items"]] == [tea.id, draft.id]
    second = client.get("/api/v1/admin/products", params={"limit": 2, "cursor": first["next_cursor"]}, headers=h).json()
    assert [p["id"] for p in second["items"]] == [tee.id] and second["next_cursor"] is None
    assert client.get("/api/v1/admin/products", params={"cursor": "!!"}, headers=h).status_code == 400
    assert client.get("/api/v1/admin/products", params={"status": "gone"}, headers=h).status_code == 422
    assert client.get("/api/v1/admin/products", params={"limit": 1000}, headers=h).status_code == 422


def test_patch_product_fields_status_and_skus(db, client, shop):
    # given a draft with one SKU
    product = make_product(db, merchant=shop.merchant, status="draft", stock=5,
                           skus=[{"spec": {"颜色": "红"}, "price_cents": 1000}])
    sku = product_sku(db, product)
    # when
    r = client.patch(f"/api/v1/admin/products/{product.id}", headers=shop.admin_headers, json={
        "title": "新标题", "status": "on_sale", "reason": "restock",
        "skus": [{"id": sku.id, "price_cents": 1200, "stock": 8},
                 {"spec": {"颜色": "蓝"}, "price_cents": 1500, "stock": 4}],
    })
    # then
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "新标题" and body["status"] == "on_sale"
    assert [(s["spec"], s["price_cents"], s["stock"]) for s in body["skus"]] == \
        [({"颜色": "红"}, 1200, 8), ({"颜色": "蓝"}, 1500, 4)]
    entries = service.stock_entries(db, sku.id, actor=service_actor(shop)).items
    assert [(e.delta, e.balance_after, e.reason) for e in entries] == [(3, 8, "restock"), (5, 5, "initial")]
    assert ledger.verify(db, shop.merchant.id) == []


def service_actor(shop):
    from siyu.core.auth import system_principal

    return system_principal(shop.merchant.id)


def test_illegal_status_move_is_refused_and_nothing_changes(db, client, shop):
    product = make_product(db, merchant=shop.merchant, status="on_sale")
    r = client.patch(f"/api/v1/admin/products/{product.id}", json={"status": "draft", "title": "changed"},
                     headers=shop.admin_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    db.expire_all()
    assert db.get(Product, product.id).status == "on_sale" and db.get(Product, product.id).title != "changed"


def test_on_sale_needs_an_active_sku(db, client, shop):
    body = {**BODY, "skus": [{"spec": {}, "price_cents": 100, "active": False}]}
    r = client.post("/api/v1/admin/products", json=body, headers=shop.admin_headers)
    assert r.status_code == 422 and "status" in r.json()["error"]["details"]["fields"]


def test_duplicate_spec_and_code_are_refused(db, client, shop):
    make_product(db, merchant=shop.merchant, skus=[{"spec": {}, "price_cents": 1, "code": "TAKEN"}])
    before = db.scalar(select(func.count()).select_from(Product))
    dup_spec = {**BODY, "skus": [{"spec": {"a": "1"}, "price_cents": 1}, {"spec": {"a": "1"}, "price_cents": 2}]}
    r = client.post("/api/v1/admin/products", json=dup_spec, headers=shop.admin_headers)
    assert r.status_code == 422 and "skus.1.spec" in r.json()["error"]["details"]["fields"]
    dup_code = {**BODY, "skus": [{"spec": {}, "price_cents": 1, "code": "TAKEN"}]}
    r = client.post("/api/v1/admin/products", json=dup_code, headers=shop.admin_headers)
    assert r.status_code == 422 and "skus.0.code" in r.json()["error"]["details"]["fields"]
    assert db.scalar(select(func.count()).select_from(Product)) == before


def test_patch_sku_sets_absolute_stock_through_ledger(db, client, shop):
    product = make_product(db, merchant=shop.merchant, stock=10)
    sku = product_sku(db, product)
    r = client.patch(f"/api/v1/admin/skus/{sku.id}", json={"stock": 4, "price_cents": 990, "reason": "damage"},
                     headers=shop.admin_headers)
    assert r.status_code == 200, r.text
    assert (r.json()["stock"], r.json()["price_cents"]) == (4, 990)
    entries = client.get(f"/api/v1/admin/skus/{sku.id}/stock-entries", headers=shop.admin_headers).json()["items"]
    assert [(e["delta"], e["balance_after"], e["reason"], e["actor_type"], e["actor_id"]) for e in entries] == \
        [(-6, 4, "damage", "staff", shop.admin.id), (10, 10, "initial", "system", None)]
    # the same stock again moves nothing
    r = client.patch(f"/api/v1/admin/skus/{sku.id}", json={"stock": 4}, headers=shop.admin_headers)
    assert r.status_code == 200 and _entries(db, shop.merchant.id) == 2


def test_patch_sku_bad_values(db, client, shop):
    product = make_product(db, merchant=shop.merchant, stock=10)
    sku = product_sku(db, product)
    h = shop.admin_headers
    for body in ({"stock": -1}, {"price_cents": -5}, {"price_cents": 2**31}, {"price_cents": "ten"},
                 {"stock": 1.5}, {"reason": "Bad Reason!"}, {"unknown": 1}):
        r = client.patch(f"/api/v1/admin/skus/{sku.id}", json=body, headers=h)
        assert r.status_code == 422, body
    r = client.patch(f"/api/v1/admin/skus/{sku.id}", json={"stock": 1, "reason": "initial"}, headers=h)
    assert r.status_code == 422 and "reason" in r.json()["error"]["details"]["fields"]
    assert _stock(db, shop.merchant.id, sku.id) == 10
    db.expire_all()
    assert db.get(Sku, sku.id).price_cents == 1000


def test_stock_adjustments(db, client, shop):
    product = make_product(db, merchant=shop.merchant, stock=5)
    sku = product_sku(db, product)
    h = shop.admin_headers
    # when restocking
    r = client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 10, "reason": "restock",
                                                                            "note": "到货"}, headers=h)
    # then
    assert r.status_code == 201, r.text
    assert r.json()["stock"] == 15 and r.json()["entry"]["note"] == "到货"
    # when taking more than there is
    before = _entries(db, shop.merchant.id)
    r = client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": -16, "reason": "damage"}, headers=h)
    # then 409 out_of_stock and nothing moved
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "out_of_stock"
    assert r.json()["error"]["details"] == {"sku_id": sku.id, "stock": 15, "requested": 16}
    assert _stock(db, shop.merchant.id, sku.id) == 15 and _entries(db, shop.merchant.id) == before
    # bad reasons and zero
    assert client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 0, "reason": "restock"},
                       headers=h).status_code == 422
    assert client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 1, "reason": "initial"},
                       headers=h).status_code == 422
    assert client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": "1x", "reason": "restock"},
                       headers=h).status_code == 422
    assert _stock(db, shop.merchant.id, sku.id) == 15


def test_stock_adjustment_idempotency_key_replays(db, client, shop):
    product = make_product(db, merchant=shop.merchant, stock=5)
    sku = product_sku(db, product)
    h = {**shop.admin_headers, "Idempotency-Key": "adj-1"}
    r1 = client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 3, "reason": "restock"}, headers=h)
    r2 = client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": 3, "reason": "restock"}, headers=h)
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["entry"]["id"] == r2.json()["entry"]["id"]
    assert _stock(db, shop.merchant.id, sku.id) == 8


def test_other_tenant_gets_404_everywhere(db, client, shop, other_shop):
    # given objects of shop
    top = make_category(db, merchant=shop.merchant)
    product = make_product(db, merchant=shop.merchant, stock=7, category=top)
    sku = product_sku(db, product)
    h = other_shop.admin_headers
    # then the other merchant's admin finds none of them
    assert client.get(f"/api/v1/admin/products/{product.id}", headers=h).status_code == 404
    assert client.patch(f"/api/v1/admin/products/{product.id}", json={"title": "x"}, headers=h).status_code == 404
    assert client.get(f"/api/v1/admin/skus/{sku.id}", headers=h).status_code == 404
    assert client.patch(f"/api/v1/admin/skus/{sku.id}", json={"stock": 0}, headers=h).status_code == 404
    assert client.post(f"/api/v1/admin/skus/{sku.id}/stock-adjustments", json={"delta": -7, "reason": "damage"},
                       headers=h).status_code == 404
    assert client.get(f"/api/v1/admin/skus/{sku.id}/stock-entries", headers=h).status_code == 404
    assert client.get(f"/api/v1/admin/categories/{top.id}", headers=h).status_code == 404
    assert client.patch(f"/api/v1/admin/categories/{top.id}", json={"name": "x"}, headers=h).status_code == 404
    assert client.delete(f"/api/v1/admin/categories/{top.id}", headers=h).status_code == 404
    assert client.get("/api/v1/admin/products", headers=h).json()["items"] == []
    assert client.get("/api/v1/admin/categories", headers=h).json()["items"] == []
    # using another tenant's category or SKU in a write is refused too
    r = client.post("/api/v1/admin/categories", json={"name": "子", "parent_id": top.id}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/v1/admin/products", json={**BODY, "category_id": top.id}, headers=h)
    assert r.status_code == 422 and "category_id" in r.json()["error"]["details"]["fields"]
    own = make_product(db, merchant=other_shop.merchant)
    r = client.patch(f"/api/v1/admin/products/{own.id}", json={"skus": [{"id": sku.id, "stock": 0}]}, headers=h)
    assert r.status_code == 422 and "skus.0.id" in r.json()["error"]["details"]["fields"]
    # and nothing moved
    assert _stock(db, shop.merchant.id, sku.id) == 7
    db.expire_all()
    assert db.get(Product, product.id).title == product.title


def test_bad_input_is_4xx(db, client, shop):
    h = shop.admin_headers
    r = client.post("/api/v1/admin/products", content=b"{nope", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    cases = [
        {**BODY, "title": "x" * 100_000},
        {**BODY, "title": ""},
        {**BODY, "title": 12},
        {**BODY, "skus": []},
        {**BODY, "skus": "many"},
        {**BODY, "skus": [{"spec": {}, "price_cents": -1}]},
        {**BODY, "skus": [{"spec": {}, "price_cents": 1, "stock": -1}]},
        {**BODY, "skus": [{"spec": {"a": {"nested": 1}}, "price_cents": 1}]},
        {**BODY, "skus": [{"spec": {"k" * 21: "v"}, "price_cents": 1}]},
        {**BODY, "skus": [{"spec": {str(i): "v" for i in range(6)}, "price_cents": 1}]},
        {**BODY, "images": ["javascript:alert(1)"]},
        {**BODY, "images": ["/media/x.png"] * 21},
        {**BODY, "status": "sold"},
        {**BODY, "category_id": 0},
        {**BODY, "category_id": 2**60},
        {**BODY, "description": "d" * 20_001},
        {**BODY, "extra": True},
    ]
    for body in cases:
        r = client.post("/api/v1/admin/products", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = client.post("/api/v1/admin/products", json={**BODY, "category_id": 987654}, headers=h)
    assert r.status_code == 422
    assert client.get("/api/v1/admin/products/987654", headers=h).status_code == 404
    assert client.get("/api/v1/admin/products/99999999999999999999", headers=h).status_code == 422
    assert client.get("/api/v1/admin/products/abc", headers=h).status_code == 422
    assert client.get("/api/v1/admin/skus/987654", headers=h).status_code == 404
    assert client.patch("/api/v1/admin/skus/987654", json={"stock": 1}, headers=h).status_code == 404
    assert client.get("/api/v1/admin/products", params={"q": "x" * 101}, headers=h).status_code == 422
    assert db.scalar(select(func.count()).select_from(Product).where(Product.merchant_id == shop.merchant.id)) == 0


def test_low_stock_endpoint(db, client, shop):
    product = make_product(db, merchant=shop.merchant, stock=2, title="快卖完")
    make_product(db, merchant=shop.merchant, stock=50)
    items = client.get("/api/v1/admin/catalog/low-stock", headers=shop.guide_headers).json()["items"]
    assert [(i["product_id"], i["stock"]) for i in items] == [(product.id, 2)]
