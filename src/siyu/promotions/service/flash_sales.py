"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — logic.

Rules:
- A campaign sells its items at their flash price while it is scheduled/active and inside its window.
  Each item has an allocation separate from the SKU's stock: a flash order still reserves real stock
  through orders (the SKU's stock must cover it) and in addition takes from the allocation.
- Checkout: the contributor `promotions.flash_sale` (priority 20) acts only when the customer buys
  through `promotion={kind: "flash_sale", campaign_id}`; it prices the one line and marks it
  (`line.promo`), refusing with `flash_not_started`, `flash_ended`, `flash_paused`, `flash_sold_out`,
  `flash_limit_reached`. Its `commit` (in the order's transaction, as late as possible) raises the
  customer's count (one conditional upsert + UPDATE `bought + q <= limit`) and then the item's `sold`
  (one conditional UPDATE `sold + q <= allocation`, inside the window): the database decides, never a read.
- Admission: before checkout loads anything, `admission_check` refuses a sold-out or ended item with
  one indexed read — or with no database work at all when Redis (`SIYU_REDIS_URL`) holds the item's
  sold-out mark. The mark is only ever set from what the database said, expires on its own, is cleared
  when units are given back, and every Redis failure is ignored: the conditional UPDATE stays the truth.
- A cancelled or expired unpaid order gives its units back to the allocation and the customer's count
  (once: the flash order moves taken → released by a conditional UPDATE). Refunds do NOT give units back:
  the flash price was sold and a buy-refund loop must not reopen a sold-out sale or reset a limit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from typing import Any

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.orders import pricing
from siyu.promotions.models.flash_sales import FlashSale, FlashSaleBuyer, FlashSaleItem, FlashSaleOrder
from siyu.promotions.service.common import count_running, require_manager
from siyu.promotions.states.flash_sales import (
    FLASH_ORDER_MACHINE,
    FLASH_SALE_MACHINE,
    SELLING,
    FlashOrderStatus,
    FlashSaleStatus,
    effective_status,
)

log = logging.getLogger(__name__)

KIND = "flash_sale"
EXTRA_KEY = "flash_sale"
MAX_ITEMS = 50
MAX_ALLOCATION = 1_000_000
MAX_PRICE_CENTS = 2**31 - 1


# ---------------------------------------------------------------- errors (stable codes)


class FlashNotStarted(Conflict):
    code = "flash_not_started"
    message = "This flash sale has not started yet."


class FlashEnded(Conflict):
    code = "flash_ended"
    message = "This flash sale has ended."


class FlashPaused(Conflict):
    code = "flash_paused"
    message = "This flash sale is paused."


class FlashSoldOut(Conflict):
    code = "flash_sold_out"
    message = "Sold out: the flash sale's units are gone."


class FlashLimitReached(Conflict):
    code = "flash_limit_reached"
    message = "At most {limit} per customer in this flash sale."


class FlashNotInSale(Conflict):
    code = "flash_item_not_in_sale"
    message = "This item is not in the flash sale."


# ---------------------------------------------------------------- the Redis sold-out gate


class SoldOutGate:
    """Sold-out marks in Redis, so that the stampede after a sell-out is answered without touching the
    database. Only a cache of what the database said: set when the database refused (or showed the
    item sold out), cleared when units come back, expiring after `ttl` seconds anyway. Absent (no
    `SIYU_REDIS_URL`) or failing Redis means no gate, never a wrong answer about stock."""

    ttl = 60
    prefix = "siyu:flash:"
    # After a Redis error, stay away for this long instead of paying a timeout on every checkout.
    backoff_s = 5.0

    def __init__(self) -> None:
        self._client: Any = None
        self._url: str | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _redis(self) -> Any:
        from siyu.config import get_settings

        url = get_settings().redis_url
        if not url or time.monotonic() < self._down_until:
            return None
        with self._lock:
            if self._client is None or self._url != url:
                import redis

                self._client = redis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.05)
                self._url = url
            return self._client

    def _failed(self, exc: Exception) -> None:
        log.warning("flash-sale sold-out gate: Redis unavailable (%s); using the database only", exc)
        self._down_until = time.monotonic() + self.backoff_s

    def key(self, merchant_id: int, flash_sale_id: int, sku_id: int) -> str:
        return f"{self.prefix}{merchant_id}:{flash_sale_id}:{sku_id}:sold_out"

    def is_sold_out(self, merchant_id: int, flash_sale_id: int, sku_id: int) -> bool:
        client = self._redis()
        if client is None:
            return False
        try:
            return bool(client.exists(self.key(merchant_id, flash_sale_id, sku_id)))
        except Exception as exc:  # noqa: BLE001 - any Redis trouble means "no gate"
            self._failed(exc)
            return False

    def mark(self, merchant_id: int, flash_sale_id: int, sku_id: int) -> None:
        client = self._redis()
        if client is None:
            return
        try:
            client.set(self.key(merchant_id, flash_sale_id, sku_id), "1", ex=self.ttl)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def clear(self, merchant_id: int, flash_sale_id: int, sku_id: int) -> None:
        client = self._redis()
        if client is None:
            return
        try:
            client.delete(self.key(merchant_id, flash_sale_id, sku_id))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def reset(self) -> None:
        with self._lock:
            self._client, self._url, self._down_until = None, None, 0.0


gate = SoldOutGate()


# ---------------------------------------------------------------- reading




def get_flash_sale(session: Session, flash_sale_id: int, *, merchant_id: int, lock: bool = False) -> FlashSale:
    if not isinstance(flash_sale_id, int) or not 0 < flash_sale_id < 2**53:
        raise NotFound()
    stmt = select(FlashSale).where(FlashSale.id == flash_sale_id, FlashSale.merchant_id == merchant_id)
    if lock:
        stmt = stmt.with_for_update()
    sale = session.scalar(stmt)
    if sale is None:
        raise NotFound()
    return sale


def items_of(session: Session, flash_sale_id: int) -> list[FlashSaleItem]:
    # The counters move by UPDATE statements: always read them as they are now.
    return list(session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id == flash_sale_id)
                                .order_by(FlashSaleItem.sort, FlashSaleItem.id)
                                .execution_options(populate_existing=True)))


def items_by_sale(session: Session, flash_sale_ids: list[int]) -> dict[int, list[FlashSaleItem]]:
    found: dict[int, list[FlashSaleItem]] = {i: [] for i in flash_sale_ids}
    if flash_sale_ids:
        for item in session.scalars(select(FlashSaleItem).where(FlashSaleItem.flash_sale_id.in_(flash_sale_ids))
                                    .order_by(FlashSaleItem.sort, FlashSaleItem.id)
                                    .execution_options(populate_existing=True)):
            found[item.flash_sale_id].append(item)
    return found


def status_at(sale: FlashSale, now: dt.datetime | None = None) -> str:
    return effective_status(sale.status, sale.starts_at, sale.ends_at, now or clock.now())


def list_flash_sales(session: Session, *, merchant_id: int, status: str | None = None, cursor: str | None = None,
                     limit: int | None = None) -> Page[FlashSale]:
    """The merchant's campaigns, newest first. `status` filters on what they are now (window included)."""
    stmt = select(FlashSale).where(FlashSale.merchant_id == merchant_id)
    now = clock.now()
    if status == FlashSaleStatus.ACTIVE:
        stmt = stmt.where(FlashSale.status.in_(SELLING), FlashSale.starts_at <= now, FlashSale.ends_at > now)
    elif status == FlashSaleStatus.SCHEDULED:
        stmt = stmt.where(FlashSale.status.in_(SELLING), FlashSale.starts_at > now)
    elif status == FlashSaleStatus.ENDED:
        stmt = stmt.where((FlashSale.status == FlashSaleStatus.ENDED.value)
                          | (FlashSale.status.in_(SELLING) & (FlashSale.ends_at <= now)))
    elif status:
        stmt = stmt.where(FlashSale.status == status)
    return paginate(session, stmt, FlashSale.id, cursor=cursor, limit=limit)


def shop_flash_sales(session: Session, *, merchant_id: int, now: dt.datetime | None = None,
                     limit: int = 20) -> list[FlashSale]:
    """What the shop shows: running campaigns (ending soonest first), then those still to come."""
    now = now or clock.now()
    rows = list(session.scalars(select(FlashSale).where(
        FlashSale.merchant_id == merchant_id, FlashSale.status.in_(SELLING), FlashSale.ends_at > now)
        .order_by(FlashSale.starts_at, FlashSale.id).limit(limit)))
    running = sorted((s for s in rows if s.starts_at <= now), key=lambda s: (s.ends_at, s.id))
    upcoming = [s for s in rows if s.starts_at > now]
    return running + upcoming


def get_shop_flash_sale(session: Session, flash_sale_id: int, *, merchant_id: int) -> FlashSale:
    """A campaign customers may see: scheduled, running, paused or ended; drafts are 404."""
    sale = get_flash_sale(session, flash_sale_id, merchant_id=merchant_id)
    if sale.status == FlashSaleStatus.DRAFT:
        raise NotFound()
    return sale


def bought_by(session: Session, *, item_ids: list[int], customer_id: int) -> dict[int, int]:
    """item id -> units the customer holds in live flash orders of these items."""
    if not item_ids:
        return {}
    return dict(session.execute(select(FlashSaleBuyer.item_id, FlashSaleBuyer.bought).where(
        FlashSaleBuyer.item_id.in_(item_ids), FlashSaleBuyer.customer_id == customer_id)).tuples().all())


def sku_facts(session: Session, *, merchant_id: int, items: list[FlashSaleItem]) -> dict[int, Any]:
    """sku id -> the catalogue's SkuInfo (normal price, stock) for showing items beside their flash price."""
    return catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[i.sku_id for i in items])


def live_figures(session: Session, sale: FlashSale) -> dict[str, Any]:
    """Orders, units sold, GMV (paid flash orders' amounts) and when it sold out."""
    rows = session.execute(select(FlashSaleOrder.status, func.count(), func.coalesce(func.sum(FlashSaleOrder.quantity), 0),
                                  func.coalesce(func.sum(FlashSaleOrder.amount_cents), 0))
                           .where(FlashSaleOrder.flash_sale_id == sale.id).group_by(FlashSaleOrder.status)).all()
    by_status = {status: (int(n), int(units), int(amount)) for status, n, units, amount in rows}
    taken = by_status.get(FlashOrderStatus.TAKEN.value, (0, 0, 0))
    paid = by_status.get(FlashOrderStatus.PAID.value, (0, 0, 0))
    released = by_status.get(FlashOrderStatus.RELEASED.value, (0, 0, 0))
    buyers = session.scalar(select(func.count(func.distinct(FlashSaleOrder.customer_id))).where(
        FlashSaleOrder.flash_sale_id == sale.id, FlashSaleOrder.status != FlashOrderStatus.RELEASED.value)) or 0
    items = items_of(session, sale.id)
    allocation = sum(i.allocation for i in items)
    sold = sum(i.sold for i in items)
    sold_out_times = [i.sold_out_at for i in items if i.sold_out_at is not None]
    all_sold_out = bool(items) and all(i.sold >= i.allocation for i in items)
    return {
        "orders": taken[0] + paid[0], "paid_orders": paid[0], "unpaid_orders": taken[0],
        "released_orders": released[0], "buyers": int(buyers),
        "units_allocated": allocation, "units_sold": sold, "units_paid": paid[1], "units_left": max(0, allocation - sold),
        "gmv_cents": paid[2],
        "sold_out_at": max(sold_out_times) if all_sold_out and sold_out_times else None,
        "first_sold_out_at": min(sold_out_times) if sold_out_times else None,
    }


# ---------------------------------------------------------------- writing campaigns


@dataclasses.dataclass(frozen=True)
class FlashItemIn:
    sku_id: int
    flash_price_cents: int
    allocation: int
    per_customer_limit: int | None = None


def _check(title: str, starts_at: dt.datetime, ends_at: dt.datetime, items: list[FlashItemIn]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not 1 <= len(title.strip()) <= 60:
        errors["title"] = _("Give the flash sale a title of 1–60 characters.")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        errors["starts_at"] = _("Times need a time zone.")
    elif ends_at <= starts_at:
        errors["ends_at"] = _("The end must come after the start.")
    elif ends_at - starts_at > dt.timedelta(days=90):
        errors["ends_at"] = _("A flash sale lasts at most 90 days.")
    if not items:
        errors["items"] = _("Add at least one item.")
    elif len(items) > MAX_ITEMS:
        errors["items"] = _("At most 50 items per flash sale.")
    elif len({i.sku_id for i in items}) != len(items):
        errors["items"] = _("Each SKU can be in a flash sale once.")
    for n, item in enumerate(items):
        if not 0 < item.sku_id < 2**53:
            errors[f"items.{n}.sku_id"] = _("Choose a SKU.")
        if not 0 <= item.flash_price_cents <= MAX_PRICE_CENTS:
            errors[f"items.{n}.flash_price_cents"] = _("Enter a flash price.")
        if not 1 <= item.allocation <= MAX_ALLOCATION:
            errors[f"items.{n}.allocation"] = _("The allocation is 1 to 1,000,000 units.")
        if item.per_customer_limit is not None and not 1 <= item.per_customer_limit <= 999:
            errors[f"items.{n}.per_customer_limit"] = _("The limit per customer is 1 to 999 (or empty for none).")
    return errors


def _item_rows(session: Session, merchant_id: int, items: list[FlashItemIn]) -> list[FlashSaleItem]:
    facts = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[i.sku_id for i in items])
    errors: dict[str, str] = {}
    rows = []
    for n, item in enumerate(items):
        info = facts.get(item.sku_id)
        if info is None:
            errors[f"items.{n}.sku_id"] = _("This SKU does not exist.")
            continue
        if item.flash_price_cents >= info.price_cents:
            errors[f"items.{n}.flash_price_cents"] = _("The flash price must be below the normal price.")
        title = info.title + (f" {info.spec_text}" if info.spec_text else "")
        rows.append(FlashSaleItem(merchant_id=merchant_id, sku_id=item.sku_id, product_id=info.product_id,
                                  title=title[:200], image_url=(info.image or "")[:500],
                                  flash_price_cents=item.flash_price_cents, allocation=item.allocation, sold=0,
                                  per_customer_limit=item.per_customer_limit, sort=n))
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return rows


def create_flash_sale(session: Session, *, actor: Principal, title: str, starts_at: dt.datetime,
                      ends_at: dt.datetime, items: list[FlashItemIn], description: str = "",
                      allow_coupons: bool = False, allow_member_discount: bool = False) -> FlashSale:
    """A new campaign, in draft. Flash prices must be below the SKUs' normal prices."""
    require_manager(actor)
    errors = _check(title, starts_at, ends_at, items)
    if errors:
        raise ValidationFailed(details={"fields": errors})
    now = clock.now()
    sale = FlashSale(merchant_id=actor.merchant_id, title=title.strip(), description=description.strip()[:300],
                     starts_at=starts_at, ends_at=ends_at, status=FlashSaleStatus.DRAFT.value,
                     allow_coupons=allow_coupons, allow_member_discount=allow_member_discount, created_at=now,
                     updated_at=now)
    rows = _item_rows(session, actor.merchant_id, items)
    session.add(sale)
    session.flush()
    for row in rows:
        row.flash_sale_id = sale.id
    session.add_all(rows)
    session.flush()
    return sale


def update_flash_sale(session: Session, flash_sale_id: int, *, actor: Principal, title: str,
                      starts_at: dt.datetime, ends_at: dt.datetime, items: list[FlashItemIn], description: str = "",
                      allow_coupons: bool = False, allow_member_discount: bool = False) -> FlashSale:
    """Edit a campaign that has not started selling: a draft, or a scheduled one before its start."""
    require_manager(actor)
    sale = get_flash_sale(session, flash_sale_id, merchant_id=actor.merchant_id, lock=True)
    now = clock.now()
    editable = sale.status == FlashSaleStatus.DRAFT or (sale.status == FlashSaleStatus.SCHEDULED and sale.starts_at > now)
    if not editable:
        raise Conflict("Only a draft or a flash sale that has not started can be edited.", code="flash_not_editable")
    if session.scalar(select(func.count()).select_from(FlashSaleOrder).where(FlashSaleOrder.flash_sale_id == sale.id)):
        raise Conflict("This flash sale already has orders.", code="flash_not_editable")
    errors = _check(title, starts_at, ends_at, items)
    if errors:
        raise ValidationFailed(details={"fields": errors})
    rows = _item_rows(session, actor.merchant_id, items)
    old = items_of(session, sale.id)
    for item in old:
        session.delete(item)
    session.flush()
    sale.title, sale.description = title.strip(), description.strip()[:300]
    sale.starts_at, sale.ends_at = starts_at, ends_at
    sale.allow_coupons, sale.allow_member_discount = allow_coupons, allow_member_discount
    sale.updated_at = now
    for row in rows:
        row.flash_sale_id = sale.id
    session.add_all(rows)
    session.flush()
    for item in old:
        gate.clear(sale.merchant_id, sale.id, item.sku_id)
    return sale


def _move(session: Session, flash_sale_id: int, *, actor: Principal, to: FlashSaleStatus) -> FlashSale:
    require_manager(actor)
    sale = get_flash_sale(session, flash_sale_id, merchant_id=actor.merchant_id, lock=True)
    now = clock.now()
    current = sale.status
    # A campaign past its window is over whatever the tick has done yet.
    if current in SELLING and sale.ends_at <= now and to != FlashSaleStatus.ENDED:
        raise Conflict("This flash sale has ended.", code="flash_ended")
    FLASH_SALE_MACHINE.check(current, to.value)
    if to == FlashSaleStatus.SCHEDULED and sale.ends_at <= now:
        raise Conflict("Its window has passed: change the times first.", code="flash_window_passed")
    sale.status = to.value
    sale.updated_at = now
    if to == FlashSaleStatus.SCHEDULED:
        sale.scheduled_at = now
    elif to == FlashSaleStatus.PAUSED:
        sale.paused_at = now
    elif to == FlashSaleStatus.ENDED:
        sale.ended_at = now
    session.flush()
    return sale


def schedule(session: Session, flash_sale_id: int, *, actor: Principal) -> FlashSale:
    """Publish: it sells inside its window from now on (shown in the shop, counting down to its start)."""
    return _move(session, flash_sale_id, actor=actor, to=FlashSaleStatus.SCHEDULED)


def unschedule(session: Session, flash_sale_id: int, *, actor: Principal) -> FlashSale:
    """Back to draft (only before it starts) to edit it."""
    sale = get_flash_sale(session, flash_sale_id, merchant_id=actor.merchant_id)
    if sale.starts_at <= clock.now():
        raise Conflict("It has started: pause or end it instead.", code="flash_started")
    return _move(session, flash_sale_id, actor=actor, to=FlashSaleStatus.DRAFT)


def pause(session: Session, flash_sale_id: int, *, actor: Principal) -> FlashSale:
    """Stop selling for now (checkouts get `flash_paused`); orders already placed stand."""
    return _move(session, flash_sale_id, actor=actor, to=FlashSaleStatus.PAUSED)


def resume(session: Session, flash_sale_id: int, *, actor: Principal) -> FlashSale:
    return _move(session, flash_sale_id, actor=actor, to=FlashSaleStatus.SCHEDULED)


def end(session: Session, flash_sale_id: int, *, actor: Principal) -> FlashSale:
    """End it now, for good: no more flash orders; unpaid ones may still be paid until they expire."""
    return _move(session, flash_sale_id, actor=actor, to=FlashSaleStatus.ENDED)


def advance(session: Session, now: dt.datetime) -> int:
    """The tick: scheduled → active once started, scheduled/active/paused → ended once over. Two
    conditional UPDATEs, so running it twice (or twice at once) changes nothing more."""
    t = FlashSale.__table__
    S = FlashSaleStatus
    assert FLASH_SALE_MACHINE.allowed(S.SCHEDULED, S.ACTIVE)
    assert all(FLASH_SALE_MACHINE.allowed(s, S.ENDED) for s in (S.SCHEDULED, S.ACTIVE, S.PAUSED))
    ended = session.execute(update(t).where(t.c.status.in_((S.SCHEDULED.value, S.ACTIVE.value, S.PAUSED.value)),
                                            t.c.ends_at <= now)
                            .values(status=S.ENDED.value, ended_at=now, updated_at=now)).rowcount
    started = session.execute(update(t).where(t.c.status == S.SCHEDULED.value, t.c.starts_at <= now,
                                              t.c.ends_at > now)
                              .values(status=S.ACTIVE.value, updated_at=now)).rowcount
    return int(ended or 0) + int(started or 0)


# ---------------------------------------------------------------- checkout


def _why_not(status: str, now: dt.datetime, starts_at: dt.datetime, ends_at: dt.datetime) -> Conflict | None:
    """The refusal for a campaign that is not selling at `now`, or None."""
    current = effective_status(status, starts_at, ends_at, now)
    if current == FlashSaleStatus.ACTIVE:
        return None
    if current == FlashSaleStatus.ENDED:
        return FlashEnded()
    if current == FlashSaleStatus.PAUSED:
        return FlashPaused()
    return FlashNotStarted(details={"starts_at": starts_at.isoformat()})


def _flash_choice(promotion: Any) -> int | None:
    """The campaign id when the checkout buys through a flash sale."""
    if promotion is None:
        return None
    kind = promotion.get("kind") if isinstance(promotion, dict) else getattr(promotion, "kind", None)
    if kind != KIND:
        return None
    campaign_id = promotion.get("campaign_id") if isinstance(promotion, dict) else getattr(promotion, "campaign_id", None)
    if not isinstance(campaign_id, int) or not 0 < campaign_id < 2**53:
        raise NotFound("This flash sale does not exist.", code="flash_sale_not_found")
    return campaign_id


def admission_check(session: Session, merchant_id: int, request: Any) -> None:
    """Before checkout loads anything: refuse a sold-out or ended flash item at once (Redis mark: no
    database work; otherwise one read by the items' unique (campaign, SKU) index joined to the campaign
    by primary key). Does nothing (no query) for other checkouts. Passing here proves nothing: the
    conditional UPDATE in `commit` decides."""
    campaign_id = _flash_choice(getattr(request, "promotion", None))
    if campaign_id is None or not request.items:
        return
    sku_id = request.items[0].sku_id
    if gate.is_sold_out(merchant_id, campaign_id, sku_id):
        raise FlashSoldOut(details={"flash_sale_id": campaign_id, "sku_id": sku_id})
    i, s = FlashSaleItem.__table__, FlashSale.__table__
    row = session.execute(select(i.c.allocation, i.c.sold, s.c.status, s.c.starts_at, s.c.ends_at)
                          .join(s, s.c.id == i.c.flash_sale_id)
                          .where(i.c.flash_sale_id == campaign_id, i.c.sku_id == sku_id,
                                 i.c.merchant_id == merchant_id)).first()
    if row is None:
        return  # the contributor says what is wrong
    allocation, sold, status, starts_at, ends_at = row
    if sold >= allocation:
        gate.mark(merchant_id, campaign_id, sku_id)
        raise FlashSoldOut(details={"flash_sale_id": campaign_id, "sku_id": sku_id})
    if effective_status(status, starts_at, ends_at, clock.now()) == FlashSaleStatus.ENDED:
        raise FlashEnded()


class FlashSaleContributor:
    """The flash price of the one line bought through `promotion={kind: flash_sale, campaign_id}`."""

    name = "promotions.flash_sale"
    priority = 20

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        campaign_id = _flash_choice(ctx.promotion)
        if campaign_id is None:
            return
        if len(ctx.lines) != 1:
            raise Conflict("A flash-sale order holds one item.", code="flash_one_item")
        line = ctx.lines[0]
        row = session.execute(select(FlashSale, FlashSaleItem).join(FlashSaleItem, FlashSaleItem.flash_sale_id == FlashSale.id)
                              .where(FlashSale.id == campaign_id, FlashSale.merchant_id == ctx.merchant_id,
                                     FlashSaleItem.sku_id == line.sku_id)
                              .execution_options(populate_existing=True)).first()
        if row is None:
            exists_sale = session.scalar(select(FlashSale.status).where(FlashSale.id == campaign_id,
                                                                         FlashSale.merchant_id == ctx.merchant_id))
            if exists_sale is None or exists_sale == FlashSaleStatus.DRAFT:
                raise NotFound("This flash sale does not exist.", code="flash_sale_not_found")
            raise FlashNotInSale(details={"sku_id": line.sku_id})
        sale, item = row
        if sale.status == FlashSaleStatus.DRAFT:
            raise NotFound("This flash sale does not exist.", code="flash_sale_not_found")
        now = ctx.now or clock.now()
        refusal = _why_not(sale.status, now, sale.starts_at, sale.ends_at)
        if refusal is not None:
            raise refusal
        left = item.allocation - item.sold
        if left < line.quantity:
            raise FlashSoldOut(details={"flash_sale_id": sale.id, "sku_id": line.sku_id, "left": max(0, left),
                                        "requested": line.quantity})
        limit = item.per_customer_limit
        if limit is not None and ctx.customer_id is not None:
            already = bought_by(session, item_ids=[item.id], customer_id=ctx.customer_id).get(item.id, 0)
            if already + line.quantity > limit:
                raise FlashLimitReached(details={"limit": limit, "already": already, "requested": line.quantity},
                                        limit=limit)
        diff = (item.flash_price_cents - line.unit_price_cents) * line.quantity
        if diff:
            ctx.add_adjustment(kind=KIND, label="Flash sale", amount_cents=diff, source=self.name,
                               sku_ids=[line.sku_id], details={"flash_sale_id": sale.id, "item_id": item.id})
        line.promo = {"kind": KIND, "campaign_id": sale.id, "coupons": bool(sale.allow_coupons),
                      "member_discount": bool(sale.allow_member_discount)}
        ctx.extra[EXTRA_KEY] = {"flash_sale_id": sale.id, "item_id": item.id, "sku_id": line.sku_id,
                                "quantity": line.quantity, "limit": limit}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        found = ctx.extra.get(EXTRA_KEY)
        if not found or ctx.customer_id is None:
            return
        line = next(ln for ln in ctx.lines if ln.sku_id == found["sku_id"])
        take(session, merchant_id=ctx.merchant_id, flash_sale_id=found["flash_sale_id"], item_id=found["item_id"],
             sku_id=found["sku_id"], customer_id=ctx.customer_id, quantity=found["quantity"], limit=found["limit"],
             order_id=order_id, order_no=order_no, amount_cents=line.amount_cents)


def _upsert_buyer(session: Session, *, merchant_id: int, item_id: int, customer_id: int) -> None:
    """The customer's counter row for the item, created once (concurrent creators do not collide)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(FlashSaleBuyer.__table__)
                    .values(merchant_id=merchant_id, item_id=item_id, customer_id=customer_id, bought=0)
                    .on_conflict_do_nothing(index_elements=["item_id", "customer_id"]))


def take(session: Session, *, merchant_id: int, flash_sale_id: int, item_id: int, sku_id: int, customer_id: int,
         quantity: int, limit: int | None, order_id: int, order_no: str, amount_cents: int) -> FlashSaleOrder:
    """Make a flash order real, in the order's transaction: the customer's count first (its own row),
    then the hot allocation row last, each by one conditional UPDATE that cannot pass its cap. Raises
    (and the caller's transaction rolls back, leaving no trace) when either says no."""
    now = clock.now()
    session.flush()
    if limit is not None:
        _upsert_buyer(session, merchant_id=merchant_id, item_id=item_id, customer_id=customer_id)
        b = FlashSaleBuyer.__table__
        counted = session.execute(update(b).where(b.c.item_id == item_id, b.c.customer_id == customer_id,
                                                  b.c.bought + quantity <= limit)
                                  .values(bought=b.c.bought + quantity)).rowcount
        if counted != 1:
            raise FlashLimitReached(details={"limit": limit, "requested": quantity}, limit=limit)
    i, s = FlashSaleItem.__table__, FlashSale.__table__
    selling = exists().where(s.c.id == i.c.flash_sale_id, s.c.status.in_(SELLING), s.c.starts_at <= now,
                             s.c.ends_at > now)
    taken = session.execute(update(i).where(i.c.id == item_id, i.c.sold + quantity <= i.c.allocation, selling)
                            .values(sold=i.c.sold + quantity,
                                    sold_out_at=case((i.c.sold + quantity >= i.c.allocation, now),
                                                     else_=i.c.sold_out_at))).rowcount
    if taken != 1:
        status, starts_at, ends_at = session.execute(select(s.c.status, s.c.starts_at, s.c.ends_at)
                                                     .where(s.c.id == flash_sale_id)).one()
        refusal = _why_not(status, now, starts_at, ends_at)
        if refusal is not None:
            raise refusal
        gate.mark(merchant_id, flash_sale_id, sku_id)
        raise FlashSoldOut(details={"flash_sale_id": flash_sale_id, "sku_id": sku_id, "requested": quantity})
    row = FlashSaleOrder(merchant_id=merchant_id, flash_sale_id=flash_sale_id, item_id=item_id, order_id=order_id,
                         order_no=order_no[:32], customer_id=customer_id, quantity=quantity, amount_cents=amount_cents,
                         status=FlashOrderStatus.TAKEN.value, created_at=now)
    session.add(row)
    session.flush()
    return row


def _flash_order(session: Session, *, merchant_id: int, order_id: int) -> FlashSaleOrder | None:
    return session.scalar(select(FlashSaleOrder).where(FlashSaleOrder.order_id == order_id,
                                                       FlashSaleOrder.merchant_id == merchant_id))


def _set_order_status(session: Session, row: FlashSaleOrder, to: FlashOrderStatus, now: dt.datetime) -> bool:
    """taken → `to` by a conditional UPDATE: True for the one caller that made the move."""
    FLASH_ORDER_MACHINE.check(row.status, to.value)
    o = FlashSaleOrder.__table__
    values: dict[str, Any] = {"status": to.value}
    values["paid_at" if to == FlashOrderStatus.PAID else "released_at"] = now
    moved = session.execute(update(o).where(o.c.id == row.id, o.c.status == FlashOrderStatus.TAKEN.value)
                            .values(**values)).rowcount
    return moved == 1


def release_order(session: Session, *, merchant_id: int, order_id: int) -> bool:
    """A cancelled or expired unpaid order gives its units back to the allocation and to the customer's
    count, once (idempotent: the flash order moves taken → released by one conditional UPDATE)."""
    row = _flash_order(session, merchant_id=merchant_id, order_id=order_id)
    if row is None or row.status != FlashOrderStatus.TAKEN:
        return False
    now = clock.now()
    if not _set_order_status(session, row, FlashOrderStatus.RELEASED, now):
        return False
    # The same lock order as `take`: the customer's row, then the hot allocation row.
    i, b = FlashSaleItem.__table__, FlashSaleBuyer.__table__
    session.execute(update(b).where(b.c.item_id == row.item_id, b.c.customer_id == row.customer_id,
                                    b.c.bought >= row.quantity).values(bought=b.c.bought - row.quantity))
    session.execute(update(i).where(i.c.id == row.item_id, i.c.sold >= row.quantity)
                    .values(sold=i.c.sold - row.quantity, sold_out_at=None))
    sku_id = session.scalar(select(i.c.sku_id).where(i.c.id == row.item_id))
    session.expire(row)
    if sku_id is not None:
        gate.clear(merchant_id, row.flash_sale_id, sku_id)
    return True


def mark_paid(session: Session, *, merchant_id: int, order_id: int, amount_cents: int | None = None) -> bool:
    """A flash order was paid (counted in the campaign's GMV). Idempotent."""
    row = _flash_order(session, merchant_id=merchant_id, order_id=order_id)
    if row is None or row.status != FlashOrderStatus.TAKEN:
        return False
    return _set_order_status(session, row, FlashOrderStatus.PAID, clock.now())


def merge_customers(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """customer.merged: the source's flash orders and counts become the target's (counts add up)."""
    o, b = FlashSaleOrder.__table__, FlashSaleBuyer.__table__
    session.execute(update(o).where(o.c.merchant_id == merchant_id, o.c.customer_id == source_id)
                    .values(customer_id=target_id))
    rows = list(session.scalars(select(FlashSaleBuyer).where(FlashSaleBuyer.merchant_id == merchant_id,
                                                             FlashSaleBuyer.customer_id == source_id)
                                .order_by(FlashSaleBuyer.item_id)))
    for row in rows:
        moved = session.execute(update(b).where(b.c.item_id == row.item_id, b.c.customer_id == target_id)
                                .values(bought=b.c.bought + row.bought)).rowcount
        if moved:
            session.delete(row)
        else:
            row.customer_id = target_id
    session.flush()


def orders_of(session: Session, flash_sale_id: int, *, limit: int = 50) -> list[FlashSaleOrder]:
    return list(session.scalars(select(FlashSaleOrder).where(FlashSaleOrder.flash_sale_id == flash_sale_id)
                                .order_by(FlashSaleOrder.id.desc()).limit(limit)))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sale_data(session: Session, sale: FlashSale, *, staff: bool, customer_id: int | None = None,
              items: list[FlashSaleItem] | None = None, facts: dict[int, Any] | None = None,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """A campaign as the API and the pages show it: status at `now` (window included), seconds to its
    start or end, each item with its normal price, progress and (for a signed-in customer) what they
    may still buy."""
    now = now or clock.now()
    items = items_of(session, sale.id) if items is None else items
    facts = sku_facts(session, merchant_id=sale.merchant_id, items=items) if facts is None else facts
    mine = bought_by(session, item_ids=[i.id for i in items], customer_id=customer_id) if customer_id else {}
    status = status_at(sale, now)
    data: dict[str, Any] = {
        "id": sale.id, "title": sale.title, "description": sale.description, "status": status,
        "starts_at": _iso(sale.starts_at), "ends_at": _iso(sale.ends_at),
        "seconds_to_start": max(0, int((sale.starts_at - now).total_seconds())),
        "seconds_to_end": max(0, int((sale.ends_at - now).total_seconds())),
        "allow_coupons": sale.allow_coupons, "allow_member_discount": sale.allow_member_discount,
        "items": [],
    }
    for item in items:
        info = facts.get(item.sku_id)
        left = max(0, item.allocation - item.sold)
        row: dict[str, Any] = {
            "id": item.id, "sku_id": item.sku_id, "product_id": item.product_id, "title": item.title,
            "image_url": item.image_url, "flash_price_cents": item.flash_price_cents,
            "normal_price_cents": info.price_cents if info is not None else None,
            "allocation": item.allocation, "sold": item.sold, "left": left,
            "sold_percent": min(100, item.sold * 100 // item.allocation) if item.allocation else 100,
            "sold_out": left == 0, "per_customer_limit": item.per_customer_limit,
        }
        if customer_id is not None:
            row["bought"] = mine.get(item.id, 0)
            row["may_buy"] = left if item.per_customer_limit is None else \
                max(0, min(left, item.per_customer_limit - mine.get(item.id, 0)))
        if staff:
            row["sold_out_at"] = _iso(item.sold_out_at)
            row["stock"] = info.stock if info is not None else None
        data["items"].append(row)
    if staff:
        data.update({"stored_status": sale.status, "created_at": _iso(sale.created_at),
                     "scheduled_at": _iso(sale.scheduled_at), "paused_at": _iso(sale.paused_at),
                     "ended_at": _iso(sale.ended_at)})
    return data


def _describe(session: Session, merchant_id: int, flash_sale_id: int) -> shares.TargetInfo:
    """What a share poster of a flash sale shows: its title, first item's image and lowest flash price."""
    sale = get_shop_flash_sale(session, flash_sale_id, merchant_id=merchant_id)
    items = items_of(session, sale.id)
    return shares.TargetInfo(title=sale.title, image_url=next((i.image_url for i in items if i.image_url), None),
                             price_cents=min((i.flash_price_cents for i in items), default=None),
                             subtitle=_("Flash sale") + " · " + clock.format_local(sale.starts_at, "%m-%d %H:%M"))


shares.register_target("flash_sale", lambda slug, i: f"/shop/{slug}/flash/{i}", describe=_describe)
pricing.register_contributor(FlashSaleContributor())
pricing.register_admission_check(admission_check)


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, FlashSale, merchant_id=merchant_id, statuses=SELLING)
