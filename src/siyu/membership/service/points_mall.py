"""membership: the points mall — products exchanged for points, or points plus cash, through the
normal checkout (the checkout names the mall item; see points_checkout)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import audit
from siyu.core.auth import Principal
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.membership.models.points import PointsMallItem


def list_items(session: Session, merchant_id: int, *, active_only: bool = False) -> list[PointsMallItem]:
    stmt = select(PointsMallItem).where(PointsMallItem.merchant_id == merchant_id)
    if active_only:
        stmt = stmt.where(PointsMallItem.active.is_(True))
    return list(session.scalars(stmt.order_by(PointsMallItem.points, PointsMallItem.id)))


def get_item(session: Session, item_id: int, *, merchant_id: int, active_only: bool = False) -> PointsMallItem:
    item = session.get(PointsMallItem, item_id) if isinstance(item_id, int) and 0 < item_id < 2**62 else None
    if item is None or item.merchant_id != merchant_id or (active_only and not item.active):
        raise NotFound("This points-mall item does not exist.", code="mall_item_not_found")
    return item


def _int(value: Any, key: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    try:
        number = int(value.strip()) if isinstance(value, str) else value
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValueError
    except ValueError:
        errors[key] = _("Enter a whole number.")
        return None
    if not low <= number <= high:
        errors[key] = _("Enter a number from {low} to {high}.", low=low, high=high)
        return None
    return number


def save_item(session: Session, *, actor: Principal, item_id: int | None = None, sku_id: Any = None,
              points: Any = None, cash_cents: Any = 0, per_order_limit: Any = 1, active: Any = True) -> PointsMallItem:
    """Offer a SKU in the points mall (or change an offer). The SKU must be on sale."""
    actor.require("membership.manage")
    errors: dict[str, str] = {}
    item = get_item(session, item_id, merchant_id=actor.merchant_id) if item_id else None
    sku = _int(sku_id if sku_id not in (None, "") else (item.sku_id if item else None), "sku_id", 1, 2**53, errors)
    pts = _int(points if points not in (None, "") else (item.points if item else None), "points", 1, 10**9, errors)
    cash = _int(cash_cents if cash_cents not in (None, "") else 0, "cash_cents", 0, 10**9, errors)
    limit = _int(per_order_limit if per_order_limit not in (None, "") else 1, "per_order_limit", 1, 99, errors)
    info = None
    if sku is not None:
        info = catalog.get_skus_for_checkout(session, merchant_id=actor.merchant_id, sku_ids=[sku]).get(sku)
        if info is None:
            errors["sku_id"] = _("No such SKU.")
    if errors:
        raise ValidationFailed(details={"fields": errors})
    assert info is not None and sku is not None and pts is not None and cash is not None and limit is not None
    if item is None:
        item = PointsMallItem(merchant_id=actor.merchant_id, sku_id=sku, product_id=info.product_id,
                              title=info.title[:200], points=pts, cash_cents=cash, per_order_limit=limit)
        session.add(item)
    else:
        item.sku_id, item.product_id, item.title = sku, info.product_id, info.title[:200]
        item.points, item.cash_cents, item.per_order_limit = pts, cash, limit
    item.active = active in (True, "1", "on", "true")
    session.flush()
    audit.record(session, actor=actor, action="membership.mall_item_saved", target_type="membership_mall_item",
                 target_id=item.id, details={"sku_id": sku, "points": pts, "cash_cents": cash})
    return item


def shop_items(session: Session, merchant_id: int) -> list[dict[str, Any]]:
    """Active mall items whose SKU is still for sale, with stock."""
    items = list_items(session, merchant_id, active_only=True)
    skus = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[i.sku_id for i in items])
    out = []
    for item in items:
        info = skus.get(item.sku_id)
        if info is None or not info.sellable:
            continue
        out.append({"id": item.id, "sku_id": item.sku_id, "product_id": item.product_id, "title": item.title,
                    "points": item.points, "cash_cents": item.cash_cents, "per_order_limit": item.per_order_limit,
                    "image_url": info.image or "", "stock": info.stock, "price_cents": info.price_cents})
    return out

