"""The customer's cart: one line per SKU, a quantity, and whether it is selected for checkout."""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.attribution.service import funnel
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.orders.models import CartLine
from siyu.orders.service.catalog_facts import SkuFacts, load_skus
from siyu.orders.service.common import SkuUnavailable, valid_id

MAX_CART_LINES = 100
MAX_QUANTITY = 999


@dataclasses.dataclass(frozen=True)
class CartItem:
    line: CartLine
    # None when the SKU no longer exists.
    sku: SkuFacts | None

    @property
    def available(self) -> bool:
        return self.sku is not None and self.sku.sellable

    @property
    def subtotal_cents(self) -> int:
        return self.sku.price_cents * self.line.quantity if self.sku else 0


def _customer_id(actor: Principal) -> int:
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    return actor.customer_id


def _lines(session: Session, actor: Principal) -> list[CartLine]:
    return list(session.scalars(select(CartLine).where(CartLine.merchant_id == actor.merchant_id,
                                                       CartLine.customer_id == _customer_id(actor))
                                .order_by(CartLine.id.desc())))


def list_cart(session: Session, *, actor: Principal) -> list[CartItem]:
    """The cart, newest line first, with each SKU's current title, price, stock and availability."""
    lines = _lines(session, actor)
    skus = load_skus(session, merchant_id=actor.merchant_id, sku_ids=[line.sku_id for line in lines])
    return [CartItem(line=line, sku=skus.get(line.sku_id)) for line in lines]


def cart_summary(items: list[CartItem]) -> dict[str, int]:
    """Selected, available lines: how many units and what they cost before any discount."""
    chosen = [i for i in items if i.line.selected and i.available]
    return {"selected_quantity": sum(i.line.quantity for i in chosen),
            "selected_subtotal_cents": sum(i.subtotal_cents for i in chosen),
            "lines": len(items)}


def get_cart_line(session: Session, line_id: int, *, actor: Principal) -> CartLine:
    customer_id = _customer_id(actor)
    row = session.get(CartLine, line_id) if valid_id(line_id) else None
    if row is None or row.merchant_id != actor.merchant_id or row.customer_id != customer_id:
        raise NotFound()
    return row


def add_to_cart(session: Session, *, actor: Principal, sku_id: int, quantity: int = 1) -> CartLine:
    """Put a SKU in the cart; a SKU already there gets the quantity added (at most 999)."""
    customer_id = _customer_id(actor)
    sku = load_skus(session, merchant_id=actor.merchant_id, sku_ids=[sku_id]).get(sku_id)
    if sku is None or not sku.sellable:
        raise SkuUnavailable(details={"sku_id": sku_id})
    funnel.record_event(session, merchant_id=actor.merchant_id, kind="add_to_cart", customer_id=customer_id,
                        product_id=sku.product_id)
    row = session.scalars(select(CartLine).where(CartLine.merchant_id == actor.merchant_id,
                                                 CartLine.customer_id == customer_id,
                                                 CartLine.sku_id == sku_id)).first()
    if row is not None:
        row.quantity = min(MAX_QUANTITY, row.quantity + quantity)
        row.selected = True
        session.flush()
        return row
    count = session.scalar(select(func.count()).select_from(CartLine).where(
        CartLine.merchant_id == actor.merchant_id, CartLine.customer_id == customer_id)) or 0
    if count >= MAX_CART_LINES:
        raise Conflict("Your cart is full; remove something first.", code="cart_full")
    row = CartLine(merchant_id=actor.merchant_id, customer_id=customer_id, sku_id=sku_id,
                   quantity=min(MAX_QUANTITY, quantity), selected=True)
    session.add(row)
    session.flush()
    return row


def update_cart_line(session: Session, line_id: int, *, actor: Principal, quantity: int | None = None,
                     selected: bool | None = None) -> CartLine:
    row = get_cart_line(session, line_id, actor=actor)
    if quantity is not None:
        row.quantity = quantity
    if selected is not None:
        row.selected = selected
    session.flush()
    return row


def remove_cart_line(session: Session, line_id: int, *, actor: Principal) -> None:
    row = get_cart_line(session, line_id, actor=actor)
    session.delete(row)
    session.flush()


def select_all(session: Session, *, actor: Principal, selected: bool) -> int:
    result = session.execute(update(CartLine).where(CartLine.merchant_id == actor.merchant_id,
                                                    CartLine.customer_id == _customer_id(actor))
                             .values(selected=selected).execution_options(synchronize_session="fetch"))
    return result.rowcount or 0


def remove_skus(session: Session, *, merchant_id: int, customer_id: int, sku_ids: list[int]) -> None:
    """Take bought SKUs out of the cart (after an order placed from it)."""
    if sku_ids:
        session.execute(delete(CartLine).where(CartLine.merchant_id == merchant_id, CartLine.customer_id == customer_id,
                                               CartLine.sku_id.in_(sku_ids)).execution_options(synchronize_session="fetch"))


def checkout_items(session: Session, *, actor: Principal) -> list[dict[str, int]]:
    """The selected, available cart lines as checkout items (`[{sku_id, quantity}]`)."""
    return [{"sku_id": i.line.sku_id, "quantity": i.line.quantity}
            for i in list_cart(session, actor=actor) if i.line.selected and i.available]
