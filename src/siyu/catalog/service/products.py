"""Products (SPU) and their SKUs: create, change, list, show."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from siyu.catalog.events import PRODUCT_STATUS_CHANGED, ProductStatusChanged
from siyu.catalog.models import Category, Product, Sku
from siyu.catalog.service.categories import category_ids_with_children
from siyu.catalog.service.common import STOCK_KIND, STOCK_OWNER, get_product, get_sku, spec_key, spec_text
from siyu.catalog.service.stock import set_stock, stock_of
from siyu.catalog.states import ProductStatus, assert_transition
from siyu.core import clock
from siyu.core.auth import Principal, get_scoped, scoped, system_principal
from siyu.core.errors import NotFound, field_error
from siyu.core.events import emit
from siyu.core.pagination import Page, paginate
from siyu.ledger import service as ledger

__all__ = ["get_product", "get_sku", "spec_key", "spec_text"]

MAX_PRICE = 2**31 - 1


@dataclasses.dataclass
class SkuView:
    id: int
    product_id: int
    spec: dict[str, str]
    spec_text: str
    price_cents: int
    list_price_cents: int | None
    weight_g: int
    code: str
    active: bool
    stock: int

    @property
    def sold_out(self) -> bool:
        return self.stock <= 0


@dataclasses.dataclass
class ProductView:
    """A product with its SKUs and their stock, loaded in a fixed number of queries."""

    id: int
    title: str
    subtitle: str
    description: str
    images: list[str]
    category_id: int | None
    status: str
    sort_order: int
    created_at: dt.datetime
    updated_at: dt.datetime
    skus: list[SkuView]
    # The lowest price and the total stock of its active SKUs.
    price_cents: int | None
    list_price_cents: int | None
    stock: int

    @property
    def cover(self) -> str | None:
        return self.images[0] if self.images else None

    @property
    def sold_out(self) -> bool:
        return self.stock <= 0


def product_views(session: Session, *, merchant_id: int, products: Sequence[Product],
                  active_skus_only: bool = False) -> list[ProductView]:
    if not products:
        return []
    ids = [p.id for p in products]
    stmt = select(Sku).where(Sku.merchant_id == merchant_id, Sku.product_id.in_(ids))
    if active_skus_only:
        stmt = stmt.where(Sku.active.is_(True))
    skus = list(session.scalars(stmt.order_by(Sku.sort_order, Sku.id)))
    stock = stock_of(session, merchant_id=merchant_id, sku_ids=[s.id for s in skus])
    by_product: dict[int, list[SkuView]] = {}
    for s in skus:
        by_product.setdefault(s.product_id, []).append(SkuView(
            id=s.id, product_id=s.product_id, spec=dict(s.spec or {}), spec_text=spec_text(s.spec or {}),
            price_cents=s.price_cents, list_price_cents=s.list_price_cents, weight_g=s.weight_g, code=s.code,
            active=s.active, stock=stock.get(s.id, 0)))
    views = []
    for p in products:
        sku_views = by_product.get(p.id, [])
        active = [s for s in sku_views if s.active]
        cheapest = min(active, key=lambda s: (s.price_cents, s.id)) if active else None
        views.append(ProductView(
            id=p.id, title=p.title, subtitle=p.subtitle, description=p.description, images=list(p.images or []),
            category_id=p.category_id, status=p.status, sort_order=p.sort_order, created_at=p.created_at,
            updated_at=p.updated_at, skus=sku_views, price_cents=cheapest.price_cents if cheapest else None,
            list_price_cents=cheapest.list_price_cents if cheapest else None,
            stock=sum(s.stock for s in active)))
    return views


def product_view(session: Session, product: Product, *, active_skus_only: bool = False) -> ProductView:
    return product_views(session, merchant_id=product.merchant_id, products=[product],
                         active_skus_only=active_skus_only)[0]


# ---------------------------------------------------------------- validation


def _check_category(session: Session, actor: Principal, category_id: int | None) -> None:
    if category_id is None:
        return
    try:
        get_scoped(session, Category, category_id, actor)
    except NotFound as exc:
        raise field_error("category_id", "Choose an existing category.") from exc


def _check_skus(session: Session, merchant_id: int, skus: Sequence[dict[str, Any]], *, field: str = "skus",
                exclude_product_id: int | None = None) -> None:
    """Each spec once per product, each non-empty code once per merchant, prices in range."""
    seen_specs: dict[str, int] = {}
    seen_codes: dict[str, int] = {}
    for i, s in enumerate(skus):
        key = spec_key(s.get("spec") or {})
        if key in seen_specs:
            raise field_error(f"{field}.{i}.spec", "Two SKUs of this product have the same spec.")
        seen_specs[key] = i
        price = s.get("price_cents")
        if price is None or not 0 <= price <= MAX_PRICE:
            raise field_error(f"{field}.{i}.price_cents", "Enter a price of zero or more.")
        list_price = s.get("list_price_cents")
        if list_price is not None and not 0 <= list_price <= MAX_PRICE:
            raise field_error(f"{field}.{i}.list_price_cents", "Enter a price of zero or more.")
        if s.get("stock") is not None and s["stock"] < 0:
            raise field_error(f"{field}.{i}.stock", "Stock cannot be below zero.")
        code = (s.get("code") or "").strip()
        if code:
            if code in seen_codes:
                raise field_error(f"{field}.{i}.code", "This SKU code is already used.")
            seen_codes[code] = i
    codes = list(seen_codes)
    if codes:
        stmt = select(Sku.code, Sku.id).where(Sku.merchant_id == merchant_id, Sku.code.in_(codes))
        if exclude_product_id:
            stmt = stmt.where(Sku.product_id != exclude_product_id)
        taken = {code for code, _ in session.execute(stmt)}
        for code in codes:
            if code in taken:
                raise field_error(f"{field}.{seen_codes[code]}.code", "This SKU code is already used.")


def _check_sellable(product_skus: Sequence[dict[str, Any]] | Sequence[Sku]) -> None:
    def active(s: Any) -> bool:
        return bool(s.get("active", True)) if isinstance(s, dict) else bool(s.active)

    if not any(active(s) for s in product_skus):
        raise field_error("status", "A product needs at least one active SKU to go on sale.")


def _new_sku(merchant_id: int, product_id: int, data: dict[str, Any], sort_order: int) -> Sku:
    spec = dict(data.get("spec") or {})
    now = clock.now()
    return Sku(merchant_id=merchant_id, product_id=product_id, spec=spec, spec_key=spec_key(spec),
               price_cents=data["price_cents"], list_price_cents=data.get("list_price_cents"),
               weight_g=data.get("weight_g") or 0, code=(data.get("code") or "").strip(),
               active=data.get("active", True), sort_order=sort_order, created_at=now, updated_at=now)


def _open_stock(session: Session, merchant_id: int, skus: list[Sku], stock: list[int], *, reason: str,
                actor: Principal) -> None:
    ledger.open_accounts(session, merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                         opening={s.id: q for s, q in zip(skus, stock, strict=True)}, reason=reason,
                         key_prefix="stock-initial", actor=actor)


# ---------------------------------------------------------------- writes


def create_product(session: Session, *, actor: Principal, title: str, skus: Sequence[dict[str, Any]],
                   subtitle: str = "", description: str = "", images: Sequence[str] = (),
                   category_id: int | None = None, status: str = ProductStatus.DRAFT, sort_order: int = 0,
                   stock_reason: str = "initial") -> Product:
    """A product with its SKUs; each SKU's starting stock is its opening ledger entry."""
    actor.require("catalog.manage")
    title = (title or "").strip()
    if not title or len(title) > 120:
        raise field_error("title", "Enter a title of at most 120 characters.")
    if not skus:
        raise field_error("skus", "Add at least one SKU.")
    status = ProductStatus(status)
    assert_transition(ProductStatus.DRAFT, status)
    if status == ProductStatus.ON_SALE:
        _check_sellable(skus)
    _check_category(session, actor, category_id)
    _check_skus(session, actor.merchant_id, skus)
    now = clock.now()
    product = Product(merchant_id=actor.merchant_id, title=title, subtitle=subtitle or "",
                      description=description or "", images=list(images), category_id=category_id,
                      status=status.value, sort_order=sort_order, created_at=now, updated_at=now)
    session.add(product)
    session.flush()
    rows = [_new_sku(actor.merchant_id, product.id, dict(s), i) for i, s in enumerate(skus)]
    session.add_all(rows)
    session.flush()
    _open_stock(session, actor.merchant_id, rows, [int(s.get("stock") or 0) for s in skus], reason=stock_reason,
                actor=actor)
    if status != ProductStatus.DRAFT:
        emit(session, PRODUCT_STATUS_CHANGED, ProductStatusChanged(product.id, ProductStatus.DRAFT.value, status.value),
             merchant_id=actor.merchant_id)
    return product


def change_status(session: Session, product_id: int, *, actor: Principal, status: str) -> Product:
    """Move a product through the status table (draft → on sale → off sale …)."""
    actor.require("catalog.manage")
    product = get_product(session, product_id, actor=actor)
    _apply_status(session, product, ProductStatus(status))
    session.flush()
    return product


def _apply_status(session: Session, product: Product, status: ProductStatus) -> None:
    old = product.status
    if old == status.value:
        return
    assert_transition(old, status)
    if status == ProductStatus.ON_SALE:
        _check_sellable(list(session.scalars(select(Sku).where(Sku.product_id == product.id))))
    product.status = status.value
    product.updated_at = clock.now()
    emit(session, PRODUCT_STATUS_CHANGED, ProductStatusChanged(product.id, old, status.value),
         merchant_id=product.merchant_id)


_UNSET: Any = object()


def update_product(session: Session, product_id: int, *, actor: Principal, title: str | None = None,
                   subtitle: str | None = None, description: str | None = None, images: Sequence[str] | None = None,
                   category_id: int | None | Any = _UNSET, status: str | None = None, sort_order: int | None = None,
                   skus: Sequence[dict[str, Any]] | None = None, reason: str | None = None) -> Product:
    """Change fields, add SKUs (items without `id`), change SKUs (with `id`; `stock` there is the new
    absolute stock, the difference goes to the ledger with `reason`), then the status. SKUs are
    never deleted: a SKU that is not sold any more is made inactive."""
    actor.require("catalog.manage")
    product = get_product(session, product_id, actor=actor)
    if title is not None:
        title = title.strip()
        if not title or len(title) > 120:
            raise field_error("title", "Enter a title of at most 120 characters.")
        product.title = title
    if subtitle is not None:
        product.subtitle = subtitle
    if description is not None:
        product.description = description
    if images is not None:
        product.images = list(images)
    if category_id is not _UNSET:
        _check_category(session, actor, category_id)
        product.category_id = category_id
    if sort_order is not None:
        product.sort_order = sort_order
    if skus:
        _upsert_skus(session, product, skus, actor=actor, reason=reason or "stocktake")
    if status is not None:
        _apply_status(session, product, ProductStatus(status))
    product.updated_at = clock.now()
    session.flush()
    return product


def _upsert_skus(session: Session, product: Product, items: Sequence[dict[str, Any]], *, actor: Principal,
                 reason: str) -> None:
    existing = {s.id: s for s in session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.id))}
    # The SKUs as they will be, to check specs and codes across the whole product before writing.
    final: dict[int | str, dict[str, Any]] = {
        s.id: {"spec": s.spec, "price_cents": s.price_cents, "list_price_cents": s.list_price_cents,
               "code": s.code, "active": s.active} for s in existing.values()}
    position: dict[int | str, int] = {}
    for i, item in enumerate(items):
        sku_id = item.get("id")
        if sku_id is not None:
            if sku_id not in existing:
                raise field_error(f"skus.{i}.id", "This SKU is not part of the product.")
            merged = dict(final[sku_id])
            # None means "unchanged", except for the list price, which may be cleared.
            merged.update({k: v for k, v in item.items() if k in merged and (v is not None or k == "list_price_cents")})
            final[sku_id] = merged
            position[sku_id] = i
        else:
            if item.get("price_cents") is None:
                raise field_error(f"skus.{i}.price_cents", "Enter a price of zero or more.")
            final[f"new{i}"] = {"spec": item.get("spec") or {}, "price_cents": item["price_cents"],
                                "list_price_cents": item.get("list_price_cents"), "code": item.get("code") or "",
                                "active": True if item.get("active") is None else item["active"],
                                "stock": item.get("stock") or 0}
            position[f"new{i}"] = i
    keys = list(final)
    try:
        _check_skus(session, product.merchant_id, [final[k] for k in keys], exclude_product_id=product.id)
    except Exception as exc:
        # Report the error on the item the caller sent, not on our merged list.
        fields = getattr(exc, "details", {}).get("fields", {})
        for name, message in list(fields.items()):
            parts = name.split(".")
            if len(parts) == 3 and parts[1].isdigit():
                k = keys[int(parts[1])]
                idx = position.get(k, int(parts[1]))
                exc.details["fields"] = {f"skus.{idx}.{parts[2]}": message}  # type: ignore[attr-defined]
        raise
    now = clock.now()
    new_rows: list[Sku] = []
    new_stock: list[int] = []
    next_sort = max((s.sort_order for s in existing.values()), default=-1) + 1
    for i, item in enumerate(items):
        sku_id = item.get("id")
        if sku_id is None:
            row = _new_sku(product.merchant_id, product.id, final[f"new{i}"], next_sort)
            next_sort += 1
            new_rows.append(row)
            new_stock.append(int(item.get("stock") or 0))
            continue
        sku = existing[sku_id]
        if item.get("spec") is not None:
            sku.spec = dict(item["spec"])
            sku.spec_key = spec_key(sku.spec)
        for attr in ("price_cents", "weight_g", "code", "active"):
            if item.get(attr) is not None:
                setattr(sku, attr, item[attr].strip() if attr == "code" else item[attr])
        if "list_price_cents" in item:
            sku.list_price_cents = item["list_price_cents"]
        sku.updated_at = now
        if item.get("stock") is not None:
            set_stock(session, sku, actor=actor, stock=item["stock"], reason=reason)
    if new_rows:
        session.add_all(new_rows)
        session.flush()
        _open_stock(session, product.merchant_id, new_rows, new_stock, reason="initial", actor=actor)
    session.flush()


def update_sku(session: Session, sku_id: int, *, actor: Principal, stock: int | None = None,
               price_cents: int | None = None, list_price_cents: int | None = None, weight_g: int | None = None,
               code: str | None = None, active: bool | None = None, reason: str | None = None, note: str = "",
               idempotency_key: str | None = None) -> Sku:
    """Change one SKU; `stock` is the new absolute stock (the difference goes to the ledger)."""
    actor.require("catalog.manage")
    sku = get_sku(session, sku_id, actor=actor)
    if code is not None and code.strip() and code.strip() != sku.code:
        _check_skus(session, sku.merchant_id, [{"spec": {}, "price_cents": 0, "code": code}],
                    exclude_product_id=sku.product_id)
        sibling = session.scalar(select(Sku.id).where(Sku.product_id == sku.product_id, Sku.id != sku.id,
                                                      Sku.code == code.strip()))
        if sibling:
            raise field_error("code", "This SKU code is already used.")
    if price_cents is not None:
        sku.price_cents = price_cents
    if list_price_cents is not None:
        sku.list_price_cents = list_price_cents
    if weight_g is not None:
        sku.weight_g = weight_g
    if code is not None:
        sku.code = code.strip()
    if active is not None:
        sku.active = active
    sku.updated_at = clock.now()
    if stock is not None:
        set_stock(session, sku, actor=actor, stock=stock, reason=reason or "stocktake", note=note,
                  idempotency_key=idempotency_key)
    session.flush()
    return sku


# ---------------------------------------------------------------- reads


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(session: Session, stmt: Select[Any], *, merchant_id: int, q: str | None,
              category_id: int | None, status: str | None) -> Select[Any]:
    if q:
        pattern = f"%{_escape_like(q.strip()[:100])}%"
        by_code = select(Sku.id).where(Sku.product_id == Product.id, Sku.code.ilike(pattern, escape="\\")).exists()
        stmt = stmt.where(or_(Product.title.ilike(pattern, escape="\\"), by_code))
    if category_id:
        stmt = stmt.where(Product.category_id.in_(
            category_ids_with_children(session, merchant_id=merchant_id, category_id=category_id) or [0]))
    if status:
        stmt = stmt.where(Product.status == ProductStatus(status).value)
    return stmt


def list_products(session: Session, *, actor: Principal, q: str | None = None, category_id: int | None = None,
                  status: str | None = None, cursor: str | None = None, limit: int | None = None) -> Page[Product]:
    """Products for staff, newest first: search on title and SKU code, filter by category (a top
    level includes its children) and status."""
    stmt = scoped(select(Product), Product, actor)
    stmt = _filtered(session, stmt, merchant_id=actor.merchant_id, q=q, category_id=category_id, status=status)
    return paginate(session, stmt, Product.id, cursor=cursor, limit=limit)


def list_shop_products(session: Session, *, merchant_id: int, q: str | None = None, category_id: int | None = None,
                       cursor: str | None = None, limit: int | None = None) -> Page[Product]:
    """What customers can see: products on sale only."""
    stmt = scoped(select(Product), Product, system_principal(merchant_id))
    stmt = _filtered(session, stmt, merchant_id=merchant_id, q=q, category_id=category_id,
                     status=ProductStatus.ON_SALE)
    return paginate(session, stmt, Product.id, cursor=cursor, limit=limit)


def get_shop_product(session: Session, *, merchant_id: int, product_id: int) -> Product:
    """A product a customer may open: on sale, else not found."""
    product = get_scoped(session, Product, product_id, system_principal(merchant_id))
    if product.status != ProductStatus.ON_SALE:
        raise NotFound()
    return product
