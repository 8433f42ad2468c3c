"""The customer's address book."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied
from siyu.orders.models import CustomerAddress
from siyu.orders.service.common import valid_id

MAX_ADDRESSES = 30
ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "detail")


def _customer_id(actor: Principal) -> int:
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    return actor.customer_id


def list_addresses(session: Session, *, actor: Principal) -> list[CustomerAddress]:
    """The customer's addresses, the default first."""
    customer_id = _customer_id(actor)
    return list(session.scalars(
        select(CustomerAddress).where(CustomerAddress.merchant_id == actor.merchant_id,
                                      CustomerAddress.customer_id == customer_id)
        .order_by(CustomerAddress.is_default.desc(), CustomerAddress.id.desc())
    ))


def get_address(session: Session, address_id: int, *, actor: Principal) -> CustomerAddress:
    customer_id = _customer_id(actor)
    row = session.get(CustomerAddress, address_id) if valid_id(address_id) else None
    if row is None or row.merchant_id != actor.merchant_id or row.customer_id != customer_id:
        raise NotFound()
    return row


def _clear_default(session: Session, actor: Principal, keep_id: int | None = None) -> None:
    stmt = update(CustomerAddress).where(CustomerAddress.merchant_id == actor.merchant_id,
                                         CustomerAddress.customer_id == actor.customer_id,
                                         CustomerAddress.is_default.is_(True))
    if keep_id is not None:
        stmt = stmt.where(CustomerAddress.id != keep_id)
    session.execute(stmt.values(is_default=False).execution_options(synchronize_session="fetch"))


def create_address(session: Session, *, actor: Principal, name: str, phone: str, province: str, city: str,
                   detail: str, district: str = "", is_default: bool = False) -> CustomerAddress:
    """Add an address; the first one (or one marked default) becomes the default."""
    customer_id = _customer_id(actor)
    count = session.scalar(select(func.count()).select_from(CustomerAddress).where(
        CustomerAddress.merchant_id == actor.merchant_id, CustomerAddress.customer_id == customer_id)) or 0
    if count >= MAX_ADDRESSES:
        raise Conflict("You have too many addresses; delete one first.", code="too_many_addresses")
    if is_default or count == 0:
        _clear_default(session, actor)
        is_default = True
    row = CustomerAddress(merchant_id=actor.merchant_id, customer_id=customer_id, name=name, phone=phone,
                          province=province, city=city, district=district or "", detail=detail, is_default=is_default)
    session.add(row)
    session.flush()
    return row


def update_address(session: Session, address_id: int, *, actor: Principal, **changes: Any) -> CustomerAddress:
    row = get_address(session, address_id, actor=actor)
    for key in ADDRESS_FIELDS:
        if changes.get(key) is not None:
            setattr(row, key, changes[key])
    if changes.get("is_default") is True:
        _clear_default(session, actor, keep_id=row.id)
        row.is_default = True
    session.flush()
    return row


def delete_address(session: Session, address_id: int, *, actor: Principal) -> None:
    """Delete an address; when it was the default, the newest remaining one becomes the default."""
    row = get_address(session, address_id, actor=actor)
    was_default = row.is_default
    session.delete(row)
    session.flush()
    if was_default:
        nxt = session.scalars(select(CustomerAddress).where(
            CustomerAddress.merchant_id == actor.merchant_id, CustomerAddress.customer_id == actor.customer_id)
            .order_by(CustomerAddress.id.desc()).limit(1)).first()
        if nxt is not None:
            nxt.is_default = True
            session.flush()


def default_address(session: Session, *, actor: Principal) -> CustomerAddress | None:
    rows = list_addresses(session, actor=actor)
    return rows[0] if rows else None


def address_snapshot(row: CustomerAddress) -> dict[str, str]:
    return {key: getattr(row, key) for key in ADDRESS_FIELDS}
