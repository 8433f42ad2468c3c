"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — logic.

Rules:
- A campaign holds `pool_amount_cents` per pool, shared by `team_size` people; a customer opens a pool (seat 1)
  and friends join through the share link, one seat per customer per pool.
- The seat counter is taken by one conditional UPDATE (`members_count < team_size`, pool open, not expired),
  so a pool never has more than `team_size` members whatever the concurrency.
- The member who takes the last seat fills the pool in the same transaction: every member gets a coupon of the
  campaign's template at their part. Equal: largest remainder, parts sum to the pool. Random: each part is the
  floor plus a share of the rest by weights drawn from the pool's stored seed, so parts sum to the pool and
  are reproducible.
- A pool not filled by `expires_at` expires (tick `promotions.split_pools_expire`); nobody gets a coupon.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied, Unauthorized, ValidationFailed
from siyu.core.i18n import gettext
from siyu.core.money import split_largest_remainder
from siyu.core.pagination import Page, paginate
from siyu.promotions.models.split_coupons import SplitCampaign, SplitMember, SplitPool
from siyu.promotions.service.common import count_running, require_manager
from siyu.promotions.states.split_coupons import CAMPAIGN_MACHINE, POOL_MACHINE, CampaignStatus, PoolStatus

MAX_ID = 2**53
SPLIT_MODES = ("equal", "random")
RUNNING = (CampaignStatus.LIVE.value, CampaignStatus.SCHEDULED.value)
R = TypeVar("R")


# ---------------------------------------------------------------- shared helpers (payment offers, pop-ups too)




def require_staff(actor: Principal) -> None:
    if actor.kind not in ("staff", "system"):
        raise PermissionDenied()


def require_customer(actor: Principal) -> int:
    if actor.kind != "customer" or not actor.customer_id:
        raise Unauthorized()
    return actor.customer_id


def valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID


def fields_error(errors: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(details={"fields": {k: gettext(v) for k, v in errors.items()}})


def running(status: str, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """On show right now: published (live, or scheduled and its start has come) and not past its end."""
    now = now or clock.now()
    return status in RUNNING and starts_at <= now < ends_at


def display_status(status: str, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime | None = None) -> str:
    now = now or clock.now()
    if status in RUNNING:
        if now >= ends_at:
            return CampaignStatus.ENDED.value
        return CampaignStatus.LIVE.value if starts_at <= now else CampaignStatus.SCHEDULED.value
    return status


def publish_status(starts_at: dt.datetime, now: dt.datetime | None = None) -> str:
    return CampaignStatus.SCHEDULED.value if starts_at > (now or clock.now()) else CampaignStatus.LIVE.value


def move(row: Any, action: str, *, now: dt.datetime | None = None) -> None:
    """publish | pause | resume | end, through the campaign machine."""
    now = now or clock.now()
    current = display_status(row.status, row.starts_at, row.ends_at, now)
    if action == "publish":
        target = publish_status(row.starts_at, now)
        if row.ends_at <= now:
            raise Conflict("This campaign has already ended.", code="campaign_over")
    elif action == "pause":
        target = CampaignStatus.PAUSED.value
    elif action == "resume":
        target = publish_status(row.starts_at, now)
        if row.ends_at <= now:
            raise Conflict("This campaign has already ended.", code="campaign_over")
    elif action == "end":
        target = CampaignStatus.ENDED.value
    else:
        raise NotFound()
    CAMPAIGN_MACHINE.check(current, target)
    row.status = target


class RuleBook(Generic[R]):
    """Create, edit, publish / pause / resume / end, read and list one area's rules (payment offers,
    pop-ups): `validate(session, merchant_id, data)` refuses bad input, `apply(row, data)` writes every
    field of the rule from `data`."""

    def __init__(self, model: type[R], *, validate: Callable[[Session, int, Any], None],
                 apply: Callable[[R, Any], None]) -> None:
        self.model, self.validate, self.apply = model, validate, apply

    def create(self, session: Session, *, actor: Principal, data: Any) -> R:
        require_manager(actor)
        self.validate(session, actor.merchant_id, data)
        row = self.model(merchant_id=actor.merchant_id, status=CampaignStatus.DRAFT.value)
        self.apply(row, data)
        session.add(row)
        session.flush()
        return row

    def update(self, session: Session, rule_id: int, *, actor: Principal, data: Any) -> R:
        require_manager(actor)
        row = self.get(session, rule_id, merchant_id=actor.merchant_id)
        if row.status == CampaignStatus.ENDED.value:
            raise Conflict("This campaign has ended.", code="campaign_over")
        self.validate(session, actor.merchant_id, data)
        self.apply(row, data)
        session.flush()
        return row

    def change_status(self, session: Session, rule_id: int, *, actor: Principal, action: str) -> R:
        require_manager(actor)
        row = self.get(session, rule_id, merchant_id=actor.merchant_id)
        move(row, action)
        session.flush()
        return row

    def get(self, session: Session, rule_id: int, *, merchant_id: int) -> R:
        row = session.get(self.model, rule_id) if valid_id(rule_id) else None
        if row is None or row.merchant_id != merchant_id:
            raise NotFound()
        return row

    def list(self, session: Session, *, actor: Principal, cursor: str | None = None,
             limit: int | None = None) -> Page[R]:
        require_staff(actor)
        stmt = select(self.model).where(self.model.merchant_id == actor.merchant_id)
        return paginate(session, stmt, self.model.id, cursor=cursor, limit=limit)


def issue(session: Session, *, merchant_id: int, template_id: int, customer_id: int, channel: str, source_ref: str,
          amount_cents: int | None = None) -> int:
    """One coupon through the coupons area; its id."""
    from siyu.promotions.service import coupons

    coupon = coupons.issue_coupon(session, merchant_id=merchant_id, template_id=template_id, customer_id=customer_id,
                                  channel=channel, source_ref=source_ref, amount_cents=amount_cents)
    return int(coupon.id)


def check_template(session: Session, *, merchant_id: int, template_id: Any, field: str = "template_id") -> None:
    """The coupon template exists for this merchant."""
    from siyu.promotions.service import coupons

    if not valid_id(template_id):
        raise fields_error({field: "Choose a coupon."})
    try:
        coupons.get_template(session, template_id, merchant_id=merchant_id)
    except NotFound as exc:
        raise fields_error({field: "Choose a coupon."}) from exc


# ---------------------------------------------------------------- campaigns


@dataclasses.dataclass
class SplitCampaignIn:
    name: str
    template_id: int
    pool_amount_cents: int
    team_size: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    split_mode: str = "equal"
    floor_cents: int = 0
    fill_minutes: int = 1440
    max_opens_per_customer: int = 1
    max_joins_per_customer: int = 0


def _validate(session: Session, merchant_id: int, data: SplitCampaignIn) -> None:
    errors: dict[str, str] = {}
    name = (data.name or "").strip()
    if not name or len(name) > 60:
        errors["name"] = "Give the campaign a name (at most 60 characters)."
    if not isinstance(data.pool_amount_cents, int) or not 1 <= data.pool_amount_cents <= 10**9:
        errors["pool_amount_cents"] = "The pool must hold at least ¥0.01."
    if not isinstance(data.team_size, int) or not 2 <= data.team_size <= 50:
        errors["team_size"] = "A team has 2 to 50 people."
    if data.split_mode not in SPLIT_MODES:
        errors["split_mode"] = "Split equally or at random."
    if not isinstance(data.floor_cents, int) or data.floor_cents < 0:
        errors["floor_cents"] = "The floor cannot be negative."
    elif (data.split_mode == "random" and "pool_amount_cents" not in errors and "team_size" not in errors
          and data.floor_cents * data.team_size > data.pool_amount_cents):
        errors["floor_cents"] = "The floor times the team size is more than the pool."
    if data.split_mode == "equal" and "team_size" not in errors and "pool_amount_cents" not in errors \
            and data.pool_amount_cents < data.team_size:
        errors["pool_amount_cents"] = "The pool must give every member at least ¥0.01."
    if not isinstance(data.fill_minutes, int) or not 1 <= data.fill_minutes <= 60 * 24 * 30:
        errors["fill_minutes"] = "The time to fill is 1 minute to 30 days."
    for f in ("max_opens_per_customer", "max_joins_per_customer"):
        value = getattr(data, f)
        if not isinstance(value, int) or not 0 <= value <= 1000:
            errors[f] = "A limit is 0 (none) to 1000."
    if data.ends_at <= data.starts_at:
        errors["ends_at"] = "The end must be after the start."
    if errors:
        raise fields_error(errors)
    check_template(session, merchant_id=merchant_id, template_id=data.template_id)


def create_campaign(session: Session, *, actor: Principal, data: SplitCampaignIn) -> SplitCampaign:
    """A draft campaign; publish it to put it on show."""
    require_manager(actor)
    _validate(session, actor.merchant_id, data)
    row = SplitCampaign(merchant_id=actor.merchant_id, status=CampaignStatus.DRAFT.value,
                        **{**dataclasses.asdict(data), "name": data.name.strip()})
    session.add(row)
    session.flush()
    return row


def update_campaign(session: Session, campaign_id: int, *, actor: Principal, data: SplitCampaignIn) -> SplitCampaign:
    """Change a campaign. Once a pool is open its pool amount, team size and split stay as they are."""
    require_manager(actor)
    row = get_campaign(session, campaign_id, merchant_id=actor.merchant_id)
    if row.status == CampaignStatus.ENDED.value:
        raise Conflict("This campaign has ended.", code="campaign_over")
    _validate(session, actor.merchant_id, data)
    has_pools = session.scalar(select(SplitPool.id).where(SplitPool.campaign_id == row.id).limit(1)) is not None
    frozen = ("template_id", "pool_amount_cents", "team_size", "split_mode", "floor_cents")
    if has_pools and any(getattr(row, f) != getattr(data, f) for f in frozen):
        raise Conflict("Pools are open: the pool, team size and split can no longer change.", code="campaign_in_use")
    for key, value in dataclasses.asdict(data).items():
        setattr(row, key, value.strip() if key == "name" else value)
    session.flush()
    return row


def change_status(session: Session, campaign_id: int, *, actor: Principal, action: str) -> SplitCampaign:
    require_manager(actor)
    row = get_campaign(session, campaign_id, merchant_id=actor.merchant_id)
    move(row, action)
    session.flush()
    return row


def get_campaign(session: Session, campaign_id: int, *, merchant_id: int) -> SplitCampaign:
    row = session.get(SplitCampaign, campaign_id) if valid_id(campaign_id) else None
    if row is None or row.merchant_id != merchant_id:
        raise NotFound()
    return row


def get_shop_campaign(session: Session, campaign_id: int, *, merchant_id: int) -> SplitCampaign:
    """A campaign customers may see: published (not a draft)."""
    row = get_campaign(session, campaign_id, merchant_id=merchant_id)
    if row.status == CampaignStatus.DRAFT.value:
        raise NotFound()
    return row


def list_campaigns(session: Session, *, actor: Principal, status: str | None = None, cursor: str | None = None,
                   limit: int | None = None) -> Page[SplitCampaign]:
    require_staff(actor)
    stmt = select(SplitCampaign).where(SplitCampaign.merchant_id == actor.merchant_id)
    if status:
        stmt = stmt.where(SplitCampaign.status == status)
    return paginate(session, stmt, SplitCampaign.id, cursor=cursor, limit=limit)


def live_campaigns(session: Session, *, merchant_id: int) -> list[SplitCampaign]:
    now = clock.now()
    return list(session.scalars(select(SplitCampaign).where(
        SplitCampaign.merchant_id == merchant_id, SplitCampaign.status.in_(RUNNING),
        SplitCampaign.starts_at <= now, SplitCampaign.ends_at > now).order_by(SplitCampaign.id.desc()).limit(20)))


def figures(session: Session, *, merchant_id: int, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: pools opened, open, filled, expired, members and the cents handed out as coupons."""
    out = {cid: {"pools": 0, "open": 0, "filled": 0, "expired": 0, "members": 0, "issued_cents": 0}
           for cid in campaign_ids}
    if not campaign_ids:
        return out
    rows = session.execute(select(SplitPool.campaign_id, SplitPool.status, func.count(), func.sum(SplitPool.members_count))
                           .where(SplitPool.merchant_id == merchant_id, SplitPool.campaign_id.in_(campaign_ids))
                           .group_by(SplitPool.campaign_id, SplitPool.status))
    for cid, status, n, members in rows:
        out[cid]["pools"] += n
        out[cid][status] = out[cid].get(status, 0) + n
        out[cid]["members"] += int(members or 0)
    issued = session.execute(select(SplitMember.campaign_id, func.sum(SplitMember.part_cents))
                             .where(SplitMember.merchant_id == merchant_id, SplitMember.campaign_id.in_(campaign_ids),
                                    SplitMember.coupon_id.is_not(None))
                             .group_by(SplitMember.campaign_id))
    for cid, cents in issued:
        out[cid]["issued_cents"] = int(cents or 0)
    return out


# ---------------------------------------------------------------- splitting


def split_parts(*, amount_cents: int, team_size: int, mode: str, floor_cents: int = 0, seed: int = 0) -> list[int]:
    """The members' parts by seat: they sum to `amount_cents`; random parts are each at least the floor and a
    pure function of the seed."""
    if mode == "equal":
        return split_largest_remainder(amount_cents, [1] * team_size)
    rng = random.Random(seed)
    weights = [rng.randint(1, 1000) for _ in range(team_size)]
    extra = split_largest_remainder(amount_cents - floor_cents * team_size, weights)
    return [floor_cents + e for e in extra]


# ---------------------------------------------------------------- pools


def get_pool(session: Session, pool_id: int, *, merchant_id: int) -> SplitPool:
    row = session.get(SplitPool, pool_id) if valid_id(pool_id) else None
    if row is None or row.merchant_id != merchant_id:
        raise NotFound()
    return row


def members_of(session: Session, pool: SplitPool) -> list[SplitMember]:
    return list(session.scalars(select(SplitMember).where(SplitMember.pool_id == pool.id).order_by(SplitMember.seat)))


def _opened_count(session: Session, campaign: SplitCampaign, customer_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SplitPool).where(
        SplitPool.merchant_id == campaign.merchant_id, SplitPool.campaign_id == campaign.id,
        SplitPool.opener_id == customer_id, SplitPool.status != PoolStatus.EXPIRED.value)) or 0


def _joined_count(session: Session, campaign: SplitCampaign, customer_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SplitMember).where(
        SplitMember.merchant_id == campaign.merchant_id, SplitMember.campaign_id == campaign.id,
        SplitMember.customer_id == customer_id, SplitMember.seat > 1)) or 0


def open_pool(session: Session, *, actor: Principal, campaign_id: int) -> SplitPool:
    """The customer opens a pool of a running campaign and takes its first seat. An open pool of theirs is
    returned as it is (one open pool per customer and campaign)."""
    customer_id = require_customer(actor)
    campaign = get_shop_campaign(session, campaign_id, merchant_id=actor.merchant_id)
    now = clock.now()
    if not running(campaign.status, campaign.starts_at, campaign.ends_at, now):
        raise Conflict("This campaign is not running.", code="campaign_not_running")
    mine = session.scalars(select(SplitPool).where(
        SplitPool.merchant_id == actor.merchant_id, SplitPool.campaign_id == campaign.id,
        SplitPool.opener_id == customer_id, SplitPool.status == PoolStatus.OPEN.value,
        SplitPool.expires_at > now).limit(1)).first()
    if mine is not None:
        return mine
    if campaign.max_opens_per_customer and _opened_count(session, campaign, customer_id) >= \
            campaign.max_opens_per_customer:
        raise Conflict("You have opened as many pools as this campaign allows.", code="split_open_limit")
    pool = SplitPool(merchant_id=actor.merchant_id, campaign_id=campaign.id, opener_id=customer_id,
                     amount_cents=campaign.pool_amount_cents, team_size=campaign.team_size, members_count=1,
                     seed=secrets.randbits(48), status=PoolStatus.OPEN.value,
                     expires_at=min(now + dt.timedelta(minutes=campaign.fill_minutes), campaign.ends_at),
                     created_at=now)
    session.add(pool)
    session.flush()
    session.add(SplitMember(merchant_id=actor.merchant_id, pool_id=pool.id, campaign_id=campaign.id,
                            customer_id=customer_id, seat=1, joined_at=now))
    session.flush()
    return pool


def join_pool(session: Session, *, actor: Principal, pool_id: int) -> SplitMember:
    """The customer takes the next seat of an open pool; the last seat fills the pool and issues every member's
    coupon. 409 `split_pool_full` when the seats are gone, `split_pool_expired`, `split_already_joined`."""
    customer_id = require_customer(actor)
    pool = get_pool(session, pool_id, merchant_id=actor.merchant_id)
    campaign = get_campaign(session, pool.campaign_id, merchant_id=actor.merchant_id)
    now = clock.now()
    existing = session.scalars(select(SplitMember).where(SplitMember.pool_id == pool.id,
                                                         SplitMember.customer_id == customer_id)).first()
    if existing is not None:
        raise Conflict("You are already in this pool.", code="split_already_joined")
    if pool.status == PoolStatus.FILLED.value:
        raise Conflict("This pool is already full.", code="split_pool_full")
    if pool.status == PoolStatus.EXPIRED.value or pool.expires_at <= now:
        raise Conflict("This pool has expired.", code="split_pool_expired")
    if campaign.max_joins_per_customer and _joined_count(session, campaign, customer_id) >= \
            campaign.max_joins_per_customer:
        raise Conflict("You have joined as many pools as this campaign allows.", code="split_join_limit")
    try:
        with session.begin_nested():
            # The hot row: one conditional UPDATE takes the seat (never more than team_size members).
            seat = session.execute(
                update(SplitPool)
                .where(SplitPool.id == pool.id, SplitPool.status == PoolStatus.OPEN.value,
                       SplitPool.members_count < SplitPool.team_size, SplitPool.expires_at > now)
                .values(members_count=SplitPool.members_count + 1)
                .returning(SplitPool.members_count)
                .execution_options(synchronize_session=False)).scalar()
            if seat is None:
                raise Conflict("This pool is already full.", code="split_pool_full")
            member = SplitMember(merchant_id=pool.merchant_id, pool_id=pool.id, campaign_id=pool.campaign_id,
                                 customer_id=customer_id, seat=int(seat), joined_at=now)
            session.add(member)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("You are already in this pool.", code="split_already_joined") from exc
    session.refresh(pool)
    if member.seat == pool.team_size:
        _fill(session, pool, campaign, now)
        session.refresh(member)
    return member


def _fill(session: Session, pool: SplitPool, campaign: SplitCampaign, now: dt.datetime) -> None:
    POOL_MACHINE.check(pool.status, PoolStatus.FILLED.value)
    pool.status = PoolStatus.FILLED.value
    pool.filled_at = now
    pool.closed_at = now
    parts = split_parts(amount_cents=pool.amount_cents, team_size=pool.team_size, mode=campaign.split_mode,
                        floor_cents=campaign.floor_cents, seed=pool.seed)
    for member in members_of(session, pool):
        member.part_cents = parts[member.seat - 1]
        member.coupon_id = issue(session, merchant_id=pool.merchant_id, template_id=campaign.template_id,
                                 customer_id=member.customer_id, channel="split",
                                 source_ref=f"split_pool:{pool.id}:{member.seat}", amount_cents=member.part_cents)
    session.flush()


def expire_due(session: Session, now: dt.datetime) -> int:
    """Pools past their time still open expire: one conditional UPDATE, safe to run twice at once."""
    result = session.execute(update(SplitPool).where(SplitPool.status == PoolStatus.OPEN.value,
                                                     SplitPool.expires_at <= now)
                             .values(status=PoolStatus.EXPIRED.value, closed_at=now)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def end_due(session: Session, now: dt.datetime) -> int:
    """Published campaigns past their end are ended."""
    result = session.execute(update(SplitCampaign).where(SplitCampaign.status.in_(RUNNING),
                                                         SplitCampaign.ends_at <= now)
                             .values(status=CampaignStatus.ENDED.value)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def pools_of_customer(session: Session, *, merchant_id: int, customer_id: int, campaign_id: int | None = None,
                      limit: int = 20) -> list[SplitPool]:
    stmt = (select(SplitPool).join(SplitMember, SplitMember.pool_id == SplitPool.id)
            .where(SplitMember.merchant_id == merchant_id, SplitMember.customer_id == customer_id))
    if campaign_id is not None:
        stmt = stmt.where(SplitPool.campaign_id == campaign_id)
    return list(session.scalars(stmt.order_by(SplitPool.id.desc()).limit(limit)))


def list_pools(session: Session, *, actor: Principal, campaign_id: int, cursor: str | None = None,
               limit: int | None = None) -> Page[SplitPool]:
    require_staff(actor)
    get_campaign(session, campaign_id, merchant_id=actor.merchant_id)
    stmt = select(SplitPool).where(SplitPool.merchant_id == actor.merchant_id, SplitPool.campaign_id == campaign_id)
    return paginate(session, stmt, SplitPool.id, cursor=cursor, limit=limit)


def pool_status(pool: SplitPool, now: dt.datetime | None = None) -> str:
    """The status a reader sees: an open pool past its time reads as expired before the tick runs."""
    if pool.status == PoolStatus.OPEN.value and pool.expires_at <= (now or clock.now()):
        return PoolStatus.EXPIRED.value
    return pool.status


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """customer.merged: the source's pools and seats become the target's (a seat in a pool the target is
    already in stays with the source id, so no pool counts one person twice)."""
    session.execute(update(SplitPool).where(SplitPool.merchant_id == merchant_id, SplitPool.opener_id == source_id)
                    .values(opener_id=target_id).execution_options(synchronize_session=False))
    target_pools = select(SplitMember.pool_id).where(SplitMember.merchant_id == merchant_id,
                                                     SplitMember.customer_id == target_id)
    session.execute(update(SplitMember).where(SplitMember.merchant_id == merchant_id,
                                              SplitMember.customer_id == source_id,
                                              SplitMember.pool_id.not_in(target_pools))
                    .values(customer_id=target_id).execution_options(synchronize_session=False))


def running_count(session: Session, *, merchant_id: int) -> int:
    """Campaigns running now (the marketing overview's figure)."""
    return count_running(session, SplitCampaign, merchant_id=merchant_id, statuses=RUNNING)
