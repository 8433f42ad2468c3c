"""REST routes of the catalogue (API.md, Catalogue). Reads: any staff; writes: catalog.manage."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Response, UploadFile

from siyu.catalog import service
from siyu.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    Id,
    MediaRead,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    SkuRead,
    SkuUpdate,
    StockAdjustment,
    StockEntryRead,
)
from siyu.catalog.states import ProductStatus
from siyu.config import get_settings
from siyu.core.errors import PayloadTooLarge
from siyu.core.web import DbSession
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["catalog"])

Q = Annotated[str | None, Query(max_length=100)]
Cursor = Annotated[str | None, Query(max_length=100)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
CategoryFilter = Annotated[int | None, Query(gt=0, le=2**53)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _product_read(view: service.ProductView) -> ProductRead:
    data = dataclasses.asdict(view)
    return ProductRead(**data)


def _sku_read(view: service.SkuView) -> SkuRead:
    return SkuRead(**dataclasses.asdict(view))


def _read_one(session: DbSession, product_id: int, principal: Any) -> ProductRead:
    product = service.get_product(session, product_id, actor=principal)
    return _product_read(service.product_view(session, product))


def _sku_view(session: DbSession, sku_id: int, principal: Any) -> service.SkuView:
    sku = service.get_sku(session, sku_id, actor=principal)
    product = service.get_product(session, sku.product_id, actor=principal)
    return next(s for s in service.product_view(session, product).skus if s.id == sku.id)


def _entry_read(entry: Any) -> StockEntryRead:
    return StockEntryRead(id=entry.id, delta=entry.delta, balance_after=entry.balance_after, reason=entry.reason,
                          note=entry.note, actor_type=entry.actor_type, actor_id=entry.actor_id,
                          created_at=entry.created_at)


# ---------------------------------------------------------------- products (staff)


@router.get("/api/v1/admin/products")
def list_products(session: DbSession, principal: Staff, q: Q = None, category_id: CategoryFilter = None,
                  status: ProductStatus | None = None, cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.list_products(session, actor=principal, q=q, category_id=category_id,
                                 status=status.value if status else None, cursor=cursor, limit=limit)
    views = service.product_views(session, merchant_id=principal.merchant_id, products=page.items)
    return {"items": [_product_read(v) for v in views], "next_cursor": page.next_cursor}


@router.post("/api/v1/admin/products", response_model=ProductRead, status_code=201)
def create_product(body: ProductCreate, session: DbSession, principal: Staff) -> ProductRead:
    data = body.model_dump()
    product = service.create_product(session, actor=principal, **data)
    return _read_one(session, product.id, principal)


@router.post("/api/v1/admin/products/import")
def import_products(session: DbSession, principal: Staff, file: Annotated[UploadFile, File()]) -> dict:
    """CSV import (columns: title, category, subtitle, price, list_price, stock, spec, sku_code, status)."""
    principal.require("catalog.manage")
    data = file.file.read(service.csv_import.MAX_BYTES + 1)
    report = service.import_products_csv(session, actor=principal, data=data)
    return {"products_created": report.products_created, "products_failed": report.products_failed,
            "rows": [dataclasses.asdict(r) for r in report.rows]}


@router.get("/api/v1/admin/products/{product_id}", response_model=ProductRead)
def get_product(product_id: Id, session: DbSession, principal: Staff) -> ProductRead:
    return _read_one(session, product_id, principal)


@router.patch("/api/v1/admin/products/{product_id}", response_model=ProductRead)
def update_product(product_id: Id, body: ProductUpdate, session: DbSession, principal: Staff) -> ProductRead:
    changes = body.model_dump(exclude_unset=True)
    if "skus" in changes:
        changes["skus"] = [s.model_dump(exclude_unset=True) for s in body.skus or []]
    if changes.get("status") is not None:
        changes["status"] = ProductStatus(changes["status"]).value
    service.update_product(session, product_id, actor=principal, **changes)
    return _read_one(session, product_id, principal)


# ---------------------------------------------------------------- SKUs and stock


@router.get("/api/v1/admin/skus/{sku_id}", response_model=SkuRead)
def get_sku(sku_id: Id, session: DbSession, principal: Staff) -> SkuRead:
    return _sku_read(_sku_view(session, sku_id, principal))


@router.patch("/api/v1/admin/skus/{sku_id}", response_model=SkuRead)
def update_sku(sku_id: Id, body: SkuUpdate, session: DbSession, principal: Staff,
               idempotency_key: IdemKey = None) -> SkuRead:
    """`stock` is the new absolute stock; the difference is posted to the stock ledger."""
    service.update_sku(session, sku_id, actor=principal, idempotency_key=idempotency_key,
                       **body.model_dump(exclude_unset=True))
    return _sku_read(_sku_view(session, sku_id, principal))


@router.post("/api/v1/admin/skus/{sku_id}/stock-adjustments", status_code=201)
def adjust_stock(sku_id: Id, body: StockAdjustment, session: DbSession, principal: Staff,
                 idempotency_key: IdemKey = None) -> dict:
    entry = service.adjust_stock(session, sku_id, actor=principal, delta=body.delta, reason=body.reason,
                                 note=body.note, idempotency_key=idempotency_key)
    return {"entry": _entry_read(entry), "stock": entry.balance_after}


@router.get("/api/v1/admin/skus/{sku_id}/stock-entries")
def stock_entries(sku_id: Id, session: DbSession, principal: Staff, cursor: Cursor = None,
                  limit: Limit = None) -> dict:
    page = service.stock_entries(session, sku_id, actor=principal, cursor=cursor, limit=limit)
    return {"items": [_entry_read(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/api/v1/admin/catalog/low-stock")
def low_stock(session: DbSession, principal: Staff,
              threshold: Annotated[int, Query(ge=0, le=2**31 - 1)] = 10, limit: Limit = 20) -> dict:
    return {"items": service.low_stock_skus(session, merchant_id=principal.merchant_id, threshold=threshold,
                                            limit=limit or 20)}


# ---------------------------------------------------------------- categories


@router.get("/api/v1/admin/categories")
def list_categories(session: DbSession, principal: Staff) -> dict:
    rows = service.list_categories(session, merchant_id=principal.merchant_id)
    return {"items": [CategoryRead.model_validate(c) for c in rows]}


@router.post("/api/v1/admin/categories", response_model=CategoryRead, status_code=201)
def create_category(body: CategoryCreate, session: DbSession, principal: Staff) -> CategoryRead:
    return CategoryRead.model_validate(service.create_category(session, actor=principal, **body.model_dump()))


@router.get("/api/v1/admin/categories/{category_id}", response_model=CategoryRead)
def get_category(category_id: Id, session: DbSession, principal: Staff) -> CategoryRead:
    return CategoryRead.model_validate(service.get_category(session, category_id, actor=principal))


@router.patch("/api/v1/admin/categories/{category_id}", response_model=CategoryRead)
def update_category(category_id: Id, body: CategoryUpdate, session: DbSession, principal: Staff) -> CategoryRead:
    category = service.update_category(session, category_id, actor=principal, **body.model_dump(exclude_unset=True))
    return CategoryRead.model_validate(category)


@router.delete("/api/v1/admin/categories/{category_id}", status_code=204)
def delete_category(category_id: Id, session: DbSession, principal: Staff) -> Response:
    service.delete_category(session, category_id, actor=principal)
    return Response(status_code=204)


# ---------------------------------------------------------------- media


@router.post("/api/v1/admin/media", response_model=MediaRead, status_code=201)
def upload_media(session: DbSession, principal: Staff, file: Annotated[UploadFile, File()]) -> MediaRead:
    """An image (PNG, JPEG, WebP or GIF, judged by its bytes) → {id, url: "/media/…"}."""
    principal.require("catalog.manage")
    limit = get_settings().media_max_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(details={"max_bytes": limit})
    return MediaRead.model_validate(service.save_upload(session, actor=principal, data=data,
                                                        filename=file.filename or ""))


# ---------------------------------------------------------------- shop


def _shop_product(view: service.ProductView) -> dict:
    return {
        "id": view.id, "title": view.title, "subtitle": view.subtitle, "image": view.cover, "images": view.images,
        "category_id": view.category_id, "price_cents": view.price_cents, "list_price_cents": view.list_price_cents,
        "stock": view.stock, "sold_out": view.sold_out,
        "skus": [{"id": s.id, "spec": s.spec, "spec_text": s.spec_text, "price_cents": s.price_cents,
                  "list_price_cents": s.list_price_cents, "stock": s.stock, "sold_out": s.sold_out}
                 for s in view.skus],
    }


@router.get("/api/v1/shop/{m}/products")
def shop_products(merchant: ShopMerchant, session: DbSession, q: Q = None, category_id: CategoryFilter = None,
                  cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.list_shop_products(session, merchant_id=merchant.id, q=q, category_id=category_id,
                                      cursor=cursor, limit=limit)
    views = service.product_views(session, merchant_id=merchant.id, products=page.items, active_skus_only=True)
    return {"items": [_shop_product(v) for v in views], "next_cursor": page.next_cursor}


@router.get("/api/v1/shop/{m}/products/{product_id}")
def shop_product(merchant: ShopMerchant, product_id: Id, session: DbSession) -> dict:
    product = service.get_shop_product(session, merchant_id=merchant.id, product_id=product_id)
    view = service.product_view(session, product, active_skus_only=True)
    return {**_shop_product(view), "description": view.description}


@router.get("/api/v1/shop/{m}/categories")
def shop_categories(merchant: ShopMerchant, session: DbSession) -> dict:
    tree = service.category_tree(session, merchant_id=merchant.id)
    return {"items": [{"id": top.id, "name": top.name, "parent_id": None,
                       "children": [{"id": c.id, "name": c.name, "parent_id": top.id} for c in children]}
                      for top, children in tree]}
