"""Principals, roles, password hashing, tokens, and the one scoping helper every query uses.

A `Principal` is who is asking: a staff member (with role and the stores they may see) or a
customer. `scoped(stmt, Model, principal)` applies the tenant always, and the role's scope where
the model declares one (`__scope__`):

- brand_admin: the whole merchant;
- agent_admin: rows of the stores under their agent;
- store_manager: rows of their store;
- guide: rows they own (the model's owner column), else rows of their store.

A row outside the scope is simply not found: callers answer 404, never 403.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from siyu.core.errors import NotFound, PermissionDenied

T = TypeVar("T")


class Role(StrEnum):
    BRAND_ADMIN = "brand_admin"
    AGENT_ADMIN = "agent_admin"
    STORE_MANAGER = "store_manager"
    GUIDE = "guide"


ROLE_LABELS = {
    Role.BRAND_ADMIN: "Brand admin",
    Role.AGENT_ADMIN: "Agent admin",
    Role.STORE_MANAGER: "Store manager",
    Role.GUIDE: "Guide",
}

# What each role may do beyond reading what its scope shows. Domains add their permissions here
# in one place, so the console can show a role matrix.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "catalog.manage": frozenset({Role.BRAND_ADMIN}),
    "customers.manage": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER, Role.GUIDE}),
    "customers.view_phone": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    "customers.export": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    "customers.export_phone": frozenset({Role.BRAND_ADMIN}),
    "customers.merge": frozenset({Role.BRAND_ADMIN}),
    # Move customers to another guide (the transfer tool and a leaver's departure transfer).
    "customers.transfer": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    "customers.tags_manage": frozenset({Role.BRAND_ADMIN}),
    "staff.manage": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    "stores.manage": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN}),
    "merchant.manage": frozenset({Role.BRAND_ADMIN}),
    # Ship, verify pickups (at their own store), complete: everyone on the shop floor.
    "orders.fulfil": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER, Role.GUIDE}),
    "orders.refund": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    "orders.export": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    # Membership: tiers, points rules, points mall and paid plans; staff adjustments of points.
    "membership.manage": frozenset({Role.BRAND_ADMIN}),
    "membership.adjust": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER}),
    # Group buying: leaders, waves, deliveries (shortage refunds) and the community map.
    "groupbuy.manage": frozenset({Role.BRAND_ADMIN}),
    # Stored value: recharge plans, balance adjustments and recharge refunds (money: the brand only).
    "membership.stored_value": frozenset({Role.BRAND_ADMIN}),
    # Marketing: coupon templates and every campaign (flash sales, team buys, bargains, ladders, split
    # coupons, payment offers, pop-ups).
    "promotions.manage": frozenset({Role.BRAND_ADMIN}),
    # Send coupons to customers one by one (a guide to their own customers).
    "promotions.send_coupons": frozenset({Role.BRAND_ADMIN, Role.AGENT_ADMIN, Role.STORE_MANAGER, Role.GUIDE}),
}


@dataclasses.dataclass(frozen=True)
class Principal:
    merchant_id: int
    kind: str  # "staff", "customer" or "system"
    subject_id: int | None
    role: Role | None = None
    # Stores a staff member's scope covers (agent: its stores; manager and guide: their store).
    store_ids: tuple[int, ...] = ()
    agent_id: int | None = None
    name: str = ""

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def staff_id(self) -> int | None:
        return self.subject_id if self.kind == "staff" else None

    @property
    def customer_id(self) -> int | None:
        return self.subject_id if self.kind == "customer" else None

    def can(self, permission: str) -> bool:
        if self.kind == "system":
            return True
        roles = PERMISSIONS.get(permission)
        if roles is None:
            raise KeyError(f"unknown permission {permission!r}")
        return self.role in roles

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise PermissionDenied()


def system_principal(merchant_id: int) -> Principal:
    """For jobs and event handlers: the whole merchant, every permission."""
    return Principal(merchant_id=merchant_id, kind="system", subject_id=None, name="system")


def scoped(stmt: Select[Any], model: Any, principal: Principal) -> Select[Any]:
    """Restrict a SELECT on `model` to the principal's tenant and role scope.

    `model.__scope__` may name a `store` column and an `owner` column, e.g.
    `{"store": "store_id", "owner": "owner_id"}`; models without it are merchant-wide.
    """
    stmt = stmt.where(model.merchant_id == principal.merchant_id)
    if principal.kind == "system" or principal.role == Role.BRAND_ADMIN:
        return stmt
    if principal.kind == "customer":
        return stmt
    scope = getattr(model, "__scope__", None) or {}
    store_col = getattr(model, scope["store"]) if "store" in scope else None
    owner_col = getattr(model, scope["owner"]) if "owner" in scope else None
    if principal.role == Role.GUIDE and owner_col is not None:
        return stmt.where(owner_col == principal.subject_id)
    if store_col is not None:
        if not principal.store_ids:
            return stmt.where(false())
        conditions = [store_col.in_(principal.store_ids)]
        if owner_col is not None and principal.role == Role.GUIDE:
            conditions.append(owner_col == principal.subject_id)
        return stmt.where(or_(*conditions))
    return stmt


def get_scoped(session: Session, model: type[T], object_id: int, principal: Principal, *, lock: bool = False) -> T:
    """One object by id inside the principal's scope, else NotFound (never another tenant's)."""
    if not isinstance(object_id, int) or object_id <= 0 or object_id > 2**62:
        raise NotFound()
    stmt = scoped(select(model).where(model.id == object_id), model, principal)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound()
    return row


@lru_cache
def _hasher() -> PasswordHasher:
    from siyu.config import get_settings

    s = get_settings()
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are stored only as their SHA-256, so a database leak does not leak sessions."""
    return hashlib.sha256(token.encode()).hexdigest()
