"""Parsing the console's product form: spec dimensions, the SKU matrix rows, money in yuan.

Kept apart from views.py so the rules (what a row is, how rows are generated) are testable alone."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from siyu.catalog.schemas import check_spec
from siyu.catalog.service import spec_key, spec_text
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.web import form_str

MAX_ROWS = 200
MAX_DIMENSIONS = 3


def parse_dimensions(text: str) -> list[tuple[str, list[str]]]:
    """ "颜色: 红, 蓝" per line → [("颜色", ["红", "蓝"])]. Raises ValueError with a message."""
    dims: list[tuple[str, list[str]]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^([^:：]+)[:：](.*)$", line)
        if not m:
            raise ValueError(_("Write one dimension per line, like 颜色: 红, 蓝."))
        name = m.group(1).strip()
        values = [v.strip() for v in re.split(r"[,，、/]", m.group(2)) if v.strip()]
        values = list(dict.fromkeys(values))
        if not name or not values:
            raise ValueError(_("Write one dimension per line, like 颜色: 红, 蓝."))
        if len(name) > 20 or any(len(v) > 40 for v in values):
            raise ValueError(_("Dimension names are at most 20 and values at most 40 characters."))
        if name in [d[0] for d in dims]:
            raise ValueError(_("Each dimension once, please."))
        dims.append((name, values))
    if len(dims) > MAX_DIMENSIONS:
        raise ValueError(_("At most {n} dimensions.", n=MAX_DIMENSIONS))
    total = 1
    for _name, values in dims:
        total *= len(values)
    if total > MAX_ROWS:
        raise ValueError(_("That makes more than {n} SKUs; use fewer values.", n=MAX_ROWS))
    return dims


def dimensions_text(specs: list[dict[str, Any]]) -> str:
    """The dimensions of existing SKUs as the form's text, values in order of appearance."""
    dims: dict[str, list[str]] = {}
    for spec in specs:
        for k, v in spec.items():
            values = dims.setdefault(k, [])
            if v not in values:
                values.append(v)
    return "\n".join(f"{k}: {', '.join(v)}" for k, v in dims.items())


def combinations(dims: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    if not dims:
        return [{}]
    names = [d[0] for d in dims]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(d[1] for d in dims))]


def blank_row(spec: dict[str, str]) -> dict[str, Any]:
    return {"id": None, "spec": spec, "spec_json": json.dumps(spec, ensure_ascii=False), "spec_text": spec_text(spec),
            "price": "", "list_price": "", "stock": "0", "code": "", "active": True, "current_stock": None}


def row_from_sku(sku: Any) -> dict[str, Any]:
    """A form row for an existing SKU (a SkuView)."""
    return {"id": sku.id, "spec": sku.spec, "spec_json": json.dumps(sku.spec, ensure_ascii=False),
            "spec_text": sku.spec_text, "price": cents_to_yuan_str(sku.price_cents),
            "list_price": cents_to_yuan_str(sku.list_price_cents) if sku.list_price_cents is not None else "",
            "stock": str(sku.stock), "code": sku.code, "active": sku.active, "current_stock": sku.stock}


def posted_rows(form: Any, existing: dict[int, Any]) -> list[dict[str, Any]]:
    """The SKU rows as typed (strings kept as typed, so they can be shown again)."""
    try:
        count = min(max(int(form_str(form, "sku_count", "0", 5) or 0), 0), MAX_ROWS)
    except ValueError:
        count = 0
    rows = []
    for i in range(count):
        raw_id = form_str(form, f"sku_id_{i}", max_length=20)
        sku_id = int(raw_id) if raw_id.isdigit() and int(raw_id) in existing else None
        try:
            spec = check_spec(json.loads(form_str(form, f"sku_spec_{i}", "{}", 1000) or "{}"))
        except (ValueError, TypeError):
            spec = {}
        if sku_id is not None:
            spec = dict(existing[sku_id].spec)
        rows.append({
            "id": sku_id, "spec": spec, "spec_json": json.dumps(spec, ensure_ascii=False), "spec_text": spec_text(spec),
            "price": form_str(form, f"sku_price_{i}", max_length=20),
            "list_price": form_str(form, f"sku_list_price_{i}", max_length=20),
            "stock": form_str(form, f"sku_stock_{i}", "0", 12),
            "code": form_str(form, f"sku_code_{i}", max_length=60),
            "active": bool(form.get(f"sku_active_{i}")),
            "current_stock": existing[sku_id].stock if sku_id is not None else None,
        })
    return rows


def regenerate(rows: list[dict[str, Any]], dims: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Rows for every combination of the dimensions: existing SKUs always stay (they are made
    inactive, never deleted); typed rows whose spec is still a combination keep what was typed."""
    by_key = {spec_key(r["spec"]): r for r in rows}
    kept = [r for r in rows if r["id"] is not None]
    kept_keys = {spec_key(r["spec"]) for r in kept}
    out = list(kept)
    for spec in combinations(dims):
        key = spec_key(spec)
        if key in kept_keys:
            continue
        out.append(by_key.get(key) or blank_row(spec))
    return out


def validate_rows(rows: list[dict[str, Any]], errors: dict[str, str]) -> list[dict[str, Any]]:
    """Rows → SKU dicts for the service; problems go into `errors` by form field name."""
    skus = []
    for i, row in enumerate(rows):
        item: dict[str, Any] = {"spec": row["spec"], "code": row["code"], "active": row["active"]}
        if row["id"] is not None:
            item["id"] = row["id"]
        try:
            if not row["price"]:
                raise ValueError
            item["price_cents"] = yuan_to_cents(row["price"])
            if not 0 <= item["price_cents"] <= 2**31 - 1:
                raise ValueError
        except ValueError:
            errors[f"sku_price_{i}"] = _("Enter a price in yuan, e.g. 59.90.")
        if row["list_price"]:
            try:
                item["list_price_cents"] = yuan_to_cents(row["list_price"])
                if not 0 <= item["list_price_cents"] <= 2**31 - 1:
                    raise ValueError
            except ValueError:
                errors[f"sku_list_price_{i}"] = _("Enter a price in yuan, e.g. 79.00.")
        else:
            item["list_price_cents"] = None
        if row["id"] is None:
            try:
                item["stock"] = int(row["stock"] or "0")
                if not 0 <= item["stock"] <= 2**31 - 1:
                    raise ValueError
            except ValueError:
                errors[f"sku_stock_{i}"] = _("Enter a whole number of zero or more.")
        skus.append(item)
    return skus


SERVICE_FIELD = {"price_cents": "price", "list_price_cents": "list_price", "stock": "stock", "code": "code",
                 "spec": "row", "id": "row"}


def form_field(service_field: str) -> str:
    """A service error's field ("skus.2.code") as the form's field name ("sku_code_2")."""
    parts = service_field.split(".")
    if len(parts) == 3 and parts[0] == "skus" and parts[1].isdigit():
        return f"sku_{SERVICE_FIELD.get(parts[2], 'price')}_{parts[1]}"
    return service_field
