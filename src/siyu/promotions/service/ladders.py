"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — logic.

Rules:
- Tiers: [(min participants, unit price)], thresholds strictly rising, prices strictly falling. The
  price at n participants is the price of the last tier whose threshold n has reached (the first
  tier's below it).
- A participant is a distinct customer with a paid order in the campaign that was not cancelled or
  wholly refunded before the end (several orders of one customer count once; units do not count).
  `participants_count` is recounted by the order handlers under the campaign row's lock; after
  `ends_at` the count is frozen.
- Checkout (`promotions.ladder`, priority 23): one line of the campaign's SKU at the current tier's
  price, within the per-customer unit limit; the order's commit writes its entry (pending) with that
  unit price. order.paid → paid (counted); order.cancelled or a whole refund before the end → void.
- Settlement (tick `promotions.ladders_settle`, after `ends_at`): the final price is fixed, the
  campaign moves to settled, and every paid entry gets back (units still held × (unit price paid −
  final price)) through `orders.refund_price_difference`, exactly once: the entry moves paid →
  settled by one conditional UPDATE before its refund, in the same transaction. An order paid after
  settlement is settled when its payment arrives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import AppError, Conflict, NotFound, field_error
from siyu.core.i18n import gettext as _
from siyu.orders import pricing
from siyu.orders import service as orders
from siyu.promotions.models.ladders import LadderCampaign, LadderEntry
from siyu.promotions.service import common
from siyu.promotions.service.common import count_running, lock_customer, require_manager
from siyu.promotions.states.ladders import (
    EntryStatus,
    LadderStatus,
    assert_entry_transition,
    assert_ladder_transition,
)

L = LadderStatus
E = EntryStatus
MAX_ID = 2**53
EXTRA_KEY = "promotions.ladder"
log = logging.getLogger(__name__)
COUNTED = (E.PAID.value, E.SETTLED.value)
HELD = (E.PENDING.value, E.PAID.value, E.SETTLED.value)


_valid_id = common.valid_id


def price_for(tiers: list[dict[str, Any]], participants: int) -> int:
    """The unit price at `participants` participants."""
    price = int(tiers[0]["price_cents"])
    for tier in tiers:
        if participants >= int(tier["min_participants"]):
            price = int(tier["price_cents"])
    return price


def next_tier(tiers: list[dict[str, Any]], participants: int) -> dict[str, Any] | None:
    """The next tier not yet reached, with how many participants it still needs."""
    for tier in tiers:
        if int(tier["min_participants"]) > participants:
            return {"min_participants": int(tier["min_participants"]), "price_cents": int(tier["price_cents"]),
                    "needed": int(tier["min_participants"]) - participants}
    return None


def is_running(campaign: LadderCampaign, now: dt.datetime | None = None) -> bool:
    return common.is_running(campaign, L.SCHEDULED, now)


def display_status(campaign: LadderCampaign, now: dt.datetime | None = None) -> str:
    return common.display_status(campaign, L.SCHEDULED, now)


# ---------------------------------------------------------------- campaigns


@dataclasses.dataclass
class CampaignIn:
    title: str
    sku_id: int
    tiers: list[tuple[int, int]]
    starts_at: dt.datetime
    ends_at: dt.datetime
    per_customer_limit: int | None = None
    allow_coupons: bool = False
    allow_member_discount: bool = False


def _check(session: Session, merchant_id: int, data: CampaignIn) -> Any:
    title = (data.title or "").strip()
    if not title or len(title) > 60:
        raise field_error("title", "Give the campaign a title (at most 60 characters).")
    sku = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[data.sku_id]).get(data.sku_id) \
        if _valid_id(data.sku_id) else None
    if sku is None:
        raise field_error("sku_id", "Choose a product.")
    tiers = list(data.tiers)
    if not 2 <= len(tiers) <= 10:
        raise field_error("tiers", "Give between 2 and 10 tiers.")
    for i, (threshold, price) in enumerate(tiers):
        if not 0 <= threshold <= 1_000_000 or not 0 < price <= 10**9:
            raise field_error("tiers", "Each tier needs a participant count and a price above 0.")
        if i and (threshold <= tiers[i - 1][0] or price >= tiers[i - 1][1]):
            raise field_error("tiers", "Thresholds must rise and prices must fall from tier to tier.")
    if data.per_customer_limit is not None and not 1 <= data.per_customer_limit <= 999:
        raise field_error("per_customer_limit", "Between 1 and 999.")
    if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None or data.ends_at <= data.starts_at:
        raise field_error("ends_at", "The end must come after the start.")
    return sku


def _apply(campaign: LadderCampaign, data: CampaignIn, sku: Any) -> None:
    campaign.title = data.title.strip()
    campaign.sku_id = data.sku_id
    campaign.product_id = sku.product_id
    campaign.item_title = sku.title[:200]
    campaign.image_url = (sku.image or "")[:500]
    campaign.tiers = [{"min_participants": int(t), "price_cents": int(p)} for t, p in data.tiers]
    campaign.starts_at = data.starts_at
    campaign.ends_at = data.ends_at
    campaign.per_customer_limit = data.per_customer_limit
    campaign.allow_coupons = bool(data.allow_coupons)
    campaign.allow_member_discount = bool(data.allow_member_discount)
    campaign.updated_at = clock.now()


def create_campaign(session: Session, *, actor: Principal, data: CampaignIn) -> LadderCampaign:
    require_manager(actor)
    sku = _check(session, actor.merchant_id, data)
    campaign = LadderCampaign(merchant_id=actor.merchant_id, status=L.DRAFT.value, participants_count=0,
                              created_at=clock.now())
    _apply(campaign, data, sku)
    session.add(campaign)
    session.flush()
    return campaign


def update_campaign(session: Session, campaign_id: int, *, actor: Principal, data: CampaignIn) -> LadderCampaign:
    """Edit a campaign before it ends; product and tiers are fixed once an order is in it."""
    require_manager(actor)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    if campaign.status in (L.ENDED, L.SETTLED):
        raise Conflict("An ended campaign cannot be edited.", code="campaign_ended")
    sku = _check(session, actor.merchant_id, data)
    has_orders = session.scalar(select(func.count()).select_from(LadderEntry)
                                .where(LadderEntry.campaign_id == campaign.id))
    tiers = [{"min_participants": int(t), "price_cents": int(p)} for t, p in data.tiers]
    if has_orders and (data.sku_id != campaign.sku_id or tiers != list(campaign.tiers)):
        raise Conflict("Orders are in: product and tiers can no longer change.", code="campaign_has_orders")
    _apply(campaign, data, sku)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int, *, merchant_id: int, lock: bool = False) -> LadderCampaign:
    return common.get_owned(session, LadderCampaign, campaign_id, merchant_id=merchant_id, not_found="ladder_not_found",
                            lock=lock)


ACTIONS = {"schedule": L.SCHEDULED, "resume": L.SCHEDULED, "pause": L.PAUSED, "end": L.ENDED, "draft": L.DRAFT}


def change_campaign_status(session: Session, campaign_id: int, *, actor: Principal, action: str) -> LadderCampaign:
    """schedule / pause / resume / end / draft. Ending early closes the window now; the settle tick
    then fixes the final price and pays the differences back."""
    require_manager(actor)
    target = common.action_target(action, ACTIONS)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    common.move(campaign, target, ended=L.ENDED, assert_transition=assert_ladder_transition)
    session.flush()
    return campaign


def list_campaigns(session: Session, *, merchant_id: int, status: str | None = None) -> list[LadderCampaign]:
    stmt = select(LadderCampaign).where(LadderCampaign.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(LadderCampaign.status == status)
    return list(session.scalars(stmt.order_by(LadderCampaign.id.desc()).limit(200)))


def running_campaigns(session: Session, *, merchant_id: int) -> list[LadderCampaign]:
    now = clock.now()
    return list(session.scalars(select(LadderCampaign).where(
        LadderCampaign.merchant_id == merchant_id, LadderCampaign.status == L.SCHEDULED.value,
        LadderCampaign.starts_at <= now, LadderCampaign.ends_at > now).order_by(LadderCampaign.ends_at)))


def campaign_figures(session: Session, *, merchant_id: int, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: orders (paid or settled), units, GMV (paid before refunds of differences), refunded differences."""
    out = {i: {"orders": 0, "units": 0, "gmv_cents": 0, "refunded_cents": 0} for i in campaign_ids}
    if not campaign_ids:
        return out
    rows = session.execute(select(
        LadderEntry.campaign_id, func.count(), func.coalesce(func.sum(LadderEntry.quantity), 0),
        func.coalesce(func.sum(LadderEntry.quantity * LadderEntry.unit_price_cents), 0),
        func.coalesce(func.sum(LadderEntry.refund_cents), 0),
    ).where(LadderEntry.merchant_id == merchant_id, LadderEntry.campaign_id.in_(campaign_ids),
            LadderEntry.status.in_(COUNTED)).group_by(LadderEntry.campaign_id))
    for cid, n, units, gmv, refunded in rows:
        out[cid] = {"orders": int(n), "units": int(units), "gmv_cents": int(gmv), "refunded_cents": int(refunded)}
    return out


def entries_of(session: Session, *, merchant_id: int, campaign_id: int, limit: int = 300) -> list[LadderEntry]:
    return list(session.scalars(select(LadderEntry).where(LadderEntry.merchant_id == merchant_id,
                                                          LadderEntry.campaign_id == campaign_id)
                                .order_by(LadderEntry.id.desc()).limit(limit)))


def ladder_view(campaign: LadderCampaign, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the ladder page and the shop API show."""
    now = now or clock.now()
    n = campaign.participants_count
    current = campaign.final_price_cents if campaign.final_price_cents is not None else price_for(campaign.tiers, n)
    return {
        "id": campaign.id, "title": campaign.title, "item_title": campaign.item_title, "sku_id": campaign.sku_id,
        "image_url": campaign.image_url or None, "status": display_status(campaign, now),
        "participants": n, "current_price_cents": current, "final_price_cents": campaign.final_price_cents,
        "tiers": [{**t, "reached": n >= int(t["min_participants"]), "current": int(t["price_cents"]) == current}
                  for t in campaign.tiers],
        "next_tier": next_tier(campaign.tiers, n) if campaign.final_price_cents is None else None,
        "starts_at": campaign.starts_at, "ends_at": campaign.ends_at,
        "seconds_left": max(0, int((campaign.ends_at - now).total_seconds())), "buyable": is_running(campaign, now),
        "per_customer_limit": campaign.per_customer_limit,
    }


def units_of_customer(session: Session, *, campaign_id: int, customer_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(LadderEntry.quantity), 0)).where(
        LadderEntry.campaign_id == campaign_id, LadderEntry.customer_id == customer_id,
        LadderEntry.status.in_(HELD))) or 0)


# ---------------------------------------------------------------- orders


def _recount(session: Session, campaign: LadderCampaign) -> None:
    campaign.participants_count = int(session.scalar(
        select(func.count(func.distinct(LadderEntry.customer_id))).where(
            LadderEntry.campaign_id == campaign.id, LadderEntry.status.in_(COUNTED))) or 0)


def _entry_for(session: Session, merchant_id: int, order_id: int) -> LadderEntry | None:
    return session.scalars(select(LadderEntry).where(LadderEntry.merchant_id == merchant_id,
                                                     LadderEntry.order_id == order_id)).first()


def mark_paid(session: Session, *, merchant_id: int, order_id: int, paid_at: dt.datetime) -> str:
    """order.paid: the entry is paid and counted (recount under the campaign's lock) while the
    window is open; paid after settlement, its difference goes back at once. Idempotent."""
    entry = _entry_for(session, merchant_id, order_id)
    if entry is None:
        return "none"
    campaign = get_campaign(session, entry.campaign_id, merchant_id=merchant_id, lock=True)
    entry = session.scalars(select(LadderEntry).where(LadderEntry.id == entry.id).with_for_update()
                            .execution_options(populate_existing=True)).one()
    if entry.status != E.PENDING:
        return "already"
    assert_entry_transition(entry.status, E.PAID)
    entry.status = E.PAID.value
    entry.paid_at = paid_at
    if campaign.status == L.SETTLED:
        session.flush()
        settle_entry(session, campaign, entry.id)
        return "settled"
    if paid_at < campaign.ends_at and campaign.status != L.ENDED:
        _recount(session, campaign)
    session.flush()
    return "paid"


def void_entry(session: Session, *, merchant_id: int, order_id: int) -> bool:
    """order.cancelled, or a whole refund: the entry no longer counts (recount before the end). Idempotent."""
    entry = _entry_for(session, merchant_id, order_id)
    if entry is None or entry.status not in (E.PENDING, E.PAID):
        return False
    campaign = get_campaign(session, entry.campaign_id, merchant_id=merchant_id, lock=True)
    entry = session.scalars(select(LadderEntry).where(LadderEntry.id == entry.id).with_for_update()
                            .execution_options(populate_existing=True)).one()
    if entry.status not in (E.PENDING, E.PAID):
        return False
    was_paid = entry.status == E.PAID
    assert_entry_transition(entry.status, E.VOID)
    entry.status = E.VOID.value
    session.flush()
    if was_paid and clock.now() < campaign.ends_at and campaign.status not in (L.ENDED, L.SETTLED):
        _recount(session, campaign)
        session.flush()
    return True


def settle_entry(session: Session, campaign: LadderCampaign, entry_id: int) -> int | None:
    """Pay one paid entry its difference to the final price, exactly once: the entry is claimed
    (paid → settled) by one conditional UPDATE, then refunded in the same savepoint. A refund the
    orders domain refuses (nothing left to give back) leaves the entry settled with 0; any other
    failure (the provider unreachable …) rolls the savepoint back, so the entry stays paid and the
    next run tries again. Returns the refunded cents, or None when not settled by this run."""
    assert campaign.final_price_cents is not None
    assert_entry_transition(E.PAID, E.SETTLED)
    try:
        with session.begin_nested():
            return _settle_entry(session, campaign, entry_id)
    except Exception:  # noqa: BLE001 — retried by the next tick; logged with its traceback
        log.exception("ladder entry %s: settlement failed, retried later", entry_id)
        return None


def _settle_entry(session: Session, campaign: LadderCampaign, entry_id: int) -> int | None:
    assert campaign.final_price_cents is not None
    t = LadderEntry.__table__
    claimed = session.connection().execute(
        update(t).where(t.c.id == entry_id, t.c.status == E.PAID.value)
        .values(status=E.SETTLED.value, settled_at=clock.now()).returning(t.c.order_id)).first()
    if claimed is None:
        return None
    entry = session.scalars(select(LadderEntry).where(LadderEntry.id == entry_id)
                            .execution_options(populate_existing=True)).one()
    diff = entry.unit_price_cents - campaign.final_price_cents
    if diff <= 0:
        return 0
    system = system_principal(campaign.merchant_id)
    order = orders.get_order(session, entry.order_id, actor=system)
    sku_lines = {line.id for line in orders.order_lines(session, order.id) if line.sku_id == campaign.sku_id}
    held = sum(row["refundable_quantity"] for row in orders.refundable_lines(session, order)
               if row["order_line_id"] in sku_lines)
    units = min(entry.quantity, held)
    if units <= 0:
        return 0
    try:
        with session.begin_nested():
            refund = orders.refund_price_difference(
                session, entry.order_id, amount_cents=units * diff, actor=system,
                reason=_("Ladder price {title}: final price {price}", title=campaign.title,
                         price=f"{campaign.final_price_cents / 100:.2f}"))
    except AppError:
        # Nothing left to give back (e.g. refunded meanwhile): the entry stays settled with 0.
        return 0
    entry.refund_id = refund.id
    entry.refund_cents = refund.amount_cents
    session.flush()
    return refund.amount_cents


def settle_due(session: Session, now: dt.datetime) -> int:
    """The tick: campaigns past `ends_at` get their final price and move to settled; their paid
    entries get their differences back. Safe twice at once (conditional UPDATEs claim each step)."""
    done = 0
    due = list(session.scalars(select(LadderCampaign.id).where(
        LadderCampaign.status.in_([L.SCHEDULED.value, L.PAUSED.value, L.ENDED.value]),
        LadderCampaign.ends_at <= now)))
    for campaign_id in due:
        campaign = session.scalars(select(LadderCampaign).where(LadderCampaign.id == campaign_id).with_for_update()
                                   .execution_options(populate_existing=True)).one()
        if campaign.status == L.SETTLED or campaign.ends_at > now:
            continue
        if campaign.status == L.DRAFT:
            continue
        assert_ladder_transition(campaign.status, L.SETTLED)
        campaign.final_price_cents = price_for(campaign.tiers, campaign.participants_count)
        campaign.status = L.SETTLED.value
        campaign.settled_at = now
        campaign.updated_at = now
        session.flush()
    waiting = session.execute(select(LadderEntry.id, LadderEntry.campaign_id).join(
        LadderCampaign, LadderCampaign.id == LadderEntry.campaign_id).where(
        LadderCampaign.status == L.SETTLED.value, LadderEntry.status == E.PAID.value)
        .order_by(LadderEntry.id)).all()
    campaigns: dict[int, LadderCampaign] = {}
    for entry_id, campaign_id in waiting:
        campaign = campaigns.get(campaign_id) or session.get(LadderCampaign, campaign_id)
        assert campaign is not None
        campaigns[campaign_id] = campaign
        if settle_entry(session, campaign, entry_id) is not None:
            done += 1
    return done


def merge_customers(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """customer.merged: entries follow the customer; participant counts of open campaigns are recounted."""
    ids = list(session.scalars(select(LadderEntry.campaign_id).where(
        LadderEntry.merchant_id == merchant_id, LadderEntry.customer_id == source_id).distinct()))
    session.execute(update(LadderEntry).where(LadderEntry.merchant_id == merchant_id,
                                              LadderEntry.customer_id == source_id).values(customer_id=target_id))
    for campaign_id in sorted(ids):
        campaign = get_campaign(session, campaign_id, merchant_id=merchant_id, lock=True)
        if campaign.status not in (L.ENDED, L.SETTLED) and clock.now() < campaign.ends_at:
            _recount(session, campaign)
    session.flush()


# ---------------------------------------------------------------- checkout


class LadderContributor:
    """Prices the one line of a ladder checkout at the current tier, within the per-customer limit."""

    name = "promotions.ladder"
    priority = 23

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        promo = ctx.promotion
        if not promo or promo.get("kind") != "ladder":
            return
        campaign_id = promo.get("campaign_id")
        if not _valid_id(campaign_id):
            raise field_error("promotion.campaign_id", "Choose a campaign.")
        campaign = get_campaign(session, campaign_id, merchant_id=ctx.merchant_id)
        if not is_running(campaign, ctx.now or clock.now()):
            raise Conflict("This ladder campaign is not running.", code="campaign_not_running")
        if len(ctx.lines) != 1 or ctx.lines[0].sku_id != campaign.sku_id:
            raise Conflict("A ladder order buys its campaign's item only.", code="ladder_line_mismatch",
                           details={"sku_id": campaign.sku_id})
        line = ctx.lines[0]
        if campaign.per_customer_limit is not None and ctx.customer_id is not None:
            already = units_of_customer(session, campaign_id=campaign.id, customer_id=ctx.customer_id)
            if already + line.quantity > campaign.per_customer_limit:
                raise Conflict("At most {limit} per customer in this campaign.", code="ladder_limit_exceeded",
                               details={"limit": campaign.per_customer_limit, "already": already},
                               limit=campaign.per_customer_limit)
        price = price_for(campaign.tiers, campaign.participants_count)
        diff = price * line.quantity - line.amount_cents
        if diff:
            ctx.add_adjustment(kind="ladder", label=_("Ladder price"), amount_cents=diff, source=self.name,
                               sku_ids=[line.sku_id], details={"campaign_id": campaign.id})
        line.promo = {"kind": "ladder", "campaign_id": campaign.id, "coupons": campaign.allow_coupons,
                      "member_discount": campaign.allow_member_discount}
        ctx.extra[EXTRA_KEY] = {"campaign_id": campaign.id, "unit_price_cents": price, "quantity": line.quantity,
                                "limit": campaign.per_customer_limit}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        found = ctx.extra.get(EXTRA_KEY)
        if not found:
            return
        session.flush()
        still = session.scalar(select(LadderCampaign.id).where(
            LadderCampaign.id == found["campaign_id"], LadderCampaign.status == L.SCHEDULED.value,
            LadderCampaign.ends_at > clock.now()))
        if still is None:
            raise Conflict("This ladder campaign is not running.", code="campaign_not_running")
        assert ctx.customer_id is not None
        if found["limit"] is not None:
            lock_customer(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id)
            already = units_of_customer(session, campaign_id=found["campaign_id"], customer_id=ctx.customer_id)
            if already + found["quantity"] > found["limit"]:
                raise Conflict("At most {limit} per customer in this campaign.", code="ladder_limit_exceeded",
                               details={"limit": found["limit"], "already": already}, limit=found["limit"])
        session.add(LadderEntry(merchant_id=ctx.merchant_id, campaign_id=found["campaign_id"], order_id=order_id,
                                order_no=order_no[:32], customer_id=ctx.customer_id, quantity=found["quantity"],
                                unit_price_cents=found["unit_price_cents"], status=E.PENDING.value,
                                created_at=clock.now()))
        session.flush()


pricing.register_contributor(LadderContributor())


def _register_share_target() -> None:
    from siyu.attribution.service import shares

    def describe(session: Session, merchant_id: int, target_id: int) -> Any:
        campaign = get_campaign(session, target_id, merchant_id=merchant_id)
        if campaign.status == L.DRAFT:
            raise NotFound()
        view = ladder_view(campaign)
        return shares.TargetInfo(title=campaign.title, image_url=campaign.image_url or None,
                                 price_cents=view["current_price_cents"], subtitle=campaign.item_title)

    shares.register_target("ladder", lambda slug, i: f"/shop/{slug}/ladder/{i}", describe=describe)


_register_share_target()


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, LadderCampaign, merchant_id=merchant_id, statuses=(L.SCHEDULED.value,))
