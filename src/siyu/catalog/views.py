"""Console pages (/console/catalog…) and H5 shop pages (/shop/{m}/…) of the catalogue."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from siyu.catalog import forms, service
from siyu.catalog.service import csv_import
from siyu.catalog.states import STATUS_LABELS, TRANSITIONS, ProductStatus
from siyu.config import get_settings
from siyu.core.errors import AppError
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.merchants import service as merchants_service
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant

router = APIRouter(include_in_schema=False)

PathId = Annotated[int, Path(gt=0, le=2**53)]
QText = Annotated[str, Query(max_length=100)]
QCursor = Annotated[str | None, Query(max_length=100)]

FLASHES = {
    "created": "Product created.",
    "saved": "Changes saved.",
    "status": "Status changed.",
    "stock": "Stock changed.",
    "category_created": "Category created.",
    "category_saved": "Category saved.",
    "category_deleted": "Category deleted.",
}


def _flash(request: Request) -> str | None:
    key = request.query_params.get("ok")
    return _(FLASHES[key]) if key in FLASHES else None


def _ctx(request: Request, **extra: Any) -> dict[str, Any]:
    return {"active_menu": "catalog", "flash": _flash(request), "status_labels": STATUS_LABELS, **extra}


def _category_options(session: DbSession, merchant_id: int) -> list[tuple[int, str, bool]]:
    """(id, label, is_child) for selects, children indented under their parent."""
    out = []
    for top, children in service.category_tree(session, merchant_id=merchant_id):
        out.append((top.id, top.name, False))
        out.extend((c.id, f"{top.name} / {c.name}", True) for c in children)
    return out


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) <= 2**53 else None


def _service_errors(exc: AppError, errors: dict[str, str]) -> None:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if fields:
        for name, message in fields.items():
            errors[forms.form_field(name)] = message
    else:
        errors["form"] = exc.translated()


# ---------------------------------------------------------------- product list


@router.get("/console/catalog")
def product_list(request: Request, session: DbSession, principal: ConsoleStaff, q: QText = "",
                 category_id: Annotated[str, Query(max_length=20)] = "",
                 status: Annotated[str, Query(max_length=20)] = "", cursor: QCursor = None) -> Response:
    status_filter = status if status in {s.value for s in ProductStatus} else ""
    cat = _int_or_none(category_id)
    page = service.list_products(session, actor=principal, q=q or None, category_id=cat,
                                 status=status_filter or None, cursor=cursor, limit=20)
    views = service.product_views(session, merchant_id=principal.merchant_id, products=page.items)
    filters = {k: v for k, v in {"q": q, "category_id": cat or "", "status": status_filter}.items() if v}
    next_url = f"/console/catalog?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else None
    categories = _category_options(session, principal.merchant_id)
    return render(request, "catalog/list.html", _ctx(
        request, products=views, q=q, category_id=cat, status=status_filter, filtered=bool(filters),
        categories=categories, category_names={i: label for i, label, _c in categories}, next_url=next_url,
        first_url=f"/console/catalog?{urlencode(filters)}" if cursor else None,
        can_manage=principal.can("catalog.manage")))


# ---------------------------------------------------------------- product form


def _form_page(request: Request, session: DbSession, principal: Any, *, product: Any = None,
               values: dict[str, Any], rows: list[dict[str, Any]], errors: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    allowed = sorted(TRANSITIONS[ProductStatus(product.status)], key=list(ProductStatus).index) if product else []
    return render(request, "catalog/form.html", _ctx(
        request, product=product, values=values, rows=rows, errors=errors or {},
        categories=_category_options(session, principal.merchant_id), allowed_statuses=allowed,
        can_manage=principal.can("catalog.manage"), max_mb=max(1, get_settings().media_max_bytes // (1024 * 1024)),
        merchant_slug=merchants_service.get_merchant(session, principal.merchant_id).slug),
        status_code=status_code)


@router.get("/console/catalog/new")
def new_product_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    principal.require("catalog.manage")
    values = {"title": "", "subtitle": "", "description": "", "category_id": None, "status": "draft",
              "specs": "", "images": []}
    return _form_page(request, session, principal, values=values, rows=[forms.blank_row({})])




def _posted_values(form: Any) -> dict[str, Any]:
    images = [v for v in form.getlist("images") if isinstance(v, str) and v.startswith("/media/") and len(v) < 300]
    return {"title": form_str(form, "title", max_length=200), "subtitle": form_str(form, "subtitle", max_length=300),
            "description": form_str(form, "description", max_length=20_000),
            "category_id": _int_or_none(form_str(form, "category_id", max_length=20)),
            "status": form_str(form, "status", "draft", 20), "specs": form_str(form, "specs", max_length=2000),
            "images": images[:20]}


def _save_uploads(session: DbSession, principal: Any, form: Any, values: dict[str, Any], errors: dict[str, str]) -> None:
    """Store the uploaded images first, so that even when the form has errors they are kept."""
    for upload in form.getlist("image_files"):
        if isinstance(upload, str) or not getattr(upload, "filename", ""):
            continue
        data = upload.file.read(get_settings().media_max_bytes + 1)
        if not data:
            continue
        try:
            with session.begin_nested():
                media = service.save_upload(session, actor=principal, data=data, filename=upload.filename)
            values["images"].append(media.url)
        except AppError as exc:
            errors["image_files"] = f"{upload.filename[:60]}: {exc.translated()}"


def _handle_product_form(request: Request, session: DbSession, principal: Any, form: Any,
                         product_id: int | None) -> Response:
    principal.require("catalog.manage")
    product = service.get_product(session, product_id, actor=principal) if product_id else None
    view = service.product_view(session, product) if product else None
    existing = {s.id: s for s in view.skus} if view else {}
    values = _posted_values(form)
    errors: dict[str, str] = {}
    rows = forms.posted_rows(form, existing)
    action = form_str(form, "action", "save", 20)
    _save_uploads(session, principal, form, values, errors)
    try:
        dims = forms.parse_dimensions(values["specs"])
    except ValueError as exc:
        errors["specs"] = str(exc)
        dims = None
    if action == "generate" or not rows:
        if dims is not None:
            rows = forms.regenerate(rows, dims)
        if action == "generate":
            return _form_page(request, session, principal, product=view, values=values, rows=rows, errors=errors)
    if not values["title"] or len(values["title"]) > 120:
        errors["title"] = _("Enter a title of at most 120 characters.")
    if len(values["subtitle"]) > 200:
        errors["subtitle"] = _("At most 200 characters.")
    skus = forms.validate_rows(rows, errors)
    if product is None and values["status"] not in ("draft", "on_sale"):
        errors["status"] = _("Choose draft or on sale.")
    if errors:
        return _form_page(request, session, principal, product=view, values=values, rows=rows, errors=errors,
                          status_code=422)
    try:
        with session.begin_nested():
            if product is None:
                product = service.create_product(
                    session, actor=principal, title=values["title"], subtitle=values["subtitle"],
                    description=values["description"], images=values["images"], category_id=values["category_id"],
                    status=values["status"], skus=skus)
            else:
                service.update_product(
                    session, product.id, actor=principal, title=values["title"], subtitle=values["subtitle"],
                    description=values["description"], images=values["images"], category_id=values["category_id"],
                    skus=skus)
    except AppError as exc:
        _service_errors(exc, errors)
        return _form_page(request, session, principal, product=view, values=values, rows=rows, errors=errors,
                          status_code=422 if exc.status_code == 422 else exc.status_code)
    return RedirectResponse(f"/console/catalog/{product.id}?ok={'saved' if product_id else 'created'}", status_code=303)


@router.post("/console/catalog/new")
def create_product(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _handle_product_form(request, session, principal, form, None)


@router.post("/console/catalog/{product_id}/status")
def change_status(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                  product_id: PathId) -> Response:
    status = form_str(form, "status", max_length=20)
    if status not in {s.value for s in ProductStatus}:
        return RedirectResponse(f"/console/catalog/{product_id}", status_code=303)
    try:
        with session.begin_nested():
            service.change_status(session, product_id, actor=principal, status=status)
    except AppError as exc:
        if exc.status_code in (404, 403):
            raise
        product = service.get_product(session, product_id, actor=principal)
        view = service.product_view(session, product)
        values = {"title": view.title, "subtitle": view.subtitle, "description": view.description,
                  "category_id": view.category_id, "status": view.status, "images": view.images,
                  "specs": forms.dimensions_text([s.spec for s in view.skus])}
        errors = {"status": next(iter((exc.details.get("fields") or {}).values()), None) or exc.translated()}
        return _form_page(request, session, principal, product=view, values=values,
                          rows=[forms.row_from_sku(s) for s in view.skus], errors=errors, status_code=exc.status_code)
    return RedirectResponse(f"/console/catalog/{product_id}?ok=status", status_code=303)


# ---------------------------------------------------------------- stock


def _stock_page(request: Request, session: DbSession, principal: Any, sku_id: int, *, cursor: str | None = None,
                values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                status_code: int = 200) -> Response:
    sku = service.get_sku(session, sku_id, actor=principal)
    product = service.get_product(session, sku.product_id, actor=principal)
    view = service.product_view(session, product)
    sku_view = next(s for s in view.skus if s.id == sku.id)
    page = service.stock_entries(session, sku.id, actor=principal, cursor=cursor, limit=50)
    return render(request, "catalog/stock.html", _ctx(
        request, product=view, sku=sku_view, entries=page.items, reasons=service.STOCK_REASONS,
        manual_reasons=service.MANUAL_STOCK_REASONS, values=values or {"delta": "", "reason": "restock", "note": ""},
        errors=errors or {}, can_manage=principal.can("catalog.manage"),
        next_url=f"/console/catalog/skus/{sku.id}/stock?cursor={page.next_cursor}" if page.next_cursor else None),
        status_code=status_code)


@router.get("/console/catalog/skus/{sku_id}/stock")
def stock_page(request: Request, session: DbSession, principal: ConsoleStaff, sku_id: PathId,
               cursor: QCursor = None) -> Response:
    return _stock_page(request, session, principal, sku_id, cursor=cursor)


@router.post("/console/catalog/skus/{sku_id}/stock")
def adjust_stock(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                 sku_id: PathId) -> Response:
    values = {"delta": form_str(form, "delta", max_length=12), "reason": form_str(form, "reason", max_length=30),
              "note": form_str(form, "note", max_length=300)}
    errors: dict[str, str] = {}
    try:
        delta = int(values["delta"].replace("+", "", 1))
        if delta == 0 or abs(delta) > 2**31 - 1:
            raise ValueError
    except ValueError:
        errors["delta"] = _("Enter a whole number other than zero, e.g. 10 or -3.")
    if values["reason"] not in service.MANUAL_STOCK_REASONS:
        errors["reason"] = _("Choose a reason for the stock change.")
    if errors:
        return _stock_page(request, session, principal, sku_id, values=values, errors=errors, status_code=422)
    try:
        service.adjust_stock(session, sku_id, actor=principal, delta=delta, reason=values["reason"],
                             note=values["note"])
    except AppError as exc:
        if exc.status_code in (404, 403):
            raise
        if exc.code == "out_of_stock":
            errors["delta"] = _("Not enough stock: there are only {n}.", n=exc.details.get("stock", 0))
        else:
            _service_errors(exc, errors)
        return _stock_page(request, session, principal, sku_id, values=values, errors=errors,
                           status_code=exc.status_code)
    return RedirectResponse(f"/console/catalog/skus/{sku_id}/stock?ok=stock", status_code=303)


# ---------------------------------------------------------------- categories


def _categories_page(request: Request, session: DbSession, principal: Any, *, values: dict[str, Any] | None = None,
                     errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    tree = service.category_tree(session, merchant_id=principal.merchant_id)
    return render(request, "catalog/categories.html", _ctx(
        request, tree=tree, values=values or {"name": "", "parent_id": None}, errors=errors or {},
        can_manage=principal.can("catalog.manage")), status_code=status_code)


@router.get("/console/catalog/categories")
def categories_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _categories_page(request, session, principal)


@router.post("/console/catalog/categories")
def create_category(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    values = {"name": form_str(form, "name", max_length=100),
              "parent_id": _int_or_none(form_str(form, "parent_id", max_length=20))}
    try:
        with session.begin_nested():
            service.create_category(session, actor=principal, name=values["name"], parent_id=values["parent_id"])
    except AppError as exc:
        if exc.status_code == 403:
            raise
        errors: dict[str, str] = {}
        _service_errors(exc, errors)
        return _categories_page(request, session, principal, values=values, errors=errors, status_code=422)
    return RedirectResponse("/console/catalog/categories?ok=category_created", status_code=303)


@router.post("/console/catalog/categories/{category_id}")
def rename_category(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                    category_id: PathId) -> Response:
    name = form_str(form, "name", max_length=100)
    try:
        sort_order = int(form_str(form, "sort_order", "0", 8) or 0)
    except ValueError:
        sort_order = None
    try:
        with session.begin_nested():
            service.update_category(session, category_id, actor=principal, name=name, sort_order=sort_order)
    except AppError as exc:
        if exc.status_code in (403, 404):
            raise
        errors: dict[str, str] = {}
        _service_errors(exc, errors)
        errors = {f"{category_id}.{k}": v for k, v in errors.items()}
        return _categories_page(request, session, principal, errors=errors, status_code=422)
    return RedirectResponse("/console/catalog/categories?ok=category_saved", status_code=303)


@router.post("/console/catalog/categories/{category_id}/delete")
def delete_category(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                    category_id: PathId) -> Response:
    try:
        service.delete_category(session, category_id, actor=principal)
    except AppError as exc:
        if exc.status_code in (403, 404):
            raise
        return _categories_page(request, session, principal, errors={f"{category_id}.delete": exc.translated()},
                                status_code=exc.status_code)
    return RedirectResponse("/console/catalog/categories?ok=category_deleted", status_code=303)


# ---------------------------------------------------------------- CSV import


SAMPLE_ROWS = [
    ["纯棉T恤", "服装/上衣", "夏季新款", "59.90", "79.00", "20", "颜色:白;尺码:M", "TEE-W-M", "on_sale"],
    ["纯棉T恤", "服装/上衣", "", "59.90", "79.00", "15", "颜色:白;尺码:L", "TEE-W-L", "on_sale"],
    ["手冲咖啡豆", "食品", "中度烘焙", "88", "", "50", "", "", "draft"],
]


def _import_page(request: Request, principal: Any, *, report: Any = None, errors: dict[str, str] | None = None,
                 status_code: int = 200) -> Response:
    return render(request, "catalog/import.html", _ctx(
        request, columns=csv_import.CSV_COLUMNS, report=report, errors=errors or {},
        can_manage=principal.can("catalog.manage")), status_code=status_code)


@router.get("/console/catalog/import")
def import_page(request: Request, principal: ConsoleStaff) -> Response:
    return _import_page(request, principal)


@router.get("/console/catalog/import/sample.csv")
def import_sample(principal: ConsoleStaff) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([c for c, _d in csv_import.CSV_COLUMNS])
    writer.writerows(SAMPLE_ROWS)
    return Response(("\ufeff" + buf.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="products-sample.csv"'})


@router.post("/console/catalog/import")
def import_products(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    principal.require("catalog.manage")
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        return _import_page(request, principal, errors={"file": _("Choose a CSV file.")}, status_code=422)
    data = upload.file.read(csv_import.MAX_BYTES + 1)
    try:
        report = service.import_products_csv(session, actor=principal, data=data)
    except AppError as exc:
        errors: dict[str, str] = {}
        _service_errors(exc, errors)
        return _import_page(request, principal, errors=errors, status_code=422)
    return _import_page(request, principal, report=report)


# Routes with a product id in the path come after the fixed paths above (categories, import).


@router.get("/console/catalog/{product_id}")
def edit_product_page(request: Request, session: DbSession, principal: ConsoleStaff, product_id: PathId) -> Response:
    product = service.get_product(session, product_id, actor=principal)
    view = service.product_view(session, product)
    values = {"title": view.title, "subtitle": view.subtitle, "description": view.description,
              "category_id": view.category_id, "status": view.status, "images": view.images,
              "specs": forms.dimensions_text([s.spec for s in view.skus])}
    return _form_page(request, session, principal, product=view, values=values,
                      rows=[forms.row_from_sku(s) for s in view.skus])


@router.post("/console/catalog/{product_id}")
def update_product(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                   product_id: PathId) -> Response:
    return _handle_product_form(request, session, principal, form, product_id)


# ---------------------------------------------------------------- H5 shop


def _grid_page(request: Request, session: DbSession, merchant: Any, template: str, *, q: str = "",
               category: Any = None, cursor: str | None = None, tab: str = "home", **extra: Any) -> Response:
    page = service.list_shop_products(session, merchant_id=merchant.id, q=q or None,
                                      category_id=category.id if category else None, cursor=cursor, limit=20)
    views = service.product_views(session, merchant_id=merchant.id, products=page.items, active_skus_only=True)
    params = {k: v for k, v in {"q": q}.items() if v}
    base = request.url.path
    more_url = f"{base}?{urlencode({**params, 'cursor': page.next_cursor})}" if page.next_cursor else None
    tree = service.category_tree(session, merchant_id=merchant.id)
    return render(request, template, {"merchant": merchant, "tab": tab, "q": q, "products": views, "more_url": more_url,
                                      "tree": tree, "category": category, **extra})


@router.get("/shop/{m}/")
def shop_home(request: Request, session: DbSession, merchant: ShopMerchant, cursor: QCursor = None) -> Response:
    return _grid_page(request, session, merchant, "catalog/shop_home.html", cursor=cursor)


@router.get("/shop/{m}")
def shop_home_redirect(m: Annotated[str, Path(max_length=40)], merchant: ShopMerchant) -> Response:
    return RedirectResponse(f"/shop/{merchant.slug}/", status_code=307)


@router.get("/shop/{m}/c/{category_id}")
def shop_category(request: Request, session: DbSession, merchant: ShopMerchant, category_id: PathId,
                  cursor: QCursor = None) -> Response:
    from siyu.core.auth import system_principal

    category = service.get_category(session, category_id, actor=system_principal(merchant.id))
    return _grid_page(request, session, merchant, "catalog/shop_category.html", category=category, cursor=cursor)


@router.get("/shop/{m}/search")
def shop_search(request: Request, session: DbSession, merchant: ShopMerchant, q: QText = "",
                cursor: QCursor = None) -> Response:
    return _grid_page(request, session, merchant, "catalog/shop_search.html", q=q.strip(), cursor=cursor, tab="search")


@router.get("/shop/{m}/p/{product_id}")
def shop_product(request: Request, session: DbSession, merchant: ShopMerchant, product_id: PathId) -> Response:
    product = service.get_shop_product(session, merchant_id=merchant.id, product_id=product_id)
    view = service.product_view(session, product, active_skus_only=True)
    chosen = next((s for s in view.skus if not s.sold_out), None)
    return render(request, "catalog/shop_product.html", {"merchant": merchant, "tab": "home", "product": view,
                                                         "chosen": chosen})
