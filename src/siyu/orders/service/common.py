"""What every orders use case shares: the merchant's order settings, loading orders in scope, and
the one function through which every status change goes (history row + event)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, scoped, system_principal
from siyu.core.errors import Conflict, NotFound
from siyu.core.events import emit
from siyu.db import update_written
from siyu.merchants import service as merchants
from siyu.orders import events as ev
from siyu.orders.models import Order, OrderHistory, OrderLine
from siyu.orders.states import OrderStatus, assert_transition

DEFAULT_ORDER_EXPIRY_MINUTES = 15
DEFAULT_AUTO_COMPLETE_DAYS = 7
DEFAULT_AFTER_SALES_DAYS = 7
MAX_ID = 2**53


# 409 `out_of_stock` with details {sku_id, stock, requested}: the catalogue's own error.
OutOfStock = catalog.OutOfStock


class SkuUnavailable(Conflict):
    code = "sku_unavailable"
    message = "This item is no longer for sale."


@dataclasses.dataclass(frozen=True)
class OrderSettings:
    order_expiry_minutes: int = DEFAULT_ORDER_EXPIRY_MINUTES
    auto_complete_days: int = DEFAULT_AUTO_COMPLETE_DAYS
    after_sales_days: int = DEFAULT_AFTER_SALES_DAYS


def _int_setting(settings: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return default
    return value


def settings_from(raw: dict[str, Any] | None) -> OrderSettings:
    raw = raw or {}
    return OrderSettings(
        order_expiry_minutes=_int_setting(raw, "order_expiry_minutes", DEFAULT_ORDER_EXPIRY_MINUTES, 1, 7 * 24 * 60),
        auto_complete_days=_int_setting(raw, "auto_complete_days", DEFAULT_AUTO_COMPLETE_DAYS, 1, 365),
        after_sales_days=_int_setting(raw, "after_sales_days", DEFAULT_AFTER_SALES_DAYS, 0, 365),
    )


def order_settings(session: Session, merchant_id: int) -> OrderSettings:
    """The merchant's order expiry, auto-complete and after-sales settings (defaults 15 min, 7, 7 days)."""
    return settings_from(merchants.get_merchant(session, merchant_id).settings)


def after_sales_days(session: Session, merchant_id: int) -> int:
    return order_settings(session, merchant_id).after_sales_days


def after_sales_closes_at(order: Order, *, session: Session | None = None, days: int | None = None) -> dt.datetime | None:
    """When the order's after-sales window closes: `after_sales_days` after completion; None while
    the order is not completed. Other domains (commission settlement) wait for it."""
    if order.completed_at is None:
        return None
    if days is None:
        days = after_sales_days(session, order.merchant_id) if session is not None else DEFAULT_AFTER_SALES_DAYS
    return order.completed_at + dt.timedelta(days=days)


def actor_fields(actor: Principal | None) -> tuple[str, int | None]:
    if actor is None:
        return "system", None
    return actor.kind, actor.subject_id


def valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def get_order(session: Session, order_id: int, *, actor: Principal, lock: bool = False) -> Order:
    """An order in the actor's scope: staff by role scope, a customer only their own; else NotFound."""
    if not valid_id(order_id):
        raise NotFound()
    if actor.kind == "customer":
        stmt = select(Order).where(Order.id == order_id, Order.merchant_id == actor.merchant_id,
                                   Order.customer_id == actor.customer_id)
    else:
        stmt = scoped(select(Order).where(Order.id == order_id), Order, actor)
    if lock:
        # Locked: read the row afresh, whatever this session saw of it before.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    order = session.scalars(stmt).first()
    if order is None:
        raise NotFound()
    return order


def lock_order(session: Session, order_id: int, *, merchant_id: int | None = None) -> Order | None:
    """The order with its row locked for the rest of the transaction (fresh from the database)."""
    stmt = select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    if merchant_id is not None:
        stmt = stmt.where(Order.merchant_id == merchant_id)
    return session.scalars(stmt).first()


def order_lines(session: Session, order_id: int) -> list[OrderLine]:
    return list(session.scalars(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id)))


def event_lines(lines: list[OrderLine]) -> list[ev.EventLine]:
    return [ev.EventLine(order_line_id=line.id, sku_id=line.sku_id, product_id=line.product_id,
                         quantity=line.quantity, paid_cents=line.paid_cents) for line in lines]


def add_history(session: Session, order: Order, *, from_status: str | None, to_status: str,
                actor: Principal | None, note: str = "", at: dt.datetime | None = None) -> OrderHistory:
    actor_type, actor_id = actor_fields(actor)
    if order.id is None:
        session.flush()
    values = {"merchant_id": order.merchant_id, "order_id": order.id, "from_status": from_status,
              "to_status": to_status, "actor_type": actor_type, "actor_id": actor_id, "note": note[:500],
              "created_at": at or clock.now()}
    # One plain Core INSERT on the session's connection (no unit of work), a statement built once (the
    # values as parameters); an unattached copy back.
    row_id = session.connection().execute(_INSERT_HISTORY, values).scalar_one()
    return OrderHistory(id=row_id, **values)


_INSERT_HISTORY = insert(OrderHistory.__table__).returning(OrderHistory.__table__.c.id)


def change_status(session: Session, order: Order, new: str | OrderStatus, *, actor: Principal | None,
                  note: str = "", lines: list[OrderLine] | None = None, changes: dict[str, Any] | None = None) -> None:
    """Move an order to `new`: refused unless the transition table allows it; writes the history
    row, stamps the time and emits the event of the new status, all in the caller's transaction.
    `changes`: more of the order's columns to write with the status (one UPDATE for all)."""
    new = OrderStatus(new)
    old = order.status
    assert_transition(old, new)
    now = clock.now()
    values: dict[str, Any] = dict(changes or {})
    values["status"] = new.value
    stamp = _STAMPS.get(new)
    if stamp == "paid_at":
        values["paid_at"] = values.get("paid_at") or order.paid_at or now
    elif stamp is not None:
        values[stamp] = now
    update_written(session, order, values)
    add_history(session, order, from_status=old, to_status=new.value, actor=actor, note=note, at=now)
    payload: Any = None
    name: str | None = None
    if new == OrderStatus.PAID:
        name = ev.ORDER_PAID
        payload = ev.OrderPaid(
            order_id=order.id, order_no=order.order_no, customer_id=order.customer_id, owner_id=order.owner_id,
            store_id=order.store_id, fulfilment_type=order.fulfilment_type, total_cents=order.total_cents,
            paid_cents=order.paid_cents, payment_id=order.payment_id, paid_at=order.paid_at,
            lines=event_lines(lines if lines is not None else order_lines(session, order.id)),
            attribution=dict(order.attribution or {}), kind=order.kind or "goods",
            promotion=dict(order.promotion) if order.promotion is not None else None)
    elif new == OrderStatus.SHIPPED:
        name = ev.ORDER_SHIPPED
        payload = ev.OrderShipped(order_id=order.id, customer_id=order.customer_id, carrier=order.carrier,
                                  tracking_no=order.tracking_no, shipped_at=now)
    elif new == OrderStatus.READY_FOR_PICKUP:
        name = ev.ORDER_READY_FOR_PICKUP
        payload = ev.OrderReadyForPickup(order_id=order.id, customer_id=order.customer_id,
                                         pickup_store_id=order.pickup_store_id, leader_id=order.leader_id)
    elif new == OrderStatus.COMPLETED:
        name = ev.ORDER_COMPLETED
        closes = after_sales_closes_at(order, session=session)
        assert closes is not None
        payload = ev.OrderCompleted(order_id=order.id, customer_id=order.customer_id, total_cents=order.total_cents,
                                    completed_at=now, after_sales_closes_at=closes, kind=order.kind or "goods")
    elif new == OrderStatus.CANCELLED:
        name = ev.ORDER_CANCELLED
        payload = ev.OrderCancelled(order_id=order.id, customer_id=order.customer_id, reason=order.cancel_reason,
                                    payment_parts=list(order.payment_parts or []), cancelled_at=now,
                                    kind=order.kind or "goods",
                                    promotion=dict(order.promotion) if order.promotion is not None else None,
                                    fulfilment_type=order.fulfilment_type)
    if name is not None:
        emit(session, name, payload, merchant_id=order.merchant_id)


# The time each status stamps on the order.
_STAMPS = {OrderStatus.PAID: "paid_at", OrderStatus.SHIPPED: "shipped_at", OrderStatus.READY_FOR_PICKUP: "ready_at",
           OrderStatus.COMPLETED: "completed_at", OrderStatus.CANCELLED: "cancelled_at",
           OrderStatus.REFUNDED: "refunded_at"}


class OrderOnHold(Conflict):
    code = "order_on_hold"
    message = "This order is on hold ({reason}): it cannot be shipped or handed over yet."


def check_not_held(order: Order) -> None:
    if order.fulfilment_hold:
        raise OrderOnHold(details={"hold": order.fulfilment_hold}, reason=order.fulfilment_hold)


def hold_fulfilment(session: Session, *, merchant_id: int, order_id: int, reason: str,
                    actor: Principal | None = None) -> None:
    """Hold a goods order back from shipping and pickup hand-over until `release_fulfilment` (the holding
    domain's own rule, e.g. a team purchase until the team is complete). Written to the order's history."""
    order = lock_order(session, order_id, merchant_id=merchant_id)
    if order is None:
        raise NotFound("This order does not exist.", code="order_not_found")
    if order.fulfilment_hold == reason[:40]:
        return
    order.fulfilment_hold = reason[:40]
    add_history(session, order, from_status=order.status, to_status=order.status, actor=actor,
                note=f"On hold: {order.fulfilment_hold}")


def release_fulfilment(session: Session, *, merchant_id: int, order_id: int, actor: Principal | None = None) -> None:
    """Let a held order be fulfilled again (idempotent)."""
    order = lock_order(session, order_id, merchant_id=merchant_id)
    if order is None or not order.fulfilment_hold:
        return
    add_history(session, order, from_status=order.status, to_status=order.status, actor=actor,
                note=f"Hold released: {order.fulfilment_hold}")
    order.fulfilment_hold = None


def system_actor(merchant_id: int) -> Principal:
    return system_principal(merchant_id)
