"""CSV import: one row per SKU, rows with the same title form one product. Each product is written
in its own savepoint, so a bad row fails only its product, good products land, and nothing is ever
half-written."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.catalog.models import Category, Product
from siyu.catalog.schemas import check_spec
from siyu.catalog.service.products import create_product
from siyu.catalog.states import ProductStatus
from siyu.core.auth import Principal
from siyu.core.errors import AppError, field_error
from siyu.core.i18n import gettext as _
from siyu.core.money import yuan_to_cents

# (column, what goes in it) — shown on the import page.
CSV_COLUMNS = [
    ("title", "Product title (required). Rows with the same title become one product with several SKUs."),
    ("category", "Category name, or \"parent/child\" (created when missing)."),
    ("subtitle", "Short selling line."),
    ("price", "Price in yuan, e.g. 59.90 (required)."),
    ("list_price", "Crossed-out list price in yuan (optional)."),
    ("stock", "Starting stock, a whole number (default 0)."),
    ("spec", "The SKU's spec as name:value pairs separated by semicolons, e.g. 颜色:红;尺码:M."),
    ("sku_code", "Your own SKU code (optional, unique)."),
    ("status", "draft, on_sale or off_sale (default draft)."),
]
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
STATUS_WORDS = {"": "draft", "draft": "draft", "草稿": "draft", "on_sale": "on_sale", "上架": "on_sale",
                "在售": "on_sale", "off_sale": "off_sale", "下架": "off_sale"}


@dataclasses.dataclass
class ImportRow:
    line: int
    title: str
    ok: bool
    message: str = ""
    product_id: int | None = None


@dataclasses.dataclass
class ImportReport:
    rows: list[ImportRow]
    products_created: int = 0
    products_failed: int = 0

    @property
    def rows_ok(self) -> int:
        return sum(1 for r in self.rows if r.ok)

    @property
    def rows_failed(self) -> int:
        return sum(1 for r in self.rows if not r.ok)


def _decode(data: bytes) -> str:
    # Excel in China saves CSV as GB18030/GBK unless told otherwise.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise field_error("file", "The file is not UTF-8 or GBK text.")


def parse_spec(text: str) -> dict[str, str]:
    spec: dict[str, str] = {}
    for part in re.split(r"[;；]", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^:：=]+)[:：=](.*)$", part)
        if not m:
            raise ValueError(_("Write the spec as name:value pairs, e.g. 颜色:红;尺码:M."))
        spec[m.group(1).strip()] = m.group(2).strip()
    try:
        return check_spec(spec)
    except ValueError as exc:
        raise ValueError(_("Write the spec as name:value pairs, e.g. 颜色:红;尺码:M.")) from exc


def _parse_row(row: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    get = lambda k: (row.get(k) or "").strip()  # noqa: E731
    out: dict[str, Any] = {"title": get("title"), "category": get("category"), "subtitle": get("subtitle")[:200]}
    if not out["title"] or len(out["title"]) > 120:
        errors.append(_("Enter a title of at most 120 characters."))
    try:
        out["price_cents"] = yuan_to_cents(get("price"))
        if not 0 <= out["price_cents"] <= 2**31 - 1:
            raise ValueError
    except ValueError:
        errors.append(_("price: enter an amount in yuan, e.g. 59.90."))
    if get("list_price"):
        try:
            out["list_price_cents"] = yuan_to_cents(get("list_price"))
            if not 0 <= out["list_price_cents"] <= 2**31 - 1:
                raise ValueError
        except ValueError:
            errors.append(_("list_price: enter an amount in yuan, e.g. 79.00."))
    try:
        out["stock"] = int(get("stock") or "0")
        if not 0 <= out["stock"] <= 2**31 - 1:
            raise ValueError
    except ValueError:
        errors.append(_("stock: enter a whole number of zero or more."))
    try:
        out["spec"] = parse_spec(get("spec"))
    except ValueError as exc:
        errors.append(str(exc))
    out["code"] = get("sku_code")
    if len(out["code"]) > 60:
        errors.append(_("sku_code: at most 60 characters."))
    status = STATUS_WORDS.get(get("status").lower())
    if status is None:
        errors.append(_("status: use draft, on_sale or off_sale."))
    out["status"] = status or "draft"
    if len(out["category"]) > 81:
        errors.append(_("category: the name is too long."))
    return out, errors


def _category_id(session: Session, actor: Principal, path: str) -> int | None:
    """Find or create the category named by "name" or "parent/child"."""
    if not path:
        return None
    parts = [p.strip() for p in path.split("/")]
    if len(parts) > 2 or not all(parts) or any(len(p) > 40 for p in parts):
        raise field_error("category", "Categories have two levels: write \"parent/child\" at most.")

    def find(name: str, parent_id: int | None) -> Category | None:
        stmt = select(Category).where(Category.merchant_id == actor.merchant_id, Category.name == name)
        stmt = stmt.where(Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id)
        return session.scalars(stmt.order_by(Category.id)).first()

    def make(name: str, parent_id: int | None) -> Category:
        row = Category(merchant_id=actor.merchant_id, name=name, parent_id=parent_id)
        session.add(row)
        session.flush()
        return row

    if len(parts) == 2:
        parent = find(parts[0], None) or make(parts[0], None)
        return (find(parts[1], parent.id) or make(parts[1], parent.id)).id
    top = find(parts[0], None)
    if top:
        return top.id
    child = session.scalars(select(Category).where(Category.merchant_id == actor.merchant_id,
                                                   Category.name == parts[0]).order_by(Category.id)).first()
    return (child or make(parts[0], None)).id


def import_products_csv(session: Session, *, actor: Principal, data: bytes) -> ImportReport:
    """Create products from a CSV (columns in CSV_COLUMNS) and report on every row."""
    actor.require("catalog.manage")
    if len(data) > MAX_BYTES:
        raise field_error("file", "The file is larger than 5 MB; split it.")
    text = _decode(data)
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if "title" not in header or "price" not in header:
        raise field_error("file", "The first line must name the columns, with at least title and price.")
    reader.fieldnames = header
    groups: dict[str, list[tuple[int, dict[str, Any], list[str]]]] = {}
    count = 0
    try:
        for raw in reader:
            count += 1
            if count > MAX_ROWS:
                raise field_error("file", "At most {n} rows per file; split it.", n=MAX_ROWS)
            if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
                continue
            parsed, errors = _parse_row({k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)})
            groups.setdefault(parsed["title"], []).append((reader.line_num, parsed, errors))
    except csv.Error as exc:
        raise field_error("file", "The file is not valid CSV: {error}", error=str(exc)[:200]) from exc
    report = ImportReport(rows=[])
    for title, rows in groups.items():
        results = _import_product(session, actor, title, rows)
        report.rows.extend(results)
        if all(r.ok for r in results):
            report.products_created += 1
        else:
            report.products_failed += 1
    report.rows.sort(key=lambda r: r.line)
    return report


def _import_product(session: Session, actor: Principal, title: str,
                    rows: list[tuple[int, dict[str, Any], list[str]]]) -> list[ImportRow]:
    if any(errors for _line, _p, errors in rows):
        return [ImportRow(line=line, title=title, ok=False,
                          message="; ".join(errors) or _("Not imported: another row of this product has errors."))
                for line, _p, errors in rows]
    first = rows[0][1]
    category = next((p["category"] for _l, p, _e in rows if p["category"]), "")
    try:
        with session.begin_nested():
            if session.scalar(select(Product.id).where(Product.merchant_id == actor.merchant_id,
                                                       Product.title == title).limit(1)):
                raise field_error("title", "A product with this title already exists; not imported again.")
            product = create_product(
                session, actor=actor, title=title, subtitle=first["subtitle"],
                category_id=_category_id(session, actor, category),
                status=first["status"] if first["status"] in {s.value for s in ProductStatus} else "draft",
                skus=[{"spec": p["spec"], "price_cents": p["price_cents"],
                       "list_price_cents": p.get("list_price_cents"), "code": p["code"], "stock": p["stock"]}
                      for _l, p, _e in rows],
                stock_reason="import")
    except AppError as exc:
        fields = exc.details.get("fields", {}) if isinstance(exc.details, dict) else {}
        results = []
        for i, (line, _p, _e) in enumerate(rows):
            own = [m for f, m in fields.items() if f.startswith(f"skus.{i}.")]
            other = [m for f, m in fields.items() if not f.startswith("skus.")]
            message = "; ".join(own + other) or (_("Not imported: another row of this product has errors.")
                                                 if fields else exc.translated())
            results.append(ImportRow(line=line, title=title, ok=False, message=message))
        return results
    return [ImportRow(line=line, title=title, ok=True, product_id=product.id) for line, _p, _e in rows]
