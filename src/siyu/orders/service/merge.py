"""When two customers are merged, their orders, refunds, cart and address book follow."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from siyu.orders.models import CartLine, CustomerAddress, Order, RefundRequest

MAX_CART_QUANTITY = 999


def move_customer_rows(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> dict[str, int]:
    """Move the source customer's orders, refund requests, addresses and cart to the target. A SKU in
    both carts becomes one line with both quantities (capped at 999); the target keeps its default
    address. Safe to run twice: the second run finds nothing left to move."""
    moved = {}
    for model in (Order, RefundRequest):
        result = session.execute(update(model).where(model.merchant_id == merchant_id, model.customer_id == source_id)
                                 .values(customer_id=target_id))
        moved[model.__tablename__] = result.rowcount or 0
    target_has_default = session.scalar(select(CustomerAddress.id).where(
        CustomerAddress.merchant_id == merchant_id, CustomerAddress.customer_id == target_id,
        CustomerAddress.is_default.is_(True)).limit(1)) is not None
    values = {"customer_id": target_id, **({"is_default": False} if target_has_default else {})}
    result = session.execute(update(CustomerAddress).where(
        CustomerAddress.merchant_id == merchant_id, CustomerAddress.customer_id == source_id).values(**values))
    moved["customer_addresses"] = result.rowcount or 0

    target_lines = {line.sku_id: line for line in session.scalars(select(CartLine).where(
        CartLine.merchant_id == merchant_id, CartLine.customer_id == target_id))}
    source_lines = list(session.scalars(select(CartLine).where(
        CartLine.merchant_id == merchant_id, CartLine.customer_id == source_id).order_by(CartLine.id)))
    for line in source_lines:
        twin = target_lines.get(line.sku_id)
        if twin is not None:
            twin.quantity = min(MAX_CART_QUANTITY, twin.quantity + line.quantity)
            session.execute(delete(CartLine).where(CartLine.id == line.id))
        else:
            line.customer_id = target_id
    moved["cart_lines"] = len(source_lines)
    session.flush()
    return moved
