"""promotions: what the campaign services of several areas share (bargains, ladders, …).

Who manages promotions, id bounds, a campaign's window (running / upcoming / finished), reading one
campaign of a merchant (optionally locked), and a status action through the area's transition table.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import BigInteger, bindparam, func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, PermissionDenied, field_error
from siyu.customers import service as customers
from siyu.db import execute_core

MAX_ID = 2**53
T = TypeVar("T")
E = TypeVar("E", bound=Enum)


def valid_id(value: Any) -> bool:
    """A positive int id below 2**53 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID


def require_manager(actor: Principal) -> None:
    """Coupon templates and campaigns are set up by staff holding `promotions.manage` (the brand), or by
    the system; anyone else is refused."""
    if actor.kind == "system":
        return
    if actor.kind != "staff":
        raise PermissionDenied()
    actor.require("promotions.manage")


def can_manage(actor: Principal) -> bool:
    try:
        require_manager(actor)
    except AppError:
        return False
    return True


def is_running(campaign: Any, scheduled: Enum, now: dt.datetime | None = None) -> bool:
    """The campaign is `scheduled` and now is inside its window."""
    now = now or clock.now()
    return campaign.status == scheduled and campaign.starts_at <= now < campaign.ends_at


def display_status(campaign: Any, scheduled: Enum, now: dt.datetime | None = None) -> str:
    """What the console shows: running / upcoming / finished follow the window of a scheduled campaign."""
    now = now or clock.now()
    if campaign.status == scheduled:
        if now < campaign.starts_at:
            return "upcoming"
        return "running" if now < campaign.ends_at else "finished"
    return campaign.status


def get_owned(session: Session, model: type[T], object_id: int, *, merchant_id: int, not_found: str,
              lock: bool = False) -> T:
    """The merchant's row of `model` by id (locked FOR UPDATE and refreshed with `lock`); NotFound(`not_found`)
    for a bad id or another merchant's row."""
    if not valid_id(object_id):
        raise NotFound(code=not_found)
    stmt = select(model).where(model.id == object_id, model.merchant_id == merchant_id)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(code=not_found)
    return row


def action_target(action: str, actions: Mapping[str, E]) -> E:
    """The status a console action leads to; a 422 on `action` for an unknown one."""
    if action not in actions:
        raise field_error("action", "Unknown action.")
    return actions[action]


def move(campaign: Any, target: Enum, *, ended: Enum, assert_transition: Callable[[Any, Any], Any]) -> dt.datetime:
    """Move a (locked) campaign to `target` through its transition table; ending early closes the window
    now. Returns now (the caller does its area's follow-up and flushes)."""
    assert_transition(campaign.status, target)
    now = clock.now()
    campaign.status = target.value
    campaign.updated_at = now
    if target == ended and campaign.ends_at > now:
        campaign.ends_at = now
    return now


def count_running(session: Any, model: Any, *, merchant_id: int, statuses: tuple[str, ...] | list[str],
                  now: dt.datetime | None = None) -> int:
    """How many of the merchant's campaigns of `model` (with status, starts_at, ends_at) run now: one of
    `statuses` and now inside the window (each area's `running_count`, the marketing overview's figure)."""
    now = now or clock.now()
    return int(session.scalar(select(func.count()).select_from(model).where(
        model.merchant_id == merchant_id, model.status.in_(list(statuses)), model.starts_at <= now,
        model.ends_at > now)) or 0)


def lock_customer(session: Session, *, merchant_id: int, customer_id: int) -> None:
    """Take the customer's row lock for the rest of the order's transaction, so one customer's orders for a
    campaign are placed one after the other and a per-customer limit counted after this holds under
    concurrency (PostgreSQL; SQLite already serialises writers). Call it in a contributor's `commit`."""
    customers.lock_for_order(session, merchant_id=merchant_id, customer_id=customer_id)


CONVERSION_LOOKBACK = dt.timedelta(days=90)


def recent_touchpoints(session: Session, *, merchant_id: int, customer_id: int, before: dt.datetime) -> frozenset[str]:
    """Which areas the customer met in the 90 days before `before` in a way a paid order can convert:
    "payment_offers" (an offer shown) and "popups" (a pop-up seen or claimed). One read for both, so a
    paid order of a customer who met neither (most of them) costs these areas one statement, not one each."""
    row = execute_core(session, _recent_touchpoints(), {
        "merchant_id": merchant_id, "customer_id": customer_id, "since": before - CONVERSION_LOOKBACK,
        "before": before}).one()
    return frozenset(name for name, found in row._mapping.items() if found)


@functools.cache
def _recent_touchpoints() -> Any:
    # Built once (every paid order asks): the values as parameters.
    from siyu.promotions.models.payment_offers import PaymentOfferShow
    from siyu.promotions.models.popups import PopupEvent

    shows, popups = PaymentOfferShow.__table__, PopupEvent.__table__
    merchant_id, customer_id = bindparam("merchant_id", type_=BigInteger()), bindparam("customer_id", type_=BigInteger())
    since, before = bindparam("since", type_=shows.c.shown_at.type), bindparam("before", type_=shows.c.shown_at.type)
    shown = select(shows.c.id).where(shows.c.merchant_id == merchant_id, shows.c.customer_id == customer_id,
                                     shows.c.shown_at >= since, shows.c.shown_at < before).exists()
    seen = select(popups.c.id).where(popups.c.merchant_id == merchant_id, popups.c.customer_id == customer_id,
                                     popups.c.kind.in_(("impression", "claim")), popups.c.at >= since,
                                     popups.c.at < before).exists()
    return select(shown.label("payment_offers"), seen.label("popups"))
