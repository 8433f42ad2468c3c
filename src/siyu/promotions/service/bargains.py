"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — logic.

Rules:
- A customer starts a bargain on a running campaign (at most `max_bargains_per_customer` per campaign;
  an open one is handed back rather than a second one started). It stays open `time_limit_minutes`
  (never past the campaign's end).
- Friends assist through the share link, signed in: one assist per friend per bargain (a unique key),
  never the starter. Each cut is random but converges: cut = remaining ÷ assists left × a factor in
  [0.5, 1.5] (× the new-customer weight for a friend who has never paid an order), at least 1 cent,
  leaving at least 1 cent for each expected assist still to come; the last expected assist takes the
  rest, so the price reaches the floor exactly after `expected_assists` assists and never goes below it.
  The factor comes from a seeded RNG (the bargain's seed and the assist's number): replayable.
- Concurrency: the bargain row is locked (FOR UPDATE; SQLite serialises writers with BEGIN IMMEDIATE),
  the cut computed from what is locked, and applied by one conditional UPDATE that cannot pass the floor.
- Anti-abuse: assists per visitor id and per device id (the `X-Device-Id` header or `siyu_did` cookie)
  are counted in hourly windows in the database; beyond the limit 429 `assist_rate_limited`.
- The starter buys at the current price (if the campaign allows it) or at the floor through checkout
  (`promotions.bargain` contributor): the order's commit moves the bargain open → ordered with a
  conditional UPDATE; order.paid → bought; order.cancelled → open again (expired when its time is up).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import AppError, Conflict, NotFound, Unauthorized, field_error
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.db import upsert_insert
from siyu.orders import pricing
from siyu.promotions.models.bargains import Bargain, BargainAssist, BargainCampaign, BargainRateHit
from siyu.promotions.service import common
from siyu.promotions.service.common import count_running, require_manager
from siyu.promotions.states.bargains import (
    BargainCampaignStatus,
    BargainStatus,
    assert_bargain_transition,
    assert_campaign_transition,
)

C = BargainCampaignStatus
B = BargainStatus
MAX_ID = 2**53
FACTOR_MIN_BPS = 5000
FACTOR_MAX_BPS = 15000
# Assists per visitor id / device id per hour (anti-abuse).
ASSISTS_PER_VISITOR_PER_HOUR = 20
ASSISTS_PER_DEVICE_PER_HOUR = 20
EXTRA_KEY = "promotions.bargain"


def new_seed() -> int:
    """A bargain's seed (the demo and tests pass their own to `start_bargain`)."""
    return secrets.randbits(62)


class AssistRateLimited(AppError):
    status_code = 429
    code = "assist_rate_limited"
    message = "Too many assists from this device; try again later."


class BargainClosed(Conflict):
    code = "bargain_closed"
    message = "This bargain is no longer open."


# ---------------------------------------------------------------- helpers


_valid_id = common.valid_id


def compute_cut(*, remaining_cents: int, assists_left: int, factor_bps: int, weight_bps: int = 10000) -> int:
    """The cut of one assist: remaining ÷ assists left × factor × weight, at least 1 cent, leaving at
    least 1 cent for each later expected assist; the last expected assist takes all that remains."""
    if remaining_cents <= 0:
        return 0
    if assists_left <= 1:
        return remaining_cents
    cut = remaining_cents * factor_bps * weight_bps // (assists_left * 10000 * 10000)
    return max(1, min(cut, remaining_cents - (assists_left - 1)))


def factor_for(seed: int, seq: int) -> int:
    """The random factor (basis points in [5000, 15000]) of a bargain's `seq`-th assist."""
    return random.Random(f"{seed}:{seq}").randint(FACTOR_MIN_BPS, FACTOR_MAX_BPS)


def is_running(campaign: BargainCampaign, now: dt.datetime | None = None) -> bool:
    return common.is_running(campaign, C.SCHEDULED, now)


def display_status(campaign: BargainCampaign, now: dt.datetime | None = None) -> str:
    """What the console shows: running / upcoming / finished follow the window of a scheduled campaign."""
    return common.display_status(campaign, C.SCHEDULED, now)


# ---------------------------------------------------------------- campaigns


@dataclasses.dataclass
class CampaignIn:
    title: str
    sku_id: int
    start_price_cents: int
    floor_price_cents: int
    expected_assists: int
    time_limit_minutes: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    max_bargains_per_customer: int = 1
    new_customer_weight_bps: int = 10000
    allow_buy_at_current: bool = True


def _check(session: Session, merchant_id: int, data: CampaignIn) -> Any:
    title = (data.title or "").strip()
    if not title or len(title) > 60:
        raise field_error("title", "Give the campaign a title (at most 60 characters).")
    if not _valid_id(data.sku_id):
        raise field_error("sku_id", "Choose a product.")
    sku = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[data.sku_id]).get(data.sku_id)
    if sku is None:
        raise field_error("sku_id", "Choose a product.")
    if not 0 < data.start_price_cents <= 10**9:
        raise field_error("start_price_cents", "The start price must be above 0.")
    if not 0 <= data.floor_price_cents < data.start_price_cents:
        raise field_error("floor_price_cents", "The floor price must be below the start price.")
    if not 1 <= data.expected_assists <= 500:
        raise field_error("expected_assists", "Between 1 and 500 assists.")
    if data.start_price_cents - data.floor_price_cents < data.expected_assists:
        raise field_error("expected_assists", "Each assist must cut at least 1 cent.")
    if not 1 <= data.time_limit_minutes <= 60 * 24 * 30:
        raise field_error("time_limit_minutes", "Between 1 minute and 30 days.")
    if not 1 <= data.max_bargains_per_customer <= 100:
        raise field_error("max_bargains_per_customer", "Between 1 and 100.")
    if not 10000 <= data.new_customer_weight_bps <= 30000:
        raise field_error("new_customer_weight_bps", "Between 1× and 3×.")
    if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None or data.ends_at <= data.starts_at:
        raise field_error("ends_at", "The end must come after the start.")
    return sku


def create_campaign(session: Session, *, actor: Principal, data: CampaignIn) -> BargainCampaign:
    """A new campaign in draft."""
    require_manager(actor)
    sku = _check(session, actor.merchant_id, data)
    campaign = BargainCampaign(merchant_id=actor.merchant_id, product_id=sku.product_id, item_title=sku.title[:200],
                               image_url=(sku.image or "")[:500], status=C.DRAFT.value, created_at=clock.now(),
                               updated_at=clock.now(), **_fields(data))
    session.add(campaign)
    session.flush()
    return campaign


def _fields(data: CampaignIn) -> dict[str, Any]:
    out = dataclasses.asdict(data)
    out["title"] = data.title.strip()
    return out


def update_campaign(session: Session, campaign_id: int, *, actor: Principal, data: CampaignIn) -> BargainCampaign:
    """Edit a campaign not yet ended; prices, product and assists are fixed once a bargain started."""
    require_manager(actor)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    if campaign.status == C.ENDED:
        raise Conflict("An ended campaign cannot be edited.", code="campaign_ended")
    sku = _check(session, actor.merchant_id, data)
    started = session.scalar(select(func.count()).select_from(Bargain).where(Bargain.campaign_id == campaign.id))
    fields = _fields(data)
    if started:
        fixed = ("sku_id", "start_price_cents", "floor_price_cents", "expected_assists")
        if any(getattr(campaign, k) != fields[k] for k in fixed):
            raise Conflict("Bargains have started: product, prices and assists can no longer change.",
                           code="campaign_has_bargains")
    for key, value in fields.items():
        setattr(campaign, key, value)
    campaign.product_id = sku.product_id
    campaign.item_title = sku.title[:200]
    campaign.image_url = (sku.image or "")[:500]
    campaign.updated_at = clock.now()
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int, *, merchant_id: int, lock: bool = False) -> BargainCampaign:
    return common.get_owned(session, BargainCampaign, campaign_id, merchant_id=merchant_id,
                            not_found="bargain_campaign_not_found", lock=lock)


ACTIONS = {"schedule": C.SCHEDULED, "resume": C.SCHEDULED, "pause": C.PAUSED, "end": C.ENDED, "draft": C.DRAFT}


def change_campaign_status(session: Session, campaign_id: int, *, actor: Principal, action: str) -> BargainCampaign:
    """schedule / pause / resume / end / draft. Ending expires the campaign's open bargains."""
    require_manager(actor)
    target = common.action_target(action, ACTIONS)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    now = common.move(campaign, target, ended=C.ENDED, assert_transition=assert_campaign_transition)
    if target == C.ENDED:
        _expire(session, now=now, campaign_id=campaign.id, everything=True)
    session.flush()
    return campaign


def list_campaigns(session: Session, *, merchant_id: int, status: str | None = None) -> list[BargainCampaign]:
    stmt = select(BargainCampaign).where(BargainCampaign.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(BargainCampaign.status == status)
    return list(session.scalars(stmt.order_by(BargainCampaign.id.desc()).limit(200)))


def running_campaigns(session: Session, *, merchant_id: int) -> list[BargainCampaign]:
    now = clock.now()
    return list(session.scalars(select(BargainCampaign).where(
        BargainCampaign.merchant_id == merchant_id, BargainCampaign.status == C.SCHEDULED.value,
        BargainCampaign.starts_at <= now, BargainCampaign.ends_at > now).order_by(BargainCampaign.ends_at)))


def campaign_figures(session: Session, *, merchant_id: int, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: bargains started, assists, bargains at the floor, orders (ordered or bought), bought, GMV."""
    out = {i: {"bargains": 0, "assists": 0, "at_floor": 0, "orders": 0, "bought": 0, "gmv_cents": 0}
           for i in campaign_ids}
    if not campaign_ids:
        return out
    rows = session.execute(select(
        Bargain.campaign_id, func.count(), func.coalesce(func.sum(Bargain.assists_count), 0),
        func.count().filter(Bargain.current_price_cents == Bargain.floor_price_cents),
        func.count().filter(Bargain.status.in_([B.ORDERED.value, B.BOUGHT.value])),
        func.count().filter(Bargain.status == B.BOUGHT.value),
        func.coalesce(func.sum(Bargain.paid_cents).filter(Bargain.status == B.BOUGHT.value), 0),
    ).where(Bargain.merchant_id == merchant_id, Bargain.campaign_id.in_(campaign_ids)).group_by(Bargain.campaign_id))
    for cid, n, assists, floor, ordered, bought, gmv in rows:
        out[cid] = {"bargains": int(n), "assists": int(assists), "at_floor": int(floor), "orders": int(ordered),
                    "bought": int(bought), "gmv_cents": int(gmv)}
    return out


def bargains_of_campaign(session: Session, *, merchant_id: int, campaign_id: int, limit: int = 200) -> list[Bargain]:
    return list(session.scalars(select(Bargain).where(Bargain.merchant_id == merchant_id,
                                                      Bargain.campaign_id == campaign_id)
                                .order_by(Bargain.id.desc()).limit(limit)))


# ---------------------------------------------------------------- bargains


def get_bargain(session: Session, bargain_id: int, *, merchant_id: int, lock: bool = False) -> Bargain:
    if not _valid_id(bargain_id):
        raise NotFound(code="bargain_not_found")
    stmt = select(Bargain).where(Bargain.id == bargain_id, Bargain.merchant_id == merchant_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    bargain = session.scalars(stmt).first()
    if bargain is None:
        raise NotFound(code="bargain_not_found")
    return bargain


def assists_of(session: Session, bargain_ids: list[int]) -> dict[int, list[BargainAssist]]:
    out: dict[int, list[BargainAssist]] = {i: [] for i in bargain_ids}
    if bargain_ids:
        for row in session.scalars(select(BargainAssist).where(BargainAssist.bargain_id.in_(bargain_ids))
                                   .order_by(BargainAssist.bargain_id, BargainAssist.seq)):
            out[row.bargain_id].append(row)
    return out


def customer_bargains(session: Session, *, merchant_id: int, customer_id: int) -> list[Bargain]:
    return list(session.scalars(select(Bargain).where(Bargain.merchant_id == merchant_id,
                                                      Bargain.customer_id == customer_id)
                                .order_by(Bargain.id.desc()).limit(50)))


def _customer_actor(actor: Principal) -> int:
    if actor.kind != "customer" or actor.customer_id is None:
        raise Unauthorized()
    return actor.customer_id


def start_bargain(session: Session, *, actor: Principal, campaign_id: int, seed: int | None = None) -> Bargain:
    """Start (or get back) the signed-in customer's bargain on a running campaign. The campaign row
    is locked so two starts at once cannot pass the per-customer limit."""
    customer_id = _customer_actor(actor)
    campaign = get_campaign(session, campaign_id, merchant_id=actor.merchant_id, lock=True)
    now = clock.now()
    if not is_running(campaign, now):
        raise Conflict("This bargain campaign is not running.", code="campaign_not_running")
    mine = list(session.scalars(select(Bargain).where(Bargain.campaign_id == campaign.id,
                                                      Bargain.customer_id == customer_id)))
    for bargain in mine:
        if bargain.status == B.OPEN and bargain.expires_at > now:
            return bargain
    if len(mine) >= campaign.max_bargains_per_customer:
        raise Conflict("You have already bargained for this item {limit} times.", code="bargain_limit_reached",
                       details={"limit": campaign.max_bargains_per_customer},
                       limit=campaign.max_bargains_per_customer)
    bargain = Bargain(merchant_id=campaign.merchant_id, campaign_id=campaign.id, customer_id=customer_id,
                      start_price_cents=campaign.start_price_cents, floor_price_cents=campaign.floor_price_cents,
                      current_price_cents=campaign.start_price_cents, expected_assists=campaign.expected_assists,
                      assists_count=0, seed=new_seed() if seed is None else seed, status=B.OPEN.value,
                      expires_at=min(now + dt.timedelta(minutes=campaign.time_limit_minutes), campaign.ends_at),
                      created_at=now)
    session.add(bargain)
    session.flush()
    return bargain


def _rate_hit(session: Session, *, merchant_id: int, key: str, limit: int, now: dt.datetime) -> None:
    """Count one assist for `key` in the current hour; 429 beyond `limit`. One conditional UPDATE, an
    INSERT … ON CONFLICT DO NOTHING for the window's first hit."""
    window = now.replace(minute=0, second=0, microsecond=0)
    t = BargainRateHit.__table__
    conn = session.connection()
    where = (t.c.merchant_id == merchant_id, t.c.key == key, t.c.window_start == window)
    for _attempt in range(2):
        if conn.execute(update(t).where(*where, t.c.hits < limit).values(hits=t.c.hits + 1)).rowcount == 1:
            return
        if conn.execute(select(t.c.id).where(*where)).first() is not None:
            raise AssistRateLimited(details={"limit": limit})
        insert = upsert_insert(conn)
        made = conn.execute(insert(t).values(merchant_id=merchant_id, key=key, window_start=window, hits=1)
                            .on_conflict_do_nothing(index_elements=["merchant_id", "key", "window_start"])
                            .returning(t.c.id)).first()
        if made is not None:
            return
    raise AssistRateLimited(details={"limit": limit})


def assist(session: Session, *, actor: Principal, bargain_id: int, visitor_id: str | None = None,
           device_id: str | None = None, visitor_limit: int | None = None,
           device_limit: int | None = None) -> BargainAssist:
    """A signed-in friend cuts the bargain's price once (see the module's rules)."""
    helper_id = _customer_actor(actor)
    now = clock.now()
    bargain = get_bargain(session, bargain_id, merchant_id=actor.merchant_id)
    if bargain.customer_id == helper_id:
        raise Conflict("You cannot help your own bargain; share it with friends.", code="own_bargain")
    done = session.scalar(select(BargainAssist.id).where(BargainAssist.bargain_id == bargain.id,
                                                         BargainAssist.helper_customer_id == helper_id))
    if done is not None:
        raise Conflict("You have already helped this bargain.", code="already_assisted")
    helper = customers.get_customer(session, helper_id, actor=system_principal(actor.merchant_id))
    visitor_id = (visitor_id or "")[:40]
    device_id = (device_id or "")[:64]
    if visitor_id:
        _rate_hit(session, merchant_id=actor.merchant_id, key=f"visitor:{visitor_id}", now=now,
                  limit=ASSISTS_PER_VISITOR_PER_HOUR if visitor_limit is None else visitor_limit)
    if device_id:
        _rate_hit(session, merchant_id=actor.merchant_id, key=f"device:{device_id}", now=now,
                  limit=ASSISTS_PER_DEVICE_PER_HOUR if device_limit is None else device_limit)
    # Lock the bargain, then compute the cut from what is locked.
    bargain = get_bargain(session, bargain.id, merchant_id=actor.merchant_id, lock=True)
    if bargain.status != B.OPEN or bargain.expires_at <= now:
        raise BargainClosed(details={"status": bargain.status})
    if session.scalar(select(BargainAssist.id).where(BargainAssist.bargain_id == bargain.id,
                                                     BargainAssist.helper_customer_id == helper_id)) is not None:
        raise Conflict("You have already helped this bargain.", code="already_assisted")
    remaining = bargain.current_price_cents - bargain.floor_price_cents
    if remaining <= 0:
        raise Conflict("This bargain has already reached the lowest price.", code="bargain_at_floor")
    campaign = session.get(BargainCampaign, bargain.campaign_id)
    assert campaign is not None
    if campaign.status != C.SCHEDULED:
        raise Conflict("This bargain campaign is paused; try again later.", code="campaign_paused")
    new_customer = (helper.paid_orders or 0) == 0
    seq = bargain.assists_count + 1
    cut = compute_cut(remaining_cents=remaining, assists_left=bargain.expected_assists - bargain.assists_count,
                      factor_bps=factor_for(bargain.seed, seq),
                      weight_bps=campaign.new_customer_weight_bps if new_customer else 10000)
    t = Bargain.__table__
    applied = session.connection().execute(
        update(t).where(t.c.id == bargain.id, t.c.status == B.OPEN.value,
                        t.c.assists_count == bargain.assists_count,
                        t.c.current_price_cents - cut >= t.c.floor_price_cents)
        .values(current_price_cents=t.c.current_price_cents - cut, assists_count=t.c.assists_count + 1)
        .returning(t.c.current_price_cents)).first()
    if applied is None:
        raise BargainClosed(details={"status": bargain.status})
    row = BargainAssist(merchant_id=bargain.merchant_id, bargain_id=bargain.id, helper_customer_id=helper_id,
                        helper_name=(helper.nickname or "")[:64], cut_cents=cut, seq=seq,
                        price_after_cents=int(applied[0]), new_customer=new_customer, visitor_id=visitor_id,
                        device_id=device_id, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("You have already helped this bargain.", code="already_assisted") from exc
    session.refresh(bargain)
    return row


def bargain_view(session: Session, bargain: Bargain, *, viewer_id: int | None) -> dict[str, Any]:
    """What the bargain page and the shop API show."""
    campaign = session.get(BargainCampaign, bargain.campaign_id)
    assert campaign is not None
    assists = assists_of(session, [bargain.id])[bargain.id]
    span = bargain.start_price_cents - bargain.floor_price_cents
    cut = bargain.start_price_cents - bargain.current_price_cents
    now = clock.now()
    is_open = bargain.status == B.OPEN and bargain.expires_at > now
    mine = viewer_id is not None and viewer_id == bargain.customer_id
    helped = viewer_id is not None and any(a.helper_customer_id == viewer_id for a in assists)
    at_floor = bargain.current_price_cents == bargain.floor_price_cents
    return {
        "id": bargain.id, "campaign_id": campaign.id, "title": campaign.title, "item_title": campaign.item_title,
        "image_url": campaign.image_url or None, "sku_id": campaign.sku_id,
        "status": bargain.status if bargain.status != B.OPEN or is_open else B.EXPIRED.value,
        "start_price_cents": bargain.start_price_cents, "floor_price_cents": bargain.floor_price_cents,
        "current_price_cents": bargain.current_price_cents, "cut_cents": cut,
        "progress_bps": 10000 if span <= 0 else cut * 10000 // span, "at_floor": at_floor,
        "assists_count": bargain.assists_count, "expected_assists": bargain.expected_assists,
        "expires_at": bargain.expires_at, "seconds_left": max(0, int((bargain.expires_at - now).total_seconds())),
        "order_id": bargain.order_id if mine else None, "mine": mine, "helped": helped,
        "can_assist": is_open and not mine and not helped and not at_floor and viewer_id is not None,
        "can_buy": is_open and mine and (at_floor or campaign.allow_buy_at_current),
        "assists": [{"helper_name": a.helper_name, "cut_cents": a.cut_cents, "seq": a.seq,
                     "new_customer": a.new_customer, "created_at": a.created_at} for a in assists],
    }


# ---------------------------------------------------------------- time and orders


def _expire(session: Session, *, now: dt.datetime, campaign_id: int | None = None, everything: bool = False) -> int:
    """Open bargains whose time is up (or, `everything`, all of a campaign's open ones) → expired."""
    assert_bargain_transition(B.OPEN, B.EXPIRED)
    t = Bargain.__table__
    stmt = update(t).where(t.c.status == B.OPEN.value)
    if campaign_id is not None:
        stmt = stmt.where(t.c.campaign_id == campaign_id)
    if not everything:
        stmt = stmt.where(t.c.expires_at <= now)
    return int(session.connection().execute(stmt.values(status=B.EXPIRED.value)).rowcount or 0)


def expire_due(session: Session, now: dt.datetime) -> int:
    """The tick: open bargains past `expires_at` expire (one UPDATE; safe twice at once)."""
    return _expire(session, now=now)


def mark_paid(session: Session, *, merchant_id: int, order_id: int, paid_cents: int, paid_at: dt.datetime) -> bool:
    """order.paid: the bargain ordered by this order is bought (idempotent)."""
    assert_bargain_transition(B.ORDERED, B.BOUGHT)
    t = Bargain.__table__
    result = session.connection().execute(
        update(t).where(t.c.merchant_id == merchant_id, t.c.order_id == order_id, t.c.status == B.ORDERED.value)
        .values(status=B.BOUGHT.value, bought_at=paid_at, paid_cents=paid_cents))
    return bool(result.rowcount)


def give_back(session: Session, *, merchant_id: int, order_id: int) -> bool:
    """order.cancelled: the bargain is open again, or expired if its time is up (idempotent)."""
    bargain = session.scalars(select(Bargain).where(Bargain.merchant_id == merchant_id, Bargain.order_id == order_id)
                              .with_for_update().execution_options(populate_existing=True)).first()
    if bargain is None or bargain.status != B.ORDERED:
        return False
    target = B.OPEN if bargain.expires_at > clock.now() else B.EXPIRED
    assert_bargain_transition(bargain.status, target)
    bargain.status = target.value
    bargain.order_id = None
    bargain.order_no = ""
    session.flush()
    return True


def merge_customers(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """customer.merged: bargains and assists follow the customer; an assist the target already made
    on the same bargain keeps the source's id (one assist per friend per bargain stays true)."""
    session.execute(update(Bargain).where(Bargain.merchant_id == merchant_id, Bargain.customer_id == source_id)
                    .values(customer_id=target_id))
    taken = select(BargainAssist.bargain_id).where(BargainAssist.helper_customer_id == target_id)
    session.execute(update(BargainAssist).where(BargainAssist.merchant_id == merchant_id,
                                                BargainAssist.helper_customer_id == source_id,
                                                BargainAssist.bargain_id.not_in(taken))
                    .values(helper_customer_id=target_id))
    session.flush()


# ---------------------------------------------------------------- checkout


class BargainContributor:
    """Prices the one line of a bargain checkout at the bargain's current price (only its starter,
    only while open; at the floor unless the campaign lets the starter buy at the current price)."""

    name = "promotions.bargain"
    priority = 22

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        promo = ctx.promotion
        if not promo or promo.get("kind") != "bargain":
            return
        bargain_id = promo.get("bargain_id")
        if not _valid_id(bargain_id):
            raise field_error("promotion.bargain_id", "Choose a bargain.")
        bargain = get_bargain(session, bargain_id, merchant_id=ctx.merchant_id)
        if ctx.customer_id is None or bargain.customer_id != ctx.customer_id:
            raise NotFound(code="bargain_not_found")
        now = ctx.now or clock.now()
        if bargain.status != B.OPEN or bargain.expires_at <= now:
            raise BargainClosed(details={"status": bargain.status})
        campaign = session.get(BargainCampaign, bargain.campaign_id)
        assert campaign is not None
        at_floor = bargain.current_price_cents == bargain.floor_price_cents
        if not at_floor and not campaign.allow_buy_at_current:
            raise Conflict("This bargain can be bought once it reaches the lowest price.", code="bargain_not_at_floor")
        if len(ctx.lines) != 1 or ctx.lines[0].sku_id != campaign.sku_id or ctx.lines[0].quantity != 1:
            raise Conflict("A bargain buys one unit of its own item.", code="bargain_line_mismatch",
                           details={"sku_id": campaign.sku_id, "quantity": 1})
        line = ctx.lines[0]
        diff = bargain.current_price_cents - line.amount_cents
        if diff:
            ctx.add_adjustment(kind="bargain", label=_("Bargain price"), amount_cents=diff, source=self.name,
                               sku_ids=[line.sku_id], details={"bargain_id": bargain.id, "campaign_id": campaign.id})
        line.promo = {"kind": "bargain", "campaign_id": campaign.id, "coupons": False, "member_discount": False}
        ctx.extra[EXTRA_KEY] = {"bargain_id": bargain.id, "price_cents": bargain.current_price_cents}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        found = ctx.extra.get(EXTRA_KEY)
        if not found:
            return
        assert_bargain_transition(B.OPEN, B.ORDERED)
        session.flush()
        t = Bargain.__table__
        taken = session.connection().execute(
            update(t).where(t.c.id == found["bargain_id"], t.c.status == B.OPEN.value,
                            t.c.current_price_cents == found["price_cents"], t.c.expires_at > clock.now())
            .values(status=B.ORDERED.value, order_id=order_id, order_no=order_no[:32]).returning(t.c.id)).first()
        if taken is None:
            raise Conflict("The bargain changed while you were ordering; look at its price again.",
                           code="bargain_changed", details={"bargain_id": found["bargain_id"]})


pricing.register_contributor(BargainContributor())


def _register_share_target() -> None:
    from siyu.attribution.service import shares

    def describe(session: Session, merchant_id: int, target_id: int) -> Any:
        bargain = get_bargain(session, target_id, merchant_id=merchant_id)
        campaign = session.get(BargainCampaign, bargain.campaign_id)
        assert campaign is not None
        return shares.TargetInfo(title=campaign.title, image_url=campaign.image_url or None,
                                 price_cents=bargain.current_price_cents, subtitle=campaign.item_title)

    shares.register_target("bargain", lambda slug, i: f"/shop/{slug}/bargain/{i}", describe=describe)


_register_share_target()


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, BargainCampaign, merchant_id=merchant_id, statuses=(C.SCHEDULED.value,))
