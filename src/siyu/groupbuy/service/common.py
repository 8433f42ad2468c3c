"""What the group-buying use cases share: the merchant's group-buy settings, permission checks,
id checks and row loading in the tenant."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.errors import NotFound, PermissionDenied
from siyu.merchants import service as merchants

T = TypeVar("T")
MAX_ID = 2**53
DEFAULT_RADIUS_M = 5_000
MAX_RADIUS_M = 50_000
DEFAULT_OVERDUE_DAYS = 3
DEFAULT_COMMISSION_BPS = 1_000


@dataclasses.dataclass(frozen=True)
class GroupbuySettings:
    search_radius_m: int = DEFAULT_RADIUS_M
    pickup_overdue_days: int = DEFAULT_OVERDUE_DAYS
    default_commission_bps: int = DEFAULT_COMMISSION_BPS


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return default
    return value


def settings_from(raw: dict[str, Any] | None) -> GroupbuySettings:
    data = (raw or {}).get("groupbuy")
    data = data if isinstance(data, dict) else {}
    return GroupbuySettings(
        search_radius_m=_int(data, "search_radius_m", DEFAULT_RADIUS_M, 100, MAX_RADIUS_M),
        pickup_overdue_days=_int(data, "pickup_overdue_days", DEFAULT_OVERDUE_DAYS, 1, 60),
        default_commission_bps=_int(data, "default_commission_bps", DEFAULT_COMMISSION_BPS, 0, 5_000),
    )


def groupbuy_settings(session: Session, merchant_id: int) -> GroupbuySettings:
    """The merchant's search radius, pickup follow-up days and default leader commission."""
    return settings_from(merchants.get_merchant(session, merchant_id).settings)


def update_settings(session: Session, *, actor: Principal, search_radius_m: int | None = None,
                    pickup_overdue_days: int | None = None, default_commission_bps: int | None = None) -> GroupbuySettings:
    require_manager(actor)
    current = dataclasses.asdict(groupbuy_settings(session, actor.merchant_id))
    for key, value in (("search_radius_m", search_radius_m), ("pickup_overdue_days", pickup_overdue_days),
                       ("default_commission_bps", default_commission_bps)):
        if value is not None:
            current[key] = value
    merchants.update_merchant(session, actor=actor, settings={"groupbuy": current})
    return settings_from({"groupbuy": current})


def require_manager(actor: Principal) -> None:
    """Leaders, waves, deliveries and the community map are run by the brand (staff with
    `groupbuy.manage`) or by the system."""
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()
    actor.require("groupbuy.manage")


def require_customer(actor: Principal) -> int:
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    return actor.customer_id


def valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def get_row(session: Session, model: type[T], row_id: int, *, merchant_id: int, lock: bool = False) -> T:
    """A row of this domain by id in the merchant, else NotFound (never another tenant's)."""
    if not valid_id(row_id):
        raise NotFound()
    stmt = select(model).where(model.id == row_id, model.merchant_id == merchant_id)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound()
    return row
