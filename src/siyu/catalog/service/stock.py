"""Stock: every change is a ledger entry (kind "stock", owner ("sku", id)); the balance is the
stock. Callers see 409 `out_of_stock` when a change would take it below zero."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from siyu.catalog.models import Sku
from siyu.catalog.service.common import STOCK_KIND, STOCK_OWNER, get_sku
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, field_error
from siyu.core.pagination import Page
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerEntry

STOCK_REASONS = {
    "initial": "Initial stock",
    "restock": "Restock",
    "stocktake": "Stocktake",
    "damage": "Damaged or lost",
    "return": "Returned goods",
    "correction": "Correction",
    "adjustment": "Adjustment",
    "import": "CSV import",
}
# The reasons a person may choose; the others are written by the system.
MANUAL_STOCK_REASONS = ("restock", "stocktake", "damage", "return", "correction", "adjustment")


class OutOfStock(Conflict):
    code = "out_of_stock"
    message = "Not enough stock."


def stock_of(session: Session, *, merchant_id: int, sku_ids: list[int]) -> dict[int, int]:
    return ledger.balances(session, merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER, owner_ids=sku_ids)


def post_stock(session: Session, *, merchant_id: int, sku_id: int, delta: int, reason: str, idempotency_key: str,
               note: str = "", ref_type: str | None = None, ref_id: int | None = None,
               actor: Principal | None = None) -> LedgerEntry:
    """Move a SKU's stock (orders reserve with a negative delta and release with a positive one).
    Raises OutOfStock, moving nothing, when the stock would go below zero."""
    try:
        return ledger.post(session, merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER, owner_id=sku_id,
                           delta=delta, reason=reason, idempotency_key=idempotency_key, note=note,
                           ref_type=ref_type, ref_id=ref_id, actor=actor)
    except ledger.InsufficientBalance as exc:
        raise OutOfStock(details={"sku_id": sku_id, "stock": exc.details.get("balance", 0),
                                  "requested": -delta}) from exc


def reserve_new(session: Session, *, merchant_id: int, sku_id: int, quantity: int, idempotency_key: str,
                note: str = "", ref_type: str | None = None, ref_id: int | None = None,
                actor: Principal | None = None) -> int:
    """Take `quantity` for a row created in this transaction (a new order): the key cannot exist
    yet, so the stock moves in two statements (`ledger.post_new`). Returns the stock left; raises
    OutOfStock, moving nothing, when short."""
    try:
        return ledger.post_new(session, merchant_id=merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                               owner_id=sku_id, delta=-quantity, reason="order_reserve",
                               idempotency_key=idempotency_key, note=note, ref_type=ref_type, ref_id=ref_id,
                               actor=actor)
    except ledger.InsufficientBalance as exc:
        raise OutOfStock(details={"sku_id": sku_id, "stock": exc.details.get("balance", 0),
                                  "requested": quantity}) from exc


def _check_reason(reason: str) -> None:
    if reason not in MANUAL_STOCK_REASONS:
        raise field_error("reason", "Choose a reason for the stock change.")


def adjust_stock(session: Session, sku_id: int, *, actor: Principal, delta: int, reason: str, note: str = "",
                 idempotency_key: str | None = None) -> LedgerEntry:
    """Add or take stock with a reason (restock, damage …)."""
    actor.require("catalog.manage")
    sku = get_sku(session, sku_id, actor=actor)
    _check_reason(reason)
    if delta == 0:
        raise field_error("delta", "Enter a change other than zero.")
    key = f"stock:{sku.id}:{idempotency_key}" if idempotency_key else f"stock:{sku.id}:{uuid.uuid4().hex}"
    return post_stock(session, merchant_id=sku.merchant_id, sku_id=sku.id, delta=delta, reason=reason,
                      idempotency_key=key, note=note, ref_type="sku", ref_id=sku.id, actor=actor)


def set_stock(session: Session, sku: Sku, *, actor: Principal, stock: int, reason: str = "stocktake",
              note: str = "", idempotency_key: str | None = None) -> LedgerEntry | None:
    """Set the absolute stock: the difference from the current stock is posted (nothing when none).
    The account row is locked first, so a concurrent order cannot slip in between."""
    actor.require("catalog.manage")
    _check_reason(reason)
    if stock < 0:
        raise field_error("stock", "Stock cannot be below zero.")
    acct = ledger.lock_account(session, merchant_id=sku.merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                               owner_id=sku.id)
    delta = stock - acct.balance
    if delta == 0:
        return None
    key = f"stock:{sku.id}:{idempotency_key}" if idempotency_key else f"stock:{sku.id}:{uuid.uuid4().hex}"
    return post_stock(session, merchant_id=sku.merchant_id, sku_id=sku.id, delta=delta, reason=reason,
                      idempotency_key=key, note=note, ref_type="sku", ref_id=sku.id, actor=actor)


def stock_entries(session: Session, sku_id: int, *, actor: Principal, cursor: str | None = None,
                  limit: int | None = None) -> Page[LedgerEntry]:
    """A SKU's stock ledger, newest first."""
    sku = get_sku(session, sku_id, actor=actor)
    return ledger.entries(session, merchant_id=sku.merchant_id, kind=STOCK_KIND, owner_type=STOCK_OWNER,
                          owner_id=sku.id, cursor=cursor, limit=limit)
