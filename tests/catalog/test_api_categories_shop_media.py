from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from siyu.catalog.models import Category, MediaFile
from siyu.config import get_settings
from tests.catalog.conftest import png_bytes
from tests.factories.catalog import make_category, make_product


def test_categories_two_levels(db, client, shop):
    h = shop.admin_headers
    top = client.post("/api/v1/admin/categories", json={"name": "服装", "sort_order": 2}, headers=h)
    assert top.status_code == 201
    top_id = top.json()["id"]
    child = client.post("/api/v1/admin/categories", json={"name": "上衣", "parent_id": top_id}, headers=h)
    assert child.status_code == 201 and child.json()["parent_id"] == top_id
    # a third level is refused
    r = client.post("/api/v1/admin/categories", json={"name": "短袖", "parent_id": child.json()["id"]}, headers=h)
    assert r.status_code == 422 and "parent_id" in r.json()["error"]["details"]["fields"]
    # the same name under the same parent is refused
    r = client.post("/api/v1/admin/categories", json={"name": "服装"}, headers=h)
    assert r.status_code == 422 and "name" in r.json()["error"]["details"]["fields"]
    # a parent with children cannot move under another
    other = client.post("/api/v1/admin/categories", json={"name": "食品"}, headers=h).json()
    r = client.patch(f"/api/v1/admin/categories/{top_id}", json={"parent_id": other["id"]}, headers=h)
    assert r.status_code == 422
    # a child can move to the top level with an explicit null
    r = client.patch(f"/api/v1/admin/categories/{child.json()['id']}", json={"parent_id": None, "name": "上装"},
                     headers=h)
    assert r.status_code == 200 and r.json()["parent_id"] is None and r.json()["name"] == "上装"
    items = client.get("/api/v1/admin/categories", headers=h).json()["items"]
    assert [c["name"] for c in items] == ["上装", "食品", "服装"]
    for bad in ({"name": ""}, {"name": "x" * 41}, {"name": 5}, {"parent_id": -1, "name": "a"}):
        assert client.post("/api/v1/admin/categories", json=bad, headers=h).status_code == 422


def test_delete_category_only_when_empty(db, client, shop):
    top = make_category(db, merchant=shop.merchant)
    make_category(db, merchant=shop.merchant, parent=top)
    used = make_category(db, merchant=shop.merchant)
    make_product(db, merchant=shop.merchant, category=used)
    empty = make_category(db, merchant=shop.merchant)
    h = shop.admin_headers
    r = client.delete(f"/api/v1/admin/categories/{top.id}", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "category_in_use"
    assert client.delete(f"/api/v1/admin/categories/{used.id}", headers=h).status_code == 409
    assert client.delete(f"/api/v1/admin/categories/{empty.id}", headers=shop.guide_headers).status_code == 403
    assert client.delete(f"/api/v1/admin/categories/{empty.id}", headers=h).status_code == 204
    ids = set(db.scalars(select(Category.id).where(Category.merchant_id == shop.merchant.id)))
    assert empty.id not in ids and top.id in ids


def test_shop_sees_only_on_sale(db, client, shop):
    # given
    m = shop.merchant
    top = make_category(db, merchant=m, name="服装")
    child = make_category(db, merchant=m, name="上衣", parent=top)
    on = make_product(db, merchant=m, title="在售T恤", category=child, stock=3,
                      skus=[{"spec": {"尺码": "M"}, "price_cents": 5000, "list_price_cents": 6000},
                            {"spec": {"尺码": "L"}, "price_cents": 4000, "stock": 0},
                            {"spec": {"尺码": "XL"}, "price_cents": 100, "active": False}])
    draft = make_product(db, merchant=m, title="草稿", status="draft")
    off = make_product(db, merchant=m, title="下架", status="off_sale")
    # when
    r = client.get(f"/api/v1/shop/{m.slug}/products")
    # then
    assert r.status_code == 200
    [item] = r.json()["items"]
    assert item["id"] == on.id and item["price_cents"] == 4000 and item["stock"] == 3
    assert [(s["spec_text"], s["stock"], s["sold_out"]) for s in item["skus"]] == [("M", 3, False), ("L", 0, True)]
    assert client.get(f"/api/v1/shop/{m.slug}/products/{on.id}").json()["title"] == "在售T恤"
    assert client.get(f"/api/v1/shop/{m.slug}/products/{draft.id}").status_code == 404
    assert client.get(f"/api/v1/shop/{m.slug}/products/{off.id}").status_code == 404
    assert [p["id"] for p in client.get(f"/api/v1/shop/{m.slug}/products", params={"q": "t恤"}).json()["items"]] == [on.id]
    assert [p["id"] for p in client.get(f"/api/v1/shop/{m.slug}/products",
                                        params={"category_id": top.id}).json()["items"]] == [on.id]
    assert client.get(f"/api/v1/shop/{m.slug}/products", params={"q": "草稿"}).json()["items"] == []
    cats = client.get(f"/api/v1/shop/{m.slug}/categories").json()["items"]
    assert cats == [{"id": top.id, "name": "服装", "parent_id": None,
                     "children": [{"id": child.id, "name": "上衣", "parent_id": top.id}]}]
    assert client.get("/api/v1/shop/no-such-shop/products").status_code == 404


def test_shop_is_per_merchant(db, client, shop, other_shop):
    product = make_product(db, merchant=shop.merchant)
    slug = other_shop.merchant.slug
    assert client.get(f"/api/v1/shop/{slug}/products/{product.id}").status_code == 404
    assert client.get(f"/api/v1/shop/{slug}/products").json()["items"] == []


def test_upload_png(db, client, shop):
    r = client.post("/api/v1/admin/media", files={"file": ("photo.bin", png_bytes((10, 6)), "application/octet-stream")},
                    headers=shop.admin_headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"].startswith(f"/media/{shop.merchant.id}/") and body["url"].endswith(".png")
    assert (body["content_type"], body["width"], body["height"]) == ("image/png", 10, 6)
    path = Path(get_settings().media_dir) / body["url"].removeprefix("/media/")
    assert path.read_bytes() == png_bytes((10, 6))
    assert client.get(body["url"]).status_code == 200


def test_upload_jpeg_webp_gif(db, client, shop):
    for fmt, ext in (("JPEG", ".jpg"), ("WEBP", ".webp"), ("GIF", ".gif")):
        r = client.post("/api/v1/admin/media", files={"file": ("x", png_bytes(fmt=fmt), "image/png")},
                        headers=shop.admin_headers)
        assert r.status_code == 201 and r.json()["url"].endswith(ext)


def test_upload_checks_bytes_not_name(db, client, shop):
    h = shop.admin_headers
    r = client.post("/api/v1/admin/media", files={"file": ("evil.png", b"<?php echo 1; ?>", "image/png")}, headers=h)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = client.post("/api/v1/admin/media", files={"file": ("a.bmp", png_bytes(fmt="BMP"), "image/bmp")}, headers=h)
    assert r.status_code == 415
    r = client.post("/api/v1/admin/media", files={"file": ("e.png", b"", "image/png")}, headers=h)
    assert r.status_code == 422
    assert client.post("/api/v1/admin/media", headers=h).status_code == 422
    r = client.post("/api/v1/admin/media", files={"file": ("a.png", png_bytes(), "image/png")},
                    headers=shop.guide_headers)
    assert r.status_code == 403
    assert db.scalar(select(func.count()).select_from(MediaFile).where(MediaFile.merchant_id == shop.merchant.id)) == 0


def test_upload_size_limit(db, client, shop, monkeypatch):
    monkeypatch.setattr(get_settings(), "media_max_bytes", 200)
    big = png_bytes((300, 300))
    assert len(big) > 200
    r = client.post("/api/v1/admin/media", files={"file": ("big.png", big, "image/png")}, headers=shop.admin_headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert db.scalar(select(func.count()).select_from(MediaFile).where(MediaFile.merchant_id == shop.merchant.id)) == 0
